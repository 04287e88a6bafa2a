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


def _fifo(width_bits, depth, style):
    shape = [1, 8, 8, 1]
    return Block("fifo", "StreamingFIFO", {
        "dataType": f"UINT{width_bits}", "depth": depth, "folded_shape": shape,
        "impl_style": style,
    })  # fmt: skip


def test_vivado_fifos_store_whole_bytes():
    # FINN sets the AXI-Stream FIFO IP in whole bytes: 4 bits are stored as 8, 8 columns of
    # 32K x 1 for 32768 words (4 columns if the padding were not stored)
    _, bram, _, rule = block_models.fifo_rule(_fifo(4, 32768, "vivado"), PART)
    assert bram == 8.0 and "8b" in rule
    assert block_models.fifo_rule(_fifo(8, 32768, "vivado"), PART)[1] == 8.0
    assert block_models.fifo_rule(_fifo(9, 4096, "vivado"), PART)[1] == 2.0  # 16b: 2 x 4Kx9


def test_srl_fifo_luts_count_one_lut_per_32_words_of_a_bit():
    coefficients = {"blocks": {"FIFO": {"LUT": {"rtl": 30.0, "rtl_width": 0.5}, "designs": []}}}
    shallow = block_models.cost(_fifo(4, 32, "rtl"), PART, coefficients)
    deep = block_models.cost(_fifo(4, 4096, "rtl"), PART, coefficients)
    # same fitted part; the SRLC32Es go from 4 x 1 to 4 x 128
    assert deep.LUT - shallow.LUT == 4 * 127
    assert deep.BRAM36 == shallow.BRAM36 == 0


def test_a_vvau_is_costed_with_the_mvau_fit_where_none_is_published():
    coefficients = {"blocks": {"MVAU": {"LUT": {"const": 100.0, "lut_macs": 2.0}, "FF": {},
                                        "designs": ["a", "b"]}}}  # fmt: skip
    vvau = Block("vvau", "VVAU_hls", {
        "PE": 4, "SIMD": 9, "Channels": 16, "Kernel": [3, 3], "inputDataType": "UINT2",
        "weightDataType": "INT2", "outputDataType": "UINT2", "resType": "lut",
    })  # fmt: skip
    cost = block_models.cost(vvau, PART, coefficients)
    assert cost.LUT == pytest.approx(100.0 + 2.0 * 4 * 9 * 2 * 2 + cost.features["lutram"])
    assert "MVAU fit on 2 builds (no published VVAU)" in cost.rule
    assert block_models.cost(vvau, PART, {"blocks": {}}).rule.endswith("prior (none published)")


def _report(tmp_path, name, routed_lut, hls_lut):
    import json

    block = {"PE": 1, "SIMD": 1, "MW": 8, "MH": 8, "inputDataType": "UINT4",
             "weightDataType": "INT4", "outputDataType": "UINT4"}  # fmt: skip
    report = {
        "source": {"part": PART},
        "top": {"LUT": 5000, "FF": 5000},
        "blocks": {
            "StreamingDataflowPartition_1_MVAU_hls_0": {
                "LUT": routed_lut, "FF": 100, "cfg": {"op_type": "MVAU_hls", **block},
            },
            "StreamingDataflowPartition_0_IODMA_0": {"LUT": 700, "FF": 1000},
        },
        "estimate_layer_resources_hls": {"MVAU_hls_0": {"LUT": str(hls_lut)}},
    }  # fmt: skip
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(report))
    return published_builds.load_build(path)


def test_a_build_whose_layers_synthesis_removed_is_not_fitted(tmp_path):
    removed = _report(tmp_path, "removed", routed_lut=60, hls_lut=2700)  # 2 % of FINN's HLS
    assert "synthesis removed" in removed.excluded
    assert [item.block.kind for item in removed.blocks] == ["IODMA"]
    kept = _report(tmp_path, "kept", routed_lut=700, hls_lut=2700)  # 26 %, as F2Opt's
    assert kept.excluded == ""
    assert sorted(item.block.kind for item in kept.blocks) == ["IODMA", "MVAU"]


def test_every_held_out_seven_series_design_meets_the_goal(builds):
    designs, _ = block_fit.leave_one_out(builds)
    within = block_fit.within_goal(designs)
    published = designs["published"].notna()
    assert within[published].all(), designs[published & ~within.fillna(False)]
    assert len(set(designs["design"])) >= 5  # F2Opt x 2 and tsopeter x 3
