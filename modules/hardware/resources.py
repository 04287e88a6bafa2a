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

import numpy as np
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
# 7-series (`firesmoke synth`, modules/synthesis): synth_xilinx's memory_libmap prices every
# candidate geometry of the cell libraries it passes for xc7 (brams_xc4v.txt with
# HAS_SIZE_36 / HAS_CASCADE / HAS_MIXWIDTH_SDP, lutrams_xc5v.txt) and takes the cheapest,
# logic included. Its geometry search (handle_geom) for a memory with one read and one write
# port: at each base width of a cell, the word is padded to the byte (9 bits for block RAM,
# 1 for a ROM), ceil(depth / cell depth) address banks are laid side by side and cut into
# cells of that width; cost = cell cost x cells + 1/2 per extra bank per output bit (read
# mux) + 1/2 per bank (write demux). A ROM (constant thresholds) has no LUTRAM (prune_rom),
# its constant bit lanes are removed first (opt_mem), and logic costs 1/64 per bit
# (-logic-cost-rom 0.015625); a RAM in logic costs 1 per bit. Cells holding only bits no
# consumer reads (the stream padding of a weight memory) are removed afterwards. FINN's
# estimate puts every `auto` weight memory in BRAM and the calibration adds BRAM per
# threshold bit; this reproduces Yosys' BRAM on the demo designs of both tasks
# (benchmarks/synth_demo_designs.py).


@dataclass(frozen=True)
class RamCell:
    name: str
    abits: int  # address bits at width 1
    widths: tuple  # the data widths of its base-width steps
    cost: float
    widthscale: float  # LUTRAM: cost that scales with the bits used (memlib's widthscale)
    bram36: float  # BRAM36 per cell (0: LUTRAM)


BLOCK_RAMS = (
    RamCell("TDP HALF", 14, (1, 2, 4, 9, 18), 129, 0, 0.5),
    RamCell("TDP FULL", 15, (1, 2, 4, 9, 18, 36), 257, 0, 1.0),
    RamCell("TDP CASCADE", 16, (1, 2, 4, 9), 513, 0, 2.0),
    RamCell("SDP HALF", 14, (1, 2, 4, 9, 18, 36), 129, 0, 0.5),
    RamCell("SDP FULL", 15, (1, 2, 4, 9, 18, 36, 72), 257, 0, 1.0),
)
LUTRAMS = tuple(
    RamCell(f"{name} ABITS {abits}", abits, (width,), cost, scale, 0.0)
    for name, cost, scale, shapes in (
        ("LUTRAM SP", 8, 8, ((5, 8), (6, 4), (7, 2), (8, 1))),
        ("LUTRAM DP", 8, 8, ((5, 4), (6, 2), (7, 1))),
        ("LUTRAM QP", 7, 7, ((5, 2), (6, 1))),
        ("LUTRAM SDP", 8, 7, ((5, 6), (6, 3))),
    )
    for abits, width in shapes
)
BRAM_BYTE = 9  # block RAM write-enable granularity (memlib `byte`)
FACTOR_MUX = FACTOR_DEMUX = 0.5
ROM_LOGIC_COST_PER_BIT = 1 / 64  # synth_xilinx's -logic-cost-rom for xc6v/xc7
RAM_LOGIC_COST_PER_BIT = 1.0


@dataclass(frozen=True)
class Mapping:
    cell: RamCell
    unit: int  # cell data width used
    banks: int  # address banks laid side by side
    word: int  # padded word width
    cost: float


def _geometries(cell, depth, width, rom):
    """Every base width of `cell` for a depth x width memory, priced as memory_libmap does."""
    for step, unit in enumerate(cell.widths):
        byte = 1 if rom else min(BRAM_BYTE, unit) if cell.bram36 else unit
        word = math.ceil(width / byte) * byte
        banks = math.ceil(depth / 2 ** (cell.abits - step))
        cells = math.ceil(banks * word / unit)
        cost = (cell.cost - cell.widthscale) * cells
        cost += cell.widthscale * banks * width / unit
        cost += FACTOR_MUX * (banks - 1) * width
        cost += 0 if rom or banks == 1 else FACTOR_DEMUX * banks
        yield Mapping(cell, unit, banks, word, cost)


def memory_mapping(depth, width, rom=False, ram_style="auto"):
    """memory_libmap's choice for a depth x width memory with one read port (and one write
    port unless `rom`) on the 7-series: a Mapping, or None for logic."""
    cells = ()
    if ram_style != "distributed":
        cells += BLOCK_RAMS
    if ram_style != "block" and not rom:
        cells += LUTRAMS
    best = None
    for cell in cells:
        for mapping in _geometries(cell, depth, width, rom):
            if best is None or mapping.cost < best.cost:
                best = mapping
    logic = depth * width * (ROM_LOGIC_COST_PER_BIT if rom else RAM_LOGIC_COST_PER_BIT)
    if best is None or (ram_style == "auto" and logic <= best.cost):
        return None
    return best


def memory_bram36(depth, width, ram_style="auto", rom=False, used_width=None):
    """BRAM36 (RAMB18 counting one half) of a depth x width memory as Yosys maps it for the
    7-series; 0 in LUTRAM or logic. `used_width`: the low bits any consumer reads (cells
    holding only the others are removed)."""
    if not depth or not width:
        return 0.0
    mapping = memory_mapping(depth, width, rom, ram_style)
    if mapping is None or not mapping.cell.bram36:
        return 0.0
    used = range(width if used_width is None else used_width)
    cells = {(bit + mapping.word * bank) // mapping.unit for bank in range(mapping.banks)
             for bit in used}  # fmt: skip
    return mapping.cell.bram36 * len(cells)


def rtl_layer_bram36(model, node):
    """BRAM36 of an RTL layer of `model` whose memory the RTL (not FINN's estimate) decides,
    or None: the weight streamer of an internal_decoupled MVAU/VVAU, and constant thresholds."""
    instance = getCustomOp(node)
    if node.op_type in ("MVAU_rtl", "VVAU_rtl"):
        if instance.get_nodeattr("mem_mode") != "internal_decoupled":
            return 0.0  # weights streamed from outside the layer
        used = instance.get_nodeattr("PE") * instance.get_nodeattr("SIMD")
        used *= instance.get_input_datatype(1).bitwidth()
        width = instance.get_instream_width_padded(1)  # memstream's WIDTH: the stream's
        ram_style = instance.get_nodeattr("ram_style")
        return memory_bram36(instance.calc_wmem(), width, ram_style, used_width=used)
    if node.op_type == "Thresholding_rtl" and not _thresholds_in_bram(instance):
        return threshold_rom_bram36(model, node)
    if node.op_type == "StreamingFIFO_rtl":
        style = instance.get_nodeattr("ram_style")
        return fifo_bram36(instance.get_nodeattr("depth"), instance.get_instream_width_padded(0),
                           "shift" if style == "srl" else style)  # fmt: skip
    return None


FIFO_BRAM_MIN_ABITS = 9  # fifo.sv: the smallest block RAM primitive holds 512 words


def fifo_storage(depth, width, ram_style="auto"):
    """fifo.sv's own choice of storage for a DEPTH x DATA_WIDTH FIFO (RAM_STYLE_EFF; "ultra"
    is block RAM on the 7-series, as the synthesis copies adjust it)."""
    if depth <= 33:
        return "shift"
    if ram_style != "auto":
        return "block" if ram_style == "ultra" else ram_style
    if depth <= 64 and width < 12:
        return "shift"
    if depth <= 257 or width < 5:
        return "distributed"
    return "block"


def fifo_bram36(depth, width, ram_style="auto"):
    """BRAM36 of a fifo.sv FIFO on the 7-series: its block-RAM storage is a 2^lo-word memory
    plus, when that saves a doubling, a 2^hi-word one (fifo.sv's memory space decomposition
    of DEPTH-1 words), each mapped as Yosys maps it; shift and distributed FIFOs use none."""
    if fifo_storage(depth, width, ram_style) != "block":
        return 0.0
    lo = math.ceil(math.log2(depth - 1))
    hi = 0
    if lo > FIFO_BRAM_MIN_ABITS:
        rest = math.ceil(math.log2(depth - 1 - 2 ** (lo - 1)))
        if rest < lo - 1:
            lo, hi = lo - 1, max(rest, 1)
    bram = memory_bram36(2**lo, width, "block")
    if hi:
        bram += memory_bram36(2**hi, width, "block" if hi >= FIFO_BRAM_MIN_ABITS else "auto")
    return bram


def threshold_stage_roms(model, node):
    """The threshold ROMs of a Thresholding_rtl as thresholding.sv holds them: per stage s of
    the binary search and per PE, the C/PE x 2^s thresholds that stage compares against
    (integers in the threshold datatype's two's complement), in the order finn-plus writes
    `<node>_threshs_<pe>_<s>.dat` (`make_weight_file`, "internal_embedded")."""
    instance = getCustomOp(node)
    thresholds = np.asarray(model.get_initializer(node.input[1]), dtype=np.int64)
    pe = instance.get_nodeattr("PE")
    stages = instance.get_output_datatype(0).bitwidth()
    steps = 2**stages - 1
    thresholds = np.pad(thresholds, ((0, 0), (0, steps - thresholds.shape[1])))
    if thresholds.shape[0] == 1:  # one set of thresholds for all channels
        thresholds = np.broadcast_to(thresholds, (pe, steps))
    width = instance.get_input_datatype(1).bitwidth()
    words = thresholds & ((1 << width) - 1)
    by_pe = words.reshape(-1, pe, steps)  # (channel fold, PE, thresholds)
    for stage in range(stages):
        picked = by_pe[:, :, (1 << (stages - stage - 1)) - 1 :: 1 << (stages - stage)]
        for lane in range(pe):
            yield stage, lane, picked[:, lane, :].reshape(-1)


def varying_bits(values, width):
    """Bit lanes of `width`-bit words that are not the same in every word (opt_mem removes
    the others before the memory is mapped)."""
    bits = (np.asarray(values)[:, None] >> np.arange(width)) & 1
    return int(np.sum(bits.min(axis=0) != bits.max(axis=0)))


def threshold_rom_bram36(model, node):
    """BRAM36 of the constant thresholds of a Thresholding_rtl (every stage ROM of every PE,
    its constant bit lanes removed)."""
    width = getCustomOp(node).get_input_datatype(1).bitwidth()  # thresholding.sv's WT
    return sum(
        memory_bram36(len(values), varying_bits(values, width), rom=True)
        for _, _, values in threshold_stage_roms(model, node)
    )


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

    stitched = stitched_design(folded, part, depths, fifo_method)
    estimates = stitched.analysis(partial(res_estimation, fpgapart=part))
    io_dmas = [block_models.Block(name, "IODMA", {}) for name in ("dma_in", "dma_out")]
    table = _costed(stitched, stitched.graph.node, part, coefficients, io_dmas, shell=True)
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
    return table


def layer_table(folded, part, layers, coefficients=None):
    """block_table's rows of the `layers` of a folded design and of their weight DMAs, without
    stitching the rest: a layer's block model reads its own attributes and weights only, not
    the FIFOs and converters around it (the fit-to-part search costs every option this way)."""
    wanted = set(layers)
    nodes = [node for node in folded.graph.node if node.name in wanted]
    return _costed(folded, nodes, part, coefficients, [], shell=False)


def _costed(model, nodes, part, coefficients, extra_blocks, shell):
    """Block-model rows of `nodes` of `model`, `extra_blocks` and the weight DMAs of its
    external layers (column weights_of: the layer a weight DMA feeds)."""
    coefficients = coefficients or block_models.load_coefficients()
    blocks = [node_block(model, node) for node in nodes] + list(extra_blocks)
    weight_dmas = weight_dma_blocks(model)
    blocks += [block for block, _ in weight_dmas]
    table, _ = block_fit.estimate_design(blocks, part, coefficients, shell)
    table = table.rename(columns={"rule": "source"}).set_index("block")
    owners = {block.name: layer for block, layer in weight_dmas}
    table["weights_of"] = [owners.get(block) for block in table.index]
    if not has_uram(part):
        _rtl_memories_as_yosys_maps_them(table, model)
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
        bram = rtl_layer_bram36(stitched, node) if node.name in table.index else None
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
