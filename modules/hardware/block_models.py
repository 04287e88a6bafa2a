"""Resources of one FINN block from its node attributes, for finn-plus and older FINN.

A block is an ONNX node of a FINN dataflow graph (op type and attributes, no FINN instance
needed, so op types FINN no longer registers work too: MatrixVectorActivation,
StreamingFCLayer_Batch, Thresholding_Batch, ...). Each block type has one rule:

- DSP and BRAM are counted, not fitted: HLS MVAU/VVAU DSPs follow resType (FINN up to v0.9
  defaults to "lut", later releases to "auto", where Vivado HLS maps a multi-bit activation
  product to one DSP48 per PE x SIMD and XNOR/bipolar-activation products to LUTs); RTL
  MVAUs instantiate the DSP slices of mvu.sv's lane packing (`dsp_packing.mvu_dsp_slices`);
  weight, threshold, window and FIFO memories take Vivado's best aspect-ratio tiling of
  BRAM primitives (`bram_tiles`) unless they are small enough for LUTRAM;
- LUTRAM (streamed weights, window buffers in distributed RAM) is counted: 64 bits per
  LUT, and so are SRL FIFOs: 32 words of one bit per LUT; constant tables (thresholds, HLS
  weight ROMs), which synthesis folds, are fitted; a VVAU, which no published build has,
  takes the MVAU's fit (the same HLS multiply-accumulate and threshold loop);
- the other LUTs and the FFs are linear in a few structural features of the block, with
  coefficients fitted on published per-block reports (`calibration_data/block_models.json`,
  written by benchmarks/calibrate_resources.py); a block type no published build has keeps
  prior coefficients, named as such in its rule.
"""

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from qonnx.core.datatype import DataType

from modules.dataflow.op_kinds import UnknownBlock, block_kind  # noqa: F401 (UnknownBlock re-exported)
from modules.hardware import dsp_packing

COEFFICIENTS_FILE = Path(__file__).parent / "calibration_data" / "block_models.json"
RESOURCES = ("LUT", "FF", "BRAM36", "DSP")

LEGACY_OPS = ("MatrixVectorActivation", "StreamingFCLayer_Batch", "VectorVectorActivation")
# ram_style "auto": Vivado keeps small memories in LUTRAM. Published 7-series builds: 2b x 64
# (128 bits) in LUTRAM, 8b x 80 (640 bits) and 64b x 64 in BRAM
LUTRAM_MAX_BITS = 256
SRL_DEPTH = 32  # one SRLC32E per bit per 32 words
# (depth, width, BRAM36 units) of the RAMB18/RAMB36 aspect ratios (7-series and UltraScale)
BRAM_SHAPES = (
    (16384, 1, 0.5),
    (8192, 2, 0.5),
    (4096, 4, 0.5),
    (2048, 9, 0.5),
    (1024, 18, 0.5),
    (512, 36, 0.5),
    (32768, 1, 1.0),
    (16384, 2, 1.0),
    (8192, 4, 1.0),
    (4096, 9, 1.0),
    (2048, 18, 1.0),
    (1024, 36, 1.0),
    (512, 72, 1.0),
)


class MissingAttribute(ValueError):
    """A node lacks an attribute its rule needs."""


@dataclass
class Block:
    name: str
    op_type: str
    attrs: dict

    @property
    def kind(self):
        return block_kind(self.op_type)

    @property
    def impl(self):
        return "rtl" if self.op_type.endswith("_rtl") else "hls"

    @property
    def legacy(self):
        """An op of FINN up to v0.9 (no _hls/_rtl specialization): its defaults differ."""
        return not self.op_type.endswith(("_hls", "_rtl"))

    def attr(self, name, default=None):
        value = self.attrs.get(name, default)
        if value is None:
            raise MissingAttribute(
                f"{self.name} ({self.op_type}) has no attribute {name!r}, which the "
                f"{self.kind} rule needs"
            )
        return value

    def bits(self, name):
        return datatype_bits(self.attr(name))


@dataclass
class Cost:
    LUT: float
    FF: float
    BRAM36: float
    DSP: float
    rule: str
    features: dict = field(default_factory=dict)


def datatype_bits(name):
    """Bits of a FINN/QONNX datatype name ('INT8', 'BIPOLAR', 'UINT8 (assumed ...)')."""
    token = re.match(r"\s*([A-Z]+[0-9]*)", str(name))
    if token is None:
        raise ValueError(f"not a datatype: {name!r}")
    return DataType[token.group(1)].bitwidth()


def _binary(name):
    return str(name).startswith(("BINARY", "BIPOLAR"))


# ------------------------------------------------------------------ memories


def bram_tiles(width, depth):
    """BRAM36 units of a width x depth memory in Vivado's best tiling: memories up to one
    primitive deep take the shape that needs fewest primitives (splitting the width between
    two shapes where that saves one, 512x98 -> 7 x 512x72 + 1 x 512x36); deeper ones stack
    32Kx1 columns, as Vivado does rather than cascade shallower shapes."""
    if width <= 0 or depth <= 0:
        return 0.0
    if depth > BRAM_SHAPES[6][0]:
        return float(math.ceil(depth / 32768) * width)
    fitting = [shape for shape in BRAM_SHAPES if shape[0] >= depth]
    best = min(math.ceil(width / w) * size for _, w, size in fitting)
    for _, w, size in fitting:  # widest shape for the bulk, the best one for the rest
        bulk, rest = divmod(width, w)
        if bulk and rest:
            best = min(best, bulk * size + min(math.ceil(rest / r) * s for _, r, s in fitting))
    return float(best)


def lutram_luts(width, depth):
    """LUT6 as 64x1 RAM: ceil(depth / 64) LUTs per bit."""
    return math.ceil(depth / 64) * width if width and depth else 0


def _memory(width, depth, ram_style, forced_bram=False):
    """(BRAM36, LUTRAM LUTs, placement) of a memory under a ram_style."""
    if depth <= 0 or width <= 0:
        return 0.0, 0, "none"
    if depth == 1:  # one word: constants in logic, no memory
        return 0.0, 0, "logic"
    if ram_style == "distributed" and not forced_bram:
        return 0.0, lutram_luts(width, depth), "LUTRAM"
    if ram_style in ("block", "ultra") or forced_bram or width * depth > LUTRAM_MAX_BITS:
        return bram_tiles(width, depth), 0, "BRAM"
    return 0.0, lutram_luts(width, depth), "LUTRAM"


# ------------------------------------------------------------------ per-kind rules


def _weight_shape(block):
    pe, simd = block.attr("PE"), block.attr("SIMD")
    if block.kind == "VVAU":
        kernel = block.attr("Kernel")
        total = block.attr("Channels") * math.prod(kernel)
    else:
        total = block.attr("MW") * block.attr("MH")
    return pe * simd * block.bits("weightDataType"), total // (pe * simd)


def _mvau_res_type(block):
    # FINN up to v0.9 defaults resType to "lut"; v0.10 and finn-plus to "auto"
    return block.attrs.get("resType") or ("lut" if block.legacy else "auto")


def _xnor(block):
    return bool(block.attrs.get("binaryXnorMode", 0)) or (
        _binary(block.attr("inputDataType")) and _binary(block.attr("weightDataType"))
    )


def mvau_dsp(block, part):
    pe, simd = block.attr("PE"), block.attr("SIMD")
    if block.impl == "rtl":
        a_width = dsp_packing.dsp_a_width(part) or 27
        lanes = dsp_packing.mvu_lanes(
            block.bits("weightDataType"),
            block.bits("inputDataType"),
            block.attrs.get("narrow_weights", True),
            a_width,
        )
        return float(dsp_packing.mvu_dsp_slices(pe, simd, lanes)), "DSP: mvu.sv lane packing"
    res_type = _mvau_res_type(block)
    multi_bit = block.bits("inputDataType") > 1 and not _xnor(block)
    if res_type == "dsp" and not _xnor(block) or res_type == "auto" and multi_bit:
        return float(pe * simd), f"DSP: PE x SIMD (resType {res_type})"
    return 0.0, f"DSP: 0 (resType {res_type})"


def _threshold_steps(block):
    if block.attrs.get("noActivation", 0):
        return 0
    out = block.attr("outputDataType")
    return 1 if _binary(out) else 2 ** datatype_bits(out) - 1


def _acc_bits(block):
    acc = block.attrs.get("accDataType")
    if acc:
        return datatype_bits(acc)
    width = block.attr("MW") if block.kind == "MVAU" else math.prod(block.attr("Kernel"))
    return block.bits("inputDataType") + block.bits("weightDataType") + math.ceil(math.log2(width))


def compute_rule(block, part):
    """MVAU/VVAU: DSP by resType and operands, weights by tiling or LUTRAM."""
    pe, simd = block.attr("PE"), block.attr("SIMD")
    dsp, dsp_rule = mvau_dsp(block, part)
    width, depth = _weight_shape(block)
    mem_mode = block.attrs.get("mem_mode") or ("const" if block.legacy else "internal_decoupled")
    writeable = bool(block.attrs.get("runtime_writeable_weights", 0))
    ram_style = block.attrs.get("ram_style") or "auto"
    if mem_mode == "external":  # the weight DMA feeding it is a block of its own
        bram, lutram, rom, placement = 0.0, 0, 0, "external"
    elif mem_mode in ("const", "internal_embedded"):  # HLS ROM, partitioned per PE
        per_pe = _memory(width // pe, depth, ram_style)
        bram, rom, placement = pe * per_pe[0], pe * per_pe[1], "ROM"
        lutram = 0
    else:
        bram, lutram, placement = _memory(width, depth, ram_style, forced_bram=writeable)
        rom = 0
    acc = _acc_bits(block)
    if block.impl == "rtl":  # mvu.sv: DSP chains, a LUT adder tree across SIMD, output queue
        tree = pe * (simd - 1) * (block.bits("weightDataType") + block.bits("inputDataType"))
        features = {
            "rtl_const": 1.0,
            "rtl_datapath": float(tree + pe * acc),
            "lutram": float(lutram),
        }
    else:
        ops = 1 if _xnor(block) else block.bits("weightDataType") * block.bits("inputDataType")
        features = {
            "const": 1.0,
            "lut_macs": 0.0 if dsp else pe * simd * ops,
            "accumulators": pe * acc,
            "thresholds": pe * _threshold_steps(block) * acc,
            "lutram": float(lutram),
            "rom": float(rom),
            "axilite": float(writeable),
        }
    rule = f"{dsp_rule}; weights {width}b x {depth} in {placement} ({mem_mode})"
    return features, bram, dsp, rule


def thresholding_rule(block, part):
    pe = block.attr("PE")
    channels, steps = block.attr("NumChannels"), block.attr("numSteps")
    wbits = block.bits("weightDataType")
    ram_style = block.attrs.get("ram_style") or "distributed"
    bram, rom, placement = _memory(pe * steps * wbits, channels // pe, ram_style)
    if not block.attrs.get("runtime_writeable_weights", 0):
        placement = "ROM" if rom else placement  # constants: synthesis folds much of a ROM
    features = {"const": 1.0, "comparators": pe * steps * wbits, "rom": float(rom)}
    return features, bram, 0.0, f"thresholds {channels}x{steps}x{wbits}b in {placement}"


def swg_rule(block, part):
    simd, channels = block.attr("SIMD"), block.attr("IFMChannels")
    kernel, ifm = block.attr("ConvKernelDim"), block.attr("IFMDim")
    width = simd * block.bits("inputDataType")
    depth = ((kernel[0] - 1) * ifm[1] + kernel[1]) * (channels // simd)
    ram_style = block.attrs.get("ram_style") or "distributed"
    bram, lutram, placement = _memory(width, depth, ram_style)
    impl = "rtl" if block.impl == "rtl" else "hls"  # finn-rtllib's SWG vs the HLS one
    features = {f"{impl}_const": 1.0, f"{impl}_datapath": float(width)}
    features[f"{impl}_lutram"] = float(lutram)
    return features, bram, 0.0, f"window buffer {width}b x {depth} in {placement}"


def maxpool_rule(block, part):
    width = block.attr("NumChannels") * block.bits("dataType")
    # the HLS line buffer keeps every channel of a pixel in one word, 36 bits per BRAM36
    bram = float(math.ceil(width / 36))
    return {"const": 1.0, "datapath": float(width)}, bram, 0.0, "line buffer: ceil(C*bits/36)"


def dwc_rule(block, part):
    """HLS converters shift in and out words (and go through the least common multiple
    when neither width divides the other); RTL/Vivado ones are a register and a mux."""
    style = block.attrs.get("impl_style") or block.impl
    narrow, wide = sorted((block.attr("inWidth"), block.attr("outWidth")))
    if style != "hls":
        return {"rtl": 1.0, "rtl_width": float(wide)}, 0.0, 0.0, f"width converter ({style})"
    features = {
        "hls": 1.0,
        "hls_in": float(block.attr("inWidth")),
        "hls_out": float(block.attr("outWidth")),
        "hls_lcm": float(math.lcm(narrow, wide)) if wide % narrow else 0.0,
    }
    return features, 0.0, 0.0, "width converter (hls)"


def _fifo_width(block):
    shape = block.attr("folded_shape")
    return block.bits("dataType") * int(shape[-1])


def fifo_rule(block, part):
    width, depth = _fifo_width(block), block.attr("depth")
    style = block.attrs.get("impl_style")
    # finn-plus builds every FIFO from fifo.sv (impl_style rtl or virtual, a fifo_id); older
    # FINN's rtl style is Q_srl (SRL) and its vivado style the FIFO Generator (BRAM)
    if style in (None, "virtual") or "fifo_id" in block.attrs:
        return _fifo_sv_rule(block, width, depth, part)
    rtl = style == "rtl"
    features = {
        "rtl": float(rtl),
        "rtl_width": width * rtl,
        "srl": width * math.ceil(depth / SRL_DEPTH) * rtl,
        "vivado": float(not rtl),
        "vivado_width": width * (not rtl),
    }
    if rtl:
        return features, 0.0, 0.0, f"FIFO {width}b x {depth} (rtl: SRL)"
    # FINN configures the AXI-Stream FIFO IP with TDATA_NUM_BYTES = ceil(width / 8), and the
    # IP, synthesized on its own, stores the padding bits too: the INT4 FIFOs of the three
    # tsopeter builds give 32.5, 28.0, 22.0 BRAM36 byte-wide against 32.5, 28.0, 22.5
    # published (25.0, 21.5, 17.5 at 4 bits). One routed block differs: F2Opt pynqZ2's
    # 21b x 2992 FIFO holds 2.5, not 24 bits' 3.0.
    stored = 8 * math.ceil(width / 8)
    bram = bram_tiles(stored, depth)
    return features, bram, 0.0, f"FIFO {width}b x {depth} (vivado: {stored}b FIFO/BRAM primitives)"


def _fifo_sv_rule(block, width, depth, part):
    from finn.util.basic import is_versal
    from finn.util.resource_models import _fifo_cost, _resolve

    style = _resolve(depth, width, block.attrs.get("ram_style") or "auto")
    if style == "ultra" and part.lower().startswith("xc7"):
        style = "block"  # no URAM on 7-series: Vivado builds it in BRAM
    cost = _fifo_cost(depth, width, style, is_versal(part))
    features = {"fifo_sv_lut": float(cost.lut)}
    rule = f"FIFO {width}b x {depth} (fifo.sv {style}, FINN's cost model)"
    return features, float(cost.bram) / 2, 0.0, rule


def _stream_width(block):
    """Bits per stream word: the first datatype attribute (their names vary by op and FINN
    release: dataType, inputDataType, InputDataType, lhs_dtype, inputDataTypes, ...) times the
    parallel lanes."""
    names = [k for k in block.attrs if re.search(r"data_?types?$|dtype$", k, re.IGNORECASE)]
    preferred = sorted(names, key=lambda k: ("input" not in k.lower() and "data" != k[:4], k))
    for name in preferred:
        value = block.attrs[name]
        value = value[0] if isinstance(value, list | tuple) and value else value
        if value:
            lanes = block.attrs.get("PE") or block.attrs.get("SIMD") or 1
            return datatype_bits(value) * lanes
    raise MissingAttribute(
        f"{block.name} ({block.op_type}) has no datatype attribute, which the stream rule needs"
    )


def stream_rule(block, part):
    """Blocks without memory or arithmetic of note: control plus a register per stream bit."""
    width = float(_stream_width(block))
    return {"const": 1.0, "datapath": width}, 0.0, 0.0, f"stream logic ({width:.0f}b)"


def iodma_rule(block, part):
    return {"const": 1.0}, None, 0.0, "IODMA (published IODMA blocks)"


RULES = {
    "MVAU": compute_rule,
    "VVAU": compute_rule,
    "Thresholding": thresholding_rule,
    "SWG": swg_rule,
    "MaxPool": maxpool_rule,
    "DWC": dwc_rule,
    "FIFO": fifo_rule,
    "IODMA": iodma_rule,
}


def rule_for(kind):
    return RULES.get(kind, stream_rule)


# ------------------------------------------------------------------ coefficients

# Prior LUT/FF per feature where no published block with attributes shows it: a register and
# a LUT per stream bit plus control; FINN's own fifo.sv model; finn-rtllib's MVU (adder tree
# and output queue, x2.2 as this project's earlier fit on seed 001's per-type report found)
# and SWG (about 200 LUT of control, as the CNV build's RTL SWGs, plus its LUTRAM buffer).
PRIOR = {
    "const": 20.0,
    "datapath": 1.0,
    "fifo_sv_lut": 1.0,
    "rtl_const": 200.0,
    "rtl_datapath": 2.2,
}


def load_coefficients(path=COEFFICIENTS_FILE):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: run `python benchmarks/calibrate_resources.py --write`"
        )
    return json.loads(path.read_text())


# features that are LUTs as they stand (LUTRAM: 64 bits per LUT; SRLC32E: 32 words of one
# bit per LUT), added to the fitted LUTs
COUNTED = ("lutram", "hls_lutram", "rtl_lutram", "srl")


def counted_luts(features):
    return sum(features.get(name, 0.0) for name in COUNTED)


def _linear(coefficients, features):
    fitted = {name: v for name, v in features.items() if name not in COUNTED}
    return sum(coefficients.get(name, PRIOR.get(name, 0.0)) * v for name, v in fitted.items())


# A kind no published build has, costed with the fit of a kind of the same rule and features:
# FINN's HLS VVAU runs the MVAU's multiply-accumulate and threshold loop over one channel
SAME_FEATURES = {"VVAU": "MVAU"}


def _fitted(coefficients, kind):
    """(coefficients of `kind`, where they come from)."""
    blocks = coefficients.get("blocks", {})
    if kind in blocks:
        return blocks[kind], f"fitted on {len(blocks[kind]['designs'])} builds"
    stand_in = SAME_FEATURES.get(kind)
    if stand_in in blocks:
        designs = len(blocks[stand_in]["designs"])
        return blocks[stand_in], f"{stand_in} fit on {designs} builds (no published {kind})"
    return {}, "prior (none published)"


def cost(block, part, coefficients):
    """Cost of one block with fitted `coefficients` ({kind: {"LUT": {feature: c}, "FF":
    ..., "BRAM36": constant for IODMA}})."""
    features, bram, dsp, rule = rule_for(block.kind)(block, part)
    fitted, source = _fitted(coefficients, block.kind)
    if bram is None:  # a fitted constant (IODMA)
        bram = fitted.get("BRAM36", 0.5)
    return Cost(
        LUT=_linear(fitted.get("LUT", {}), features) + counted_luts(features),
        FF=_linear(fitted.get("FF", {}), features),
        BRAM36=float(bram),
        DSP=float(dsp),
        rule=f"{rule}; LUT/FF {source}",
        features=features,
    )
