"""Fire/smoke CNNs from PyTorch to a PYNQ FPGA: pipeline stages (stages/) over libraries by
concern.
"""
