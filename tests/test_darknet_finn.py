"""Darknet detectors through the repo's QONNX export and FINN flow at 64x64: a HW-only
accelerator (maxpools as Pool HW layers), every stage bit-exact from Brevitas to the folded
graph on real images, and the emulator reproducing the accelerator.

The dfire-lpyolo cfg at width 0.5 (W4A4, 8-bit first/last) and tinier-yolo at width 1/16 (W1A3:
binary weights, the MaxPool(3, 1, 1) replacement of its 2x2 stride-1 maxpool) each run the
flow once per session (about a minute each).
"""

import functools
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from modules.data.demo_data import generate_demo_dataset
from modules.dataflow import flow as finn_flow
from modules.dataflow import stage_check
from modules.hardware.emulator import Emulator
from modules.models.darknet import build_detector
from modules.models.quant_layers import BitWidths, QuantLayers
from modules.quantization.export import export_qonnx_model

SIZE = 64
PART = "xc7z020clg400-1"
MODELS = {
    "dfire-lpyolo": (0.5, BitWidths()),
    "tinier-yolo": (1 / 16, BitWidths(weight=1, act=3)),
}


def demo_images(count):
    """Real (synthetic fire/smoke) pictures at SIZE, as the detector sees them: 0..255."""
    root = Path(tempfile.mkdtemp(prefix="darknet_demo_"))
    generate_demo_dataset(root, {"test": count}, SIZE, 3)
    paths = sorted((root / "test" / "images").iterdir())
    pictures = [np.asarray(Image.open(p).convert("RGB").resize((SIZE, SIZE))) for p in paths]
    return np.stack(pictures).transpose(0, 3, 1, 2).astype(np.float32)


def calibrate(model, images, steps=4):
    """BatchNorm statistics and activation scales from train-mode passes over the images."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.as_tensor(images))
    return model.eval()


@functools.cache
def detector_flow(name):
    width_mult, bits = MODELS[name]
    torch.manual_seed(0)
    images = demo_images(8)
    model = calibrate(build_detector(name, QuantLayers(bits), width_mult), images)
    out = tempfile.mkdtemp(prefix=f"finn_{name}_")
    clean = export_qonnx_model(model, SIZE, f"{out}/raw.onnx", f"{out}/clean.onnx")
    flow = finn_flow.run_flow(clean, out, PART, target_fps=1000)
    return {"brevitas": model, "flow": flow, "out": out, "images": images[:3]}


@pytest.mark.parametrize("name", list(MODELS))
def test_detector_accelerator_is_hw_only_with_pool_layers(name):
    run = detector_flow(name)
    flow, plans = run["flow"], run["brevitas"].plans
    assert all(finn_flow.is_hw_node(node) for node in flow.child.graph.node)
    counts = finn_flow.node_counts(flow.child)
    assert counts["Pool"] == sum(p.type == "maxpool" for p in plans)  # every maxpool is HW
    assert counts["MVAU"] == sum(p.type == "conv" for p in plans)
    # the host keeps only layout changes and the head's dequantizing scale
    assert set(finn_flow.node_counts(flow.parent)) == {
        "Transpose",
        "StreamingDataflowPartition",
        "Mul",
    }


@pytest.mark.parametrize("name", list(MODELS))
def test_detector_bit_exact_from_brevitas_to_folded(name):
    run = detector_flow(name)
    stages = stage_check.flow_stages(run["flow"], run["brevitas"], run["out"])
    table, outputs = stage_check.stage_equivalence(stages, run["images"])
    stage_check.assert_identical(table)
    spec = run["brevitas"].spec
    grid = SIZE // spec.stride
    assert outputs["folded"].shape == (3, spec.head_channels * grid * grid)
    assert len(np.unique(outputs["folded"])) > 10  # a head tensor, not a constant


@pytest.mark.parametrize("name", list(MODELS))
def test_emulator_reproduces_the_detector_accelerator(name):
    run = detector_flow(name)
    flow = run["flow"]
    stages = stage_check.flow_stages(flow, run["brevitas"], run["out"])
    expected = stage_check.onnx_stage(stages["partitioned"])(run["images"])
    emulated = Emulator(stages["partitioned"])(run["images"])
    assert np.array_equal(emulated.reshape(expected.shape), expected)
