"""The "packed" weight memory of the fit search: an HLS MVAU's SIMD widened to the weight
memory shape that needs the fewest BRAM36, counted by the whole-design model, and the
widened design still bit-exact from Brevitas to the emulator."""

import functools
import tempfile

import numpy as np
import torch
from finn_designs import one_mvau_hls
from qonnx.custom_op.registry import getCustomOp
from test_darknet_finn import SIZE, calibrate, demo_images

from modules.dataflow import flow as finn_flow
from modules.dataflow import stage_check
from modules.hardware import estimates as fe
from modules.hardware import resources
from modules.hardware.emulator import Emulator
from modules.models.darknet import build_detector
from modules.models.quant_layers import BitWidths, QuantLayers
from modules.quantization.export import export_qonnx_model

PART = "xc7z020clg400-1"


def tinier_conv7(simd):
    """Tinier-yolo's 512 -> 512 3x3 binary conv at 13x13 as one MVAU_hls, weights on chip."""
    weights = np.ones((4608, 512))
    return one_mvau_hls(weights, simd, 1, [1, 13, 13], "UINT3", "BIPOLAR",
                        mem_mode="internal_decoupled", ram_style="block")  # fmt: skip


def layer_bram(model):
    return float(resources.block_table(model, PART).loc["MVAU_hls_0", "BRAM36"])


def test_packing_turns_two_32k_columns_per_bit_into_16kx2():
    model = tinier_conv7(simd=48)
    # 48 bits x 49152 words: deeper than one 32Kx1 column, so two per bit
    assert layer_bram(model) == 96
    fe.pack_weights(getCustomOp(model.graph.node[0]))
    simd = getCustomOp(model.graph.node[0]).get_nodeattr("SIMD")
    assert simd == 144  # 144 bits x 16384 words: 72 RAMB36 as 16Kx2
    assert layer_bram(model) == 72


def test_packing_keeps_a_shape_that_is_already_best():
    model = tinier_conv7(simd=36)  # 36 bits x 65536 words: two 32Kx1 columns per bit, full
    fe.pack_weights(getCustomOp(model.graph.node[0]))
    assert getCustomOp(model.graph.node[0]).get_nodeattr("SIMD") == 36
    assert layer_bram(model) == 72


@functools.cache
def packed_tinier():
    torch.manual_seed(0)
    images = demo_images(4)
    model = build_detector("tinier-yolo-dfire", QuantLayers(BitWidths(weight=1, act=3)), 1.0)
    model = calibrate(model, images)
    out = tempfile.mkdtemp(prefix="packed_tinier_")
    clean = export_qonnx_model(model, SIZE, f"{out}/raw.onnx", f"{out}/clean.onnx")
    flow = finn_flow.run_flow(clean, out, PART, target_fps=50)
    layers = fe.compute_layers(flow.child)
    designs = {
        memory: fe.build_design(
            flow.child, PART, 50, 100, dict.fromkeys(layers, f"hls_lut/{memory}")
        )
        for memory in ("block", fe.PACKED)
    }
    return model, flow, designs, images, out


def test_the_packed_design_needs_less_bram_and_stays_bit_exact():
    model, flow, designs, images, out = packed_tinier()
    simd = {
        memory: {
            n.name: getCustomOp(n).get_nodeattr("SIMD")
            for n in design.graph.node
            if n.op_type == "MVAU_hls"
        }  # fmt: skip
        for memory, design in designs.items()
    }
    widened = [name for name in simd["block"] if simd[fe.PACKED][name] != simd["block"][name]]
    assert widened
    for name in widened:
        assert simd[fe.PACKED][name] % simd["block"][name] == 0
    bram = {m: resources.block_table(d, PART)["BRAM36"] for m, d in designs.items()}
    assert all(bram[fe.PACKED][name] < bram["block"][name] for name in widened)
    flow.folded = designs[fe.PACKED]
    stages = stage_check.flow_stages(flow, model, out, emulator=Emulator)
    table, outputs = stage_check.stage_equivalence(stages, images[:2])
    stage_check.assert_identical(table)
    assert np.array_equal(outputs["emulated"], outputs["brevitas"])
