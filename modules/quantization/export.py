"""ONNX exports: plain ONNX of the FP32 model, QONNX of the Brevitas model (+ qonnx cleanup).

With torch 2.13 both exporters go through the dynamo exporter, which writes the weights to
NAME.onnx.data beside NAME.onnx; the cleaned QONNX file is saved self-contained.
"""

import contextlib
import io
import logging
from pathlib import Path

import torch
from brevitas.export import export_qonnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.cleanup import cleanup_model

from modules.quantization.export_fixes import ReduceMeanToGlobalAveragePool


def dummy_input(img_size):
    return torch.zeros(1, 3, img_size, img_size)


def _quietly(fn, *args, **kwargs):
    # the dynamo exporter prints progress lines and warns that torchvision ops are absent
    registration_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration_log.level
    registration_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return fn(*args, **kwargs)
    finally:
        registration_log.setLevel(level)


def export_fp32_onnx(model, img_size, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    _quietly(
        torch.onnx.export,
        model,
        (dummy_input(img_size),),
        str(path),
        input_names=["image"],
        output_names=["logits"],
        dynamo=True,
    )
    return path


def export_qonnx_model(model, img_size, raw_path, clean_path):
    """Brevitas -> QONNX (`raw_path`, + .data file) -> qonnx cleanup, global average pool in
    the form FINN maps (`clean_path`, self-contained)."""
    raw_path, clean_path = Path(raw_path), Path(clean_path)
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    _quietly(export_qonnx, model, dummy_input(img_size), str(raw_path))
    cleaned = cleanup_model(ModelWrapper(str(raw_path)))
    cleaned = cleanup_model(cleaned.transform(ReduceMeanToGlobalAveragePool()))
    cleaned.save(str(clean_path))
    return clean_path
