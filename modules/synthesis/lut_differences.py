"""Why the resource model's LUTs differ from Yosys' per RTL block type, where they differ by
more than `TOLERANCE_PERCENT` on the demo designs (benchmarks/synth_demo_designs.py).

The model's LUTs are the block models (hardware/block_models.py) fitted on published per-block
Vivado reports (issue 16), nearly all of HLS layers or older FINN releases' RTL; where no
published block with its attributes exists (finn-plus' RTL padding, SWG and MVU) they are
priors. Yosys maps finn-plus 1.6.1's RTL as it is. DSP and BRAM are structural and agree
exactly; the LUT differences below are what the published corpus cannot yet fit, not
something to patch per layer here.
"""

TOLERANCE_PERCENT = 25.0

NOTES = {  # model - Yosys in % of Yosys: demo classifier / demo detector (measured 2026-12-05)
    "Thresholding": (
        "-66 / -46 %: model = 44 LUT + 0.14 per comparator bit, fitted on published HLS "
        "thresholding blocks; thresholding.sv keeps constant thresholds as ROM in logic "
        "(except the deep stages the model sends to BRAM) and Yosys maps that ROM to LUTs"
    ),
    "Padding": (
        "-66 / -64 %: prior (20 LUT + 1 per stream bit; no published padding block has its "
        "attributes); fmpadding.sv's counters and stream buffering map to ~70-80 LUT "
        "whatever the width"
    ),
    "StreamingDataWidthConverter": (
        "-76 / -70 %: fitted on older FINN's converters (11 LUT + 0.02 per bit); finn-plus' "
        "generic dwc_axi/vpc.sv converter maps to 18-557 LUT in Yosys, the 80->10 bit "
        "down-converter largest"
    ),
    "ConvolutionInputGenerator": (
        "-42 / -29 %: prior for the RTL SWG (published SWG blocks are HLS ones); Yosys puts "
        "the line buffers in LUTRAM (RAM32M/RAM64M, 170-310 LUT) beside 300-390 LUT of "
        "address logic"
    ),
    "MVAU": (
        "+78 / +10 %: prior for finn-rtllib's MVU (200 LUT + 2.2 per adder-tree and "
        "accumulator bit, from seed 001's per-type report of an older MVU RTL); no published "
        "MVAU_rtl block with its attributes exists to refit it"
    ),
}


def explain(per_type):
    """`per_type` (design.per_type) with a `why` column for block types beyond the
    tolerance: the note, or 'unexplained' so a new difference is visible."""
    table = per_type.copy()
    beyond = table["LUT diff %"].abs() > TOLERANCE_PERCENT
    table["why"] = ""
    table.loc[beyond, "why"] = [NOTES.get(kind, "unexplained") for kind in table.index[beyond]]
    return table
