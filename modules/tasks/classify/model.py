"""The classifier's models: FP32, Brevitas at given bit widths, and the bipolar deployment head."""

import torch

from modules.models.architecture import build_model
from modules.models.quant_layers import BitWidths, build_quant_model
from modules.quantization.ptq import load_corrected_state


def build_fp32_model(cfg):
    torch.manual_seed(cfg.SEED)  # same initial weights for the same seed
    return build_model(cfg.MODEL, len(cfg.CLASSES), cfg.WIDTH_MULT)


def build_quantized_model(cfg, bits, bipolar_output=False):
    torch.manual_seed(cfg.SEED)
    return build_quant_model(cfg.MODEL, len(cfg.CLASSES), cfg.WIDTH_MULT, bits, bipolar_output)


def build_configured_model(cfg, bipolar_output=False):
    """config.BREVITAS_MODEL picks the FP32 or the quantized model (bit widths from config)."""
    if not cfg.BREVITAS_MODEL:
        return build_fp32_model(cfg)
    return build_quantized_model(cfg, BitWidths.from_config(cfg), bipolar_output)


def bipolar_model(cfg, model, bits=None):
    """The same weights with the bipolar output quantizer appended (for FINN deployment);
    `bits` of the model (config's when None)."""
    head = build_quantized_model(cfg, bits or BitWidths.from_config(cfg), bipolar_output=True)
    return load_corrected_state(head, model.state_dict()).eval()
