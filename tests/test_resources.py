"""Whole-design resource model: DSP48 lane packing, stitched blocks, FIFO sizing."""

import math

import pytest
from finn_designs import PART
from qonnx.custom_op.registry import getCustomOp

from modules.hardware import dsp_packing, fifo_sizing, resources


@pytest.mark.parametrize(
    "weight_bits, act_bits, narrow, a_width, lanes",
    [
        (4, 4, True, 25, 4),  # 4 + 3 * 7 = 25 bits: exactly the DSP48E1 pre-adder
        (4, 4, False, 25, 3),  # one more sign bit: the fourth lane no longer fits
        (4, 8, True, 25, 2),  # an 8-bit input (first layer): 11-bit lanes
        (8, 8, True, 27, 2),  # DSP48E2
        (25, 4, True, 25, 1),
    ],
)
def test_mvu_lanes_fill_the_dsp_a_port(weight_bits, act_bits, narrow, a_width, lanes):
    assert dsp_packing.mvu_lanes(weight_bits, act_bits, narrow, a_width) == lanes
    # whatever the count: the packed lanes fit the port and one more would not
    used = (not narrow) + weight_bits + (lanes - 1) * (weight_bits + act_bits - 1)
    assert used <= a_width or lanes == 1
    assert used + weight_bits + act_bits - 1 > a_width


@pytest.mark.parametrize(
    "pe, simd, lanes, slices",
    [
        (4, 4, 4, 4),  # one pipe of 4 lanes, one DSP per SIMD element
        (5, 2, 4, 4),  # the fifth PE opens a second pipe
        (4, 4, 3, 8),  # non-narrow 4-bit on DSP48E1: 3 lanes, PE 4 needs two pipes
        (32, 3, 2, 48),  # seed 001's stem: 8-bit input, 2 lanes, 16 pipes
        (1, 1, 2, 1),
    ],
)
def test_mvu_dsp_slices_are_pipes_times_simd(pe, simd, lanes, slices):
    assert dsp_packing.mvu_dsp_slices(pe, simd, lanes) == slices


def test_dsp48e1_port_width_from_the_part():
    assert dsp_packing.dsp_a_width("xc7z020clg400-1") == 25
    assert dsp_packing.dsp_a_width("xczu3eg-sbva484-1-e") == 27


def test_block_table_covers_the_stitched_design(mobilenet_flow):
    folded = mobilenet_flow["flow"].folded
    table = resources.block_table(folded, PART)
    layers = table[~table["type"].isin(["FIFO", "StreamingDataWidthConverter", "DMA", "AXI"])]
    assert len(layers) == len(folded.graph.node)
    assert (table["type"] == "DMA").sum() == 2  # one input, one output
    # every layer FINN leaves at 0 LUT gets a structural figure
    zero_in_finn = layers[layers["finn_LUT"] == 0]
    assert (zero_in_finn["LUT"] > 0).all(), zero_in_finn[["op_type", "LUT"]]
    # RTL MVAU DSPs: ceil(PE / lanes) chains of SIMD slices; the 8-bit-input stem packs 2
    for node in folded.graph.node:
        if node.op_type != "MVAU_rtl":
            continue
        inst = getCustomOp(node)
        dsp = table.loc[node.name, "DSP"]
        pe, simd = inst.get_nodeattr("PE"), inst.get_nodeattr("SIMD")
        assert math.ceil(pe / 4) * simd <= dsp <= pe * simd
        if inst.get_input_datatype(0).bitwidth() == 8:
            assert dsp == math.ceil(pe / 2) * simd
    totals = resources.whole_design_totals(folded, PART)
    assert set(totals) == {"LUT", "FF", "BRAM36", "DSP"}
    assert totals["LUT"] == pytest.approx(table["LUT"].sum())


def test_fifo_sizing_buffers_the_short_branch_of_each_residual(mobilenet_flow):
    folded = mobilenet_flow["flow"].folded
    depths = fifo_sizing.fifo_depths(folded)
    assert min(depths.values()) >= fifo_sizing.MIN_DEPTH
    joins = [n for n in folded.graph.node if n.op_type.startswith(fifo_sizing.JOIN_OPS)]
    assert joins
    for join in joins:
        into = {p.name: depths[(p.name, join.name)] for p in map(folded.find_producer, join.input)}
        skip = [name for name in into if name.startswith("DuplicateStreams")]
        assert skip, into
        # the skip branch waits for the whole long branch: deeper than the long branch's FIFO
        assert into[skip[0]] > min(into.values()) or len(set(into.values())) == 1
        assert into[skip[0]] > fifo_sizing.MIN_DEPTH


def test_stitched_fifos_take_given_depths_past_converters(mobilenet_flow):
    folded = mobilenet_flow["flow"].folded
    edges = fifo_sizing.fifo_depths(folded)
    stitched = resources.stitched_design(folded, PART, dict.fromkeys(edges, 7))
    fifos = [n for n in stitched.graph.node if n.op_type.startswith("StreamingFIFO")]
    depths = [getCustomOp(n).get_nodeattr("depth") for n in fifos]
    # one FIFO of the given depth per layer edge (after the converter where there is one);
    # the extra FIFO in front of a converter keeps FINN's minimum
    assert depths.count(7) == len(edges)
    assert set(depths) <= {7, fifo_sizing.MIN_DEPTH}
