"""The detector's anchors (fitted on the training boxes, stored on the model) and the decode
settings built from them."""

import numpy as np
import torch

from modules.board.detect import DetectSettings
from modules.training.anchors import fit_anchors

ANCHOR_BUFFER = "anchors"


def eval_settings(cfg, anchors):
    """Decode settings for mAP (low confidence: the whole PR curve)."""
    anchors = tuple(map(tuple, np.asarray(anchors, dtype=float).tolist()))
    return DetectSettings(
        anchors, cfg.IMG_SIZE, cfg.DET_EVAL_CONF, cfg.DET_EVAL_IOU, cfg.DET_MAX_DETECTIONS
    )


def display_settings(cfg, anchors):
    """Decode settings for drawn boxes and the board (seed 000: conf 0.25, NMS IoU 0.4)."""
    anchors = tuple(map(tuple, np.asarray(anchors, dtype=float).tolist()))
    return DetectSettings(
        anchors, cfg.IMG_SIZE, cfg.DET_DISPLAY_CONF, cfg.DET_DISPLAY_IOU, cfg.DET_MAX_DETECTIONS
    )


def fitted_anchors(cfg, train_samples, count):
    """IoU k-means anchors at IMG_SIZE; prints the fit and its best possible recall."""
    fit = fit_anchors(
        train_samples, cfg.IMG_SIZE, count, cfg.DET_ANCHOR_SEED, cfg.DET_ANCHOR_THRESHOLD
    )
    print(fit)
    return fit


def attach_anchors(model, anchors):
    """Store the anchors on the model (a buffer: saved in every checkpoint, not in the graph)."""
    tensor = torch.as_tensor(np.asarray(anchors), dtype=torch.float32).reshape(-1, 2)
    if ANCHOR_BUFFER in dict(model.named_buffers(recurse=False)):
        getattr(model, ANCHOR_BUFFER).copy_(tensor)
    else:
        model.register_buffer(ANCHOR_BUFFER, tensor)
    return model


def model_anchors(model):
    return getattr(model, ANCHOR_BUFFER).numpy().copy()
