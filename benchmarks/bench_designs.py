"""What the FINN and emulator benchmarks share: a calibrated W4A4 classifier with random
weights, and the emulator-vs-execute_onnx comparison on one HW-layer graph."""

import time

import numpy as np
import torch
from torch import nn

import config
from modules.hardware.emulator import Emulator
from modules.models.quant_layers import BitWidths, build_quant_model
from modules.quantization.equivalence import onnx_stage


def calibrated_model(size, steps=4, batch=8):
    torch.manual_seed(0)
    model = build_quant_model(
        config.MODEL, len(config.CLASSES), config.WIDTH_MULT, BitWidths(), True
    )
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative statistics over the calibration passes
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randint(0, 256, (batch, 3, size, size)).float())
    return model.eval()


def compare(name, graph, size, onnx_images, emulator_images):
    images = np.random.default_rng(0).integers(0, 256, (emulator_images, 3, size, size))
    images = images.astype(np.float32)
    emulator = Emulator(graph)
    emulator(images[:2])  # warm-up: first touch of the weight tables
    started = time.perf_counter()
    reference = onnx_stage(graph)(images[:onnx_images])
    onnx_ms = (time.perf_counter() - started) / onnx_images * 1e3
    started = time.perf_counter()
    emulated = emulator(images)
    emulator_ms = (time.perf_counter() - started) / emulator_images * 1e3
    identical = np.array_equal(emulated[:onnx_images].reshape(reference.shape), reference)
    print(
        f"{name:<22} {size:>4}x{size:<4} execute_onnx {onnx_ms:9.1f} ms/image ({onnx_images})  "
        f"emulator {emulator_ms:7.2f} ms/image ({emulator_images})  "
        f"identical {identical}  ratio {onnx_ms / emulator_ms:6.0f}x"
    )
    return onnx_ms / emulator_ms, identical
