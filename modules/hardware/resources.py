"""Resource model of the whole stitched design: what Vivado will place, not only the layers.

FINN's per-layer estimates leave out what its builder adds around the layers (FIFOs between
layers, data-width converters, the input/output DMA engines, the AXI infrastructure of the
Zynq block design) and estimate 0 LUT for several layers. This module:

- builds the stitched graph FINN's builder would build, with FINN's own transforms
  (InsertDWC, InsertFIFO with depths from `fifo_sizing`, SpecializeLayers);
- costs every block with its block model (`block_models`: DSPs and BRAM counted from the
  node's attributes, LUT/FF fitted on published per-block reports), adds the IODMAs and the
  shell, and keeps FINN's own per-layer estimate beside each block;
- counts DSPs of RTL MVAUs with the lane packing the finn-rtllib core really uses
  (mvu.sv: NUM_LANES from the DSP's A-port width, 25 bits on DSP48E1, 27 on DSP48E2; an
  8-bit input packs 2 PEs per slice, not 4 as FINN's estimate assumes). Seed 001's published
  build (Vivado 2022.2, FINN v0.10.1-era mvu_4sx4u.sv / mvu_8sx8u_dsp48.sv) used 212 DSPs
  for a folding whose finn-plus cores instantiate 111 and whose every layer at two lanes
  would take 170; the older cores' extra slices are not published per layer, so the
  difference is reported (benchmarks/calibrate_resources.py) rather than fitted away.

`block_fit.leave_one_out` gives the error of the model on published designs it was not
fitted on.
"""

import copy
import math
from dataclasses import dataclass
from functools import partial

from qonnx.custom_op.registry import getCustomOp

from modules.dataflow.external_weights import external_weight_layers
from modules.dataflow.setup import ensure_finn
from modules.hardware import block_fit, block_models, dram, fifo_sizing
from modules.hardware.dsp_packing import dsp_a_width, mvu_dsp_slices, mvu_lanes

RESOURCES = ("LUT", "FF", "BRAM36", "DSP")


@dataclass(frozen=True)
class PartResources:
    part: str
    LUT: int
    FF: int
    BRAM36: int
    DSP: int


# Device -> resources (Xilinx product tables); the package/speed suffix does not matter.
PART_TABLE = {
    "xc7z007s": (14_400, 28_800, 50, 66),
    "xc7z010": (17_600, 35_200, 60, 80),
    "xc7z014s": (40_600, 81_200, 107, 170),
    "xc7z020": (53_200, 106_400, 140, 220),
    "xc7z030": (78_600, 157_200, 265, 400),
    "xczu3eg": (70_560, 141_120, 216, 360),
    "xczu7ev": (230_400, 460_800, 312, 1_728),
    "xck26": (117_120, 234_240, 144, 1_248),
}


def part_resources(part):
    """LUT/FF/BRAM36/DSP of an FPGA part name such as xc7z020clg400-1."""
    for device, (lut, ff, bram, dsp) in PART_TABLE.items():
        if part.lower().startswith(device):
            return PartResources(part, lut, ff, bram, dsp)
    raise ValueError(
        f"part {part!r} (config.BOARD_PARTS) is not in modules/hardware/resources.py "
        f"PART_TABLE; known devices: {sorted(PART_TABLE)}"
    )


# ------------------------------------------------------------------ block types

BLOCK_TYPES = {  # op_type prefix -> block type of the published per-block reports
    "StreamingFIFO": "FIFO",
    "StreamingDataWidthConverter": "StreamingDataWidthConverter",
    "Thresholding": "Thresholding",
    "FMPadding": "Padding",
    "ConvolutionInputGenerator": "ConvolutionInputGenerator",
    "MVAU": "MVAU",
    "VVAU": "VVAU",
    "DuplicateStreams": "DuplicateStreams",
    "AddStreams": "AddStreams",
    "ElementwiseAdd": "AddStreams",
    "GlobalAccPool": "Pool",
    "Pool": "Pool",
    "LabelSelect": "Other",
}


def block_type(op_type):
    for prefix, name in BLOCK_TYPES.items():
        if op_type.startswith(prefix):
            return name
    return "Other"


# ------------------------------------------------------------------ DSP packing


def _narrow_weights(model, node, instance):
    weights = model.get_initializer(node.input[1])
    return weights is not None and weights.min() > instance.get_input_datatype(1).min()


def rtl_mvau_dsp(model, node, part):
    """DSPs of an MVAU_rtl as its core instantiates them (`mvu_dsp_slices`)."""
    instance = getCustomOp(node)
    a_width = dsp_a_width(part)
    if a_width is None:  # DSP58: FINN's own formula matches its core
        return float(instance.dsp_estimation(part))
    lanes = mvu_lanes(
        instance.get_input_datatype(1).bitwidth(),
        instance.get_input_datatype(0).bitwidth(),
        _narrow_weights(model, node, instance),
        a_width,
    )
    return float(mvu_dsp_slices(instance.get_nodeattr("PE"), instance.get_nodeattr("SIMD"), lanes))


# ------------------------------------------------------------------ memories of RTL layers
# Where the finn-rtllib layers put their memories, as Yosys' memory mapping decides it on the
# 7-series (`firesmoke synth`, modules/synthesis): memory_libmap takes the cheapest of LUTRAM
# (lutrams_xc5v.txt: cost 8 per 256 bit-entries, i.e. 1 per 32) and block RAM
# (brams_xc4v.txt: RAMB18 512x36 ... 16Kx1 at cost 129, RAMB36 512x72 ... 32Kx1 at 257).
# FINN's estimate puts every `auto` weight memory in BRAM and the calibration adds BRAM per
# threshold bit; Yosys keeps shallow weight memories in LUTRAM and constant thresholds
# (no run-time access) in logic but for the deep stages. On the demo designs this gives
# Yosys' DSP count exactly and its BRAM36 to 25.0 vs 23.0 (classifier) and 82.0 vs 81.5
# (detector): four value-dependent threshold ROMs and one weight memory Yosys splits
# into two geometries (benchmarks/synth_demo_designs.py).

RAMB18_SHAPES = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))
RAMB36_SHAPES = ((512, 72), (1024, 36), (2048, 18), (4096, 9), (8192, 4), (16384, 2))
LUTRAM_COST_PER_BIT_32 = 1  # one cost unit per bit column per 32 entries
RAMB18_COST, RAMB36_COST = 129, 257


MUX_COST_PER_BIT = 1  # each further block in depth adds an output mux input per bit
# a constant threshold stage of this many bits or more: Yosys maps the ROM to BRAM (demo
# designs: 832 x 11 bits and up did; 1024 x 9 did for 3 of 7 equal-shaped layers, 448 x 11
# never: the constant bits Yosys removes first make the choice value-dependent there)
THRESHOLD_ROM_BRAM_BITS = 8192


def _bram_option(depth, width, shapes, cost):
    """(cost, blocks) of the cheapest single geometry, output muxes included."""
    options = []
    for d, w in shapes:
        deep, wide = math.ceil(depth / d), math.ceil(width / w)
        options.append((deep * wide * cost + (deep - 1) * width * MUX_COST_PER_BIT, deep * wide))
    return min(options)


def memory_bram36(depth, width, ram_style="auto"):
    """BRAM36 (RAMB18 counting one half) of a depth x width memory with one read/write port
    as Yosys maps it for the 7-series; 0 when it goes to LUTRAM."""
    if not depth or not width or ram_style in ("distributed", "ultra_distributed"):
        return 0.0
    half_cost, half = _bram_option(depth, width, RAMB18_SHAPES, RAMB18_COST)
    full_cost, full = _bram_option(depth, width, RAMB36_SHAPES, RAMB36_COST)
    bram_cost, bram36 = min((half_cost, half / 2), (full_cost, float(full)))
    lutram_cost = LUTRAM_COST_PER_BIT_32 * width * math.ceil(depth / 32)
    if ram_style == "block" or bram_cost < lutram_cost:
        return bram36
    return 0.0


def rtl_layer_bram36(node):
    """BRAM36 of an RTL layer whose memory the RTL (not FINN's estimate) decides, or None:
    the weight streamer of an internal_decoupled MVAU/VVAU, and constant thresholds."""
    instance = getCustomOp(node)
    if node.op_type in ("MVAU_rtl", "VVAU_rtl"):
        if instance.get_nodeattr("mem_mode") != "internal_decoupled":
            return 0.0  # weights streamed from outside the layer
        width = instance.get_nodeattr("PE") * instance.get_nodeattr("SIMD")
        width *= instance.get_input_datatype(1).bitwidth()
        return memory_bram36(instance.calc_wmem(), width, instance.get_nodeattr("ram_style"))
    if node.op_type == "Thresholding_rtl" and not _thresholds_in_bram(instance):
        return threshold_rom_bram36(instance)
    return None


def threshold_rom_bram36(instance):
    """BRAM36 of constant thresholds (thresholding.sv: per PE, stage s of M = clog2(N+1)
    holds C/PE * 2^s thresholds): the stages of THRESHOLD_ROM_BRAM_BITS or more."""
    pe, channels = instance.get_nodeattr("PE"), instance.get_nodeattr("NumChannels")
    steps = instance.get_nodeattr("numSteps")
    width = instance.get_input_datatype(1).bitwidth()  # thresholding.sv's WT
    total = 0.0
    for stage in range(math.ceil(math.log2(steps + 1))):
        depth = channels // pe * 2**stage
        if depth * width >= THRESHOLD_ROM_BRAM_BITS:
            total += pe * memory_bram36(depth, width, "block")
    return total


def _thresholds_in_bram(instance):
    """thresholding.sv forces BRAM only past depth_trigger_bram; run-time writable
    thresholds are RAM Vivado/Yosys may put in BRAM, constant ones are ROMs in logic."""
    return bool(instance.get_nodeattr("depth_trigger_bram")) or bool(
        instance.get_nodeattr("runtime_writeable_weights")
    )


# ------------------------------------------------------------------ stitched design


def has_uram(part):
    return not part.lower().startswith("xc7")


def _through_converters(model, depths):
    """Depths given per layer edge (producer, consumer) moved onto the converter's output
    edge where InsertDWC put a converter in between."""
    moved = dict(depths)
    for dwc in model.graph.node:
        if not dwc.op_type.startswith("StreamingDataWidthConverter"):
            continue
        producer = model.find_producer(dwc.input[0])
        consumers = model.find_consumers(dwc.output[0]) or []
        for consumer in consumers:
            depth = depths.get((producer.name if producer else None, consumer.name))
            if depth is not None:
                moved[(dwc.name, consumer.name)] = depth
    return moved


def streaming_graph(folded, part):
    """The folded child with FINN's data-width converters inserted, specialized and named:
    the streams the FIFOs go between."""
    ensure_finn()
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.transformation.general import GiveUniqueNodeNames

    model = copy.deepcopy(folded).transform(InsertDWC()).transform(SpecializeLayers(part))
    return model.transform(GiveUniqueNodeNames())


def stitched_design(folded, part, depths=None, fifo_method=fifo_sizing.METHODS[0]):
    """The folded child as FINN's builder stitches it: data-width converters and FIFOs
    inserted and specialized. FIFO depths from `fifo_sizing` by `fifo_method` (config
    FIFO_SIZING) unless `depths` gives them per (producer, consumer) layer edge."""
    from finn.transformation.fpgadataflow.insert_fifo import InsertFIFO
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.transformation.general import GiveUniqueNodeNames

    model = streaming_graph(folded, part)
    if depths is None:
        sized = fifo_sizing.fifo_depths(model, fifo_method)
    else:
        sized = _through_converters(model, depths)
    model = fifo_sizing.apply_depths(model, sized)
    model = model.transform(InsertFIFO(create_shallow_fifos=True))
    model = model.transform(SpecializeLayers(part)).transform(GiveUniqueNodeNames())
    if not has_uram(part):  # fifo.sv would ask for URAM past its threshold; Vivado uses BRAM
        for node in model.graph.node:
            instance = getCustomOp(node)
            if node.op_type.startswith("StreamingFIFO") and instance.get_ram_style() == "ultra":
                instance.set_nodeattr("ram_style", "block")
    return model


def node_block(model, node):
    """The block of a specialized finn-plus node: every attribute its op declares, defaults
    included (what the block model reads), and whether its weights are narrow-range."""
    instance = getCustomOp(node)
    attrs = {}
    for name in instance.get_nodeattr_types():
        try:
            attrs[name] = instance.get_nodeattr(name)
        except (AttributeError, KeyError, ValueError):
            continue  # a required attribute this node does not use
    if node.op_type.startswith("MVAU_rtl"):
        attrs["narrow_weights"] = _narrow_weights(model, node, instance)
    return block_models.Block(node.name, node.op_type, attrs)


def block_table(folded, part, depths=None, fifo_method=fifo_sizing.METHODS[0], coefficients=None):
    """One row per block of the stitched design: the block model (LUT, FF, BRAM36, DSP, the
    rule that costed it) and FINN's own estimate beside it (finn_LUT, finn_BRAM36, finn_DSP),
    plus the input/output IODMA and the shell."""
    from finn.analysis.fpgadataflow.res_estimation import res_estimation

    coefficients = coefficients or block_models.load_coefficients()
    stitched = stitched_design(folded, part, depths, fifo_method)
    estimates = stitched.analysis(partial(res_estimation, fpgapart=part))
    blocks = [node_block(stitched, node) for node in stitched.graph.node]
    blocks += [block_models.Block(name, "IODMA", {}) for name in ("dma_in", "dma_out")]
    weight_dmas = weight_dma_blocks(stitched)
    blocks += [block for block, _ in weight_dmas]
    table, _ = block_fit.estimate_design(blocks, part, coefficients)
    table = table.rename(columns={"rule": "source"}).set_index("block")
    owners = {block.name: layer for block, layer in weight_dmas}
    table["weights_of"] = [owners.get(block) for block in table.index]
    table["type"] = [block_type(op) for op in table["op_type"]]
    table.loc[table["kind"] == "IODMA", "type"] = "DMA"
    table.loc[table["kind"] == "shell", "type"] = "AXI"
    for name in ("LUT", "BRAM36", "DSP"):
        key = "BRAM_18K" if name == "BRAM36" else name
        scale = 0.5 if name == "BRAM36" else 1.0
        table[f"finn_{name}"] = [
            scale * float(estimates.get(block, {}).get(key, 0)) for block in table.index
        ]
    table["depth"] = [_fifo_depth(stitched, name) for name in table.index]
    if not has_uram(part):
        _rtl_memories_as_yosys_maps_them(table, stitched)
    return table


def weight_dma_blocks(stitched, max_width=dram.PYNQ_PORT_WIDTH):
    """What InsertIODMA(insert_extmemw=True) adds per external MVAU/VVAU: an IODMA (the
    published IODMA blocks' cost) whose AXI-MM word goes through its built-in HLS width
    converter to the layer's weight stream when the widths differ. It runs after the FIFO
    step and its stream width equals the layer's, so no FIFO or converter is added outside
    it. Returns [(Block, layer name)]."""
    nodes = {node.name: node for node in stitched.graph.node}
    blocks = []
    for name in external_weight_layers(stitched):
        traffic = dram.layer_traffic(nodes[name], max_width)
        blocks.append((block_models.Block(f"{name}_weight_dma", "IODMA", {}), name))
        if traffic.interface_bits != traffic.stream_bits:
            widths = {"inWidth": traffic.interface_bits, "outWidth": traffic.stream_bits}
            dwc = block_models.Block(
                f"{name}_weight_dma_dwc", "StreamingDataWidthConverter_hls", widths
            )
            blocks.append((dwc, name))
    return blocks


def _rtl_memories_as_yosys_maps_them(table, stitched):
    """BRAM36 of the finn-rtllib layers whose memory the RTL decides (weight streamers,
    constant thresholds) as Yosys maps it on the 7-series (`firesmoke synth` checks it)."""
    for node in stitched.graph.node:
        bram = rtl_layer_bram36(node) if node.name in table.index else None
        if bram is not None:
            table.loc[node.name, "BRAM36"] = bram
            table.loc[node.name, "source"] += "; BRAM as Yosys maps the RTL's memory"


def _fifo_depth(model, name):
    node = model.get_node_from_name(name)
    if node is None or not node.op_type.startswith("StreamingFIFO"):
        return None
    return getCustomOp(node).get_nodeattr("depth")


def type_totals(table):
    """Per block type: modeled LUT/FF/BRAM36/DSP and FINN's per-layer figures."""
    columns = [*RESOURCES, "finn_LUT", "finn_BRAM36", "finn_DSP"]
    return table.groupby("type")[columns].sum()


def totals(table):
    return {name: float(table[name].sum()) for name in RESOURCES}


def whole_design_totals(folded, part, fifo_method=fifo_sizing.METHODS[0]):
    """{"LUT", "FF", "BRAM36", "DSP"} of the whole stitched design (e.g. for
    `firesmoke compile --json`)."""
    return totals(block_table(folded, part, fifo_method=fifo_method))
