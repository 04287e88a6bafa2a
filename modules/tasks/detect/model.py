"""The Darknet detector of config.DETECTOR_CFG (FP32 or Brevitas), cut before the Detect decode."""

import torch

from modules.models.darknet import build_detector
from modules.models.darknet_weights import load_darknet_weights
from modules.models.quant_layers import QuantLayers


def build_darknet_detector(cfg, bits=None):
    """The Darknet detector of config.DETECTOR_CFG: FP32, or Brevitas with `bits`."""
    torch.manual_seed(cfg.SEED)  # same initial weights for the same seed
    layers = QuantLayers(bits) if bits is not None else None
    model = build_detector(
        cfg.DETECTOR_CFG, layers, cfg.DETECTOR_WIDTH_MULT, cfg.DARKNET_FINN_REPLACEMENTS
    )
    if cfg.DARKNET_WEIGHTS_FILE:
        load_darknet_weights(model, cfg.DARKNET_WEIGHTS_FILE)
    return model


def head_layout(model):
    """(anchors, classes) of a detector: its DetectorSpec, or plain attributes (test models)."""
    spec = getattr(model, "spec", None)
    if spec is not None:
        return spec.num_anchors, spec.classes
    return model.num_anchors, model.classes
