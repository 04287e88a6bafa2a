"""Seed 004's path at a tiny size: the demo-tinier profile's network (tinier-yolo with this
repo's 2-class head, binary weights, 3-bit activations) at 64x64 and width 1/8, its binary
layers streaming their weights from DRAM, bit-exact from Brevitas through every FINN stage to
the emulator on demo pictures, with one weight DMA per streamed layer planned for the board."""

import functools
import tempfile

import numpy as np
import pytest
import torch
from qonnx.custom_op.registry import getCustomOp
from test_darknet_finn import SIZE, calibrate, demo_images

import config
from modules.dataflow import flow as finn_flow
from modules.dataflow import stage_check
from modules.dataflow.external_weights import external_weight_layers, set_external_weights
from modules.deployment.weight_files import dma_plan
from modules.hardware.emulator import Emulator
from modules.models.darknet import build_detector
from modules.models.quant_layers import BitWidths, QuantLayers
from modules.quantization.export import export_qonnx_model

PART = "xc7z020clg400-1"


def test_demo_tinier_profile_is_seed_004s_plan():
    try:
        values = config.apply("demo-tinier")
    finally:
        config.apply()
    assert values["TASK"] == "detect" and values["DETECTOR_CFG"] == "tinier-yolo-dfire"
    assert (values["WEIGHT_BIT_WIDTH"], values["ACT_BIT_WIDTH"]) == (1, 3)
    assert (values["PTQ_WEIGHT_BIT_WIDTH"], values["PTQ_ACT_BIT_WIDTH"]) == (1, 3)
    assert values["DEPLOY_MODEL"] == "gate" and values["CLOCK_MHZ"] == 100
    assert values["BOARD_PARTS"][values["BOARD"]] == PART


@functools.cache
def tinier_flow():
    torch.manual_seed(0)
    images = demo_images(6)
    bits = BitWidths(weight=1, act=3)
    model = calibrate(build_detector("tinier-yolo-dfire", QuantLayers(bits), 1 / 8), images)
    out = tempfile.mkdtemp(prefix="finn_tinier_")
    clean = export_qonnx_model(model, SIZE, f"{out}/raw.onnx", f"{out}/clean.onnx")
    flow = finn_flow.run_flow(clean, out, PART, target_fps=1000)
    # the binary layers at SIMD 8 (a DMA word of whole bytes), streamed, via the folding JSON
    folding = {
        n.name: {"SIMD": 8, "mem_mode": "external"}
        for n in flow.folded.graph.node
        if n.op_type.startswith("MVAU")
        and getCustomOp(n).get_nodeattr("weightDataType") == "BIPOLAR"
        and getCustomOp(n).get_nodeattr("MW") % 8 == 0
    }
    folded, _ = finn_flow.fold(flow.models["specialized"], target_fps=1000, folding_config=folding)
    flow.folded = folded
    return {"brevitas": model, "flow": flow, "out": out, "images": images[:3]}


def test_tinier_yolo_bit_exact_with_weights_from_dram():
    run = tinier_flow()
    flow = run["flow"]
    streamed = external_weight_layers(flow.folded)
    assert len(streamed) >= 3
    for name in streamed:  # binary weights stream at 1 bit each (not FINN's minimized INT2)
        node = flow.folded.get_node_from_name(name)
        assert getCustomOp(node).get_nodeattr("weightDataType") == "BIPOLAR"
    stages = stage_check.flow_stages(flow, run["brevitas"], run["out"], emulator=Emulator)
    table, outputs = stage_check.stage_equivalence(stages, run["images"])
    stage_check.assert_identical(table)
    assert np.array_equal(outputs["emulated"], outputs["brevitas"])
    assert len(np.unique(outputs["emulated"])) > 10  # a head tensor, not a constant


def test_tinier_yolo_plans_one_weight_dma_per_streamed_layer():
    flow = tinier_flow()["flow"]
    plan = dma_plan(flow.folded, PART)
    assert [e["layer"] for e in plan["weights"]] == external_weight_layers(flow.folded)
    names = [e["dma"] for e in plan["weights"]] + [plan["input_dma"]]
    assert sorted(names) == [f"idma{i}" for i in range(len(names))]


def test_first_layer_is_not_streamed_by_mistake():
    """The 8-bit first layer keeps its weights on chip: only the named layers stream."""
    flow = tinier_flow()["flow"]
    first = next(n for n in flow.folded.graph.node if n.op_type.startswith("MVAU"))
    assert first.name not in external_weight_layers(flow.folded)
    with pytest.raises(ValueError, match="not in the design"):
        set_external_weights(flow.folded, ["MVAU_rtl_999"])
