"""Training loop, checkpoints, loss and metrics, shared by the FP32 and the quantized model."""
