"""Block models: counted BRAM/DSP rules against published figures, fitting, hold-out."""

from pathlib import Path

import pytest

from modules.hardware import block_fit, block_models, published_builds
from modules.hardware.block_models import Block

REPORTS = Path("/work/shared/finn_reports")
PART = "xc7z020clg400-1"


@pytest.mark.parametrize(
    "width, depth, bram36",
    [  # published Vivado tilings (finn_reports README, regularities 2 and 3)
        (512, 98, 7.5),  # 7 x RAMB36 512x72 + 1 x RAMB18 512x36
        (12, 18432, 12.0),  # 12 x 32Kx1 columns, not a cascade of shallower shapes
        (12, 9216, 6.0),  # 6 x 16Kx2
        (1280, 60, 18.0),
        (8, 484, 0.5),  # vivado FIFO: one RAMB18
        (21, 2992, 2.5),  # vivado FIFO: 2 x RAMB36 + 1 x RAMB18
    ],
)
def test_bram_tiling_matches_published_vivado_placements(width, depth, bram36):
    assert block_models.bram_tiles(width, depth) == bram36


def _mvau(op_type="MVAU_hls", **attrs):
    base = {
        "PE": 2,
        "SIMD": 32,
        "MW": 64,
        "MH": 64,
        "inputDataType": "UINT2",
        "weightDataType": "INT2",
        "outputDataType": "UINT2",
        "mem_mode": "internal_decoupled",
    }
    return Block("mvau", op_type, base | attrs)


@pytest.mark.parametrize(
    "block, dsp",
    [
        (_mvau(resType="auto"), 64),  # 2b x 2b at PE 2, SIMD 32: the cybersecurity MLP's 64
        (_mvau(), 64),  # finn-plus/v0.10 default resType is auto
        (_mvau(resType="lut"), 0),
        (_mvau(inputDataType="BIPOLAR"), 0),  # bipolar activations x INT2: LUTs
        (_mvau(inputDataType="BINARY", weightDataType="BINARY", resType="dsp"), 0),  # XNOR
        (_mvau("MatrixVectorActivation"), 0),  # FINN <= v0.9: resType defaults to lut
        (_mvau("MatrixVectorActivation", resType="dsp"), 64),
    ],
)
def test_hls_mvau_dsps_follow_res_type_and_operands(block, dsp):
    assert block_models.mvau_dsp(block, PART)[0] == dsp


def test_unknown_op_and_missing_attribute_are_named():
    with pytest.raises(block_models.UnknownBlock, match="Lookup_hls"):
        block_models.block_kind("Lookup_hls")
    block = _mvau()
    del block.attrs["MH"]
    with pytest.raises(block_models.MissingAttribute, match="'MH'"):
        block_models.rule_for("MVAU")(block, PART)


@pytest.fixture(scope="module")
def builds():
    if not REPORTS.is_dir():
        pytest.skip(f"published reports not found at {REPORTS}")
    return published_builds.load_builds(REPORTS)


def test_counted_rules_reproduce_published_weight_memories_and_dsps(builds):
    # BRAM and DSP are counted from attributes, never fitted: compare per published block
    checked = 0
    for build in builds:
        if build.name not in ("F2Opt_Build_tfc", "akhilvasan_finn_cybsec_MLP"):
            continue
        for item in build.blocks:
            if item.block.kind != "MVAU":
                continue
            _, bram, dsp, _ = block_models.compute_rule(item.block, build.part)
            assert bram == item.published["BRAM36"], item.block.name
            assert dsp == item.published["DSP"], item.block.name
            checked += 1
    assert checked == 8


def test_leave_one_out_never_sees_the_held_out_design(builds):
    held = next(b for b in builds if b.name == "F2Opt_Build_tfc")
    coefficients = block_fit.fit([b for b in builds if b.name != held.name])
    for fitted in coefficients["blocks"].values():
        assert held.name not in fitted["designs"]
    assert held.name not in coefficients["shell_designs"]
    designs, blocks = block_fit.leave_one_out(builds)
    assert set(designs["design"]) >= {"F2Opt_Build_tfc", "F2Opt_Build_pynqZ2"}
    row = designs[(designs["design"] == held.name) & (designs["resource"] == "LUT")].iloc[0]
    _, totals = block_fit.estimate_design(block_fit.design_blocks(held), held.part, coefficients)
    assert row["estimate"] == pytest.approx(totals["LUT"])
    assert row["published"] == held.top["LUT"]
    # per block type: held-out blocks of every kind with published figures
    assert {"MVAU", "FIFO", "DWC", "IODMA"} <= set(blocks["kind"])
