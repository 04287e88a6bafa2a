"""What runs on the PYNQ board: numpy + OpenCV only, copied into the deployment package as
firesmoke_board (accelerator I/O and packing, preprocessing, the decision rule, self-check).
"""
