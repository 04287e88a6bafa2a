"""One module per notebook, named after it, holding that notebook's steps (01 train_fp32 ... 05
pynq_inference, 06 design_space).
"""
