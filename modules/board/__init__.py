"""The board runtime: numpy + OpenCV only, copied into the deployment package as firesmoke_board."""
