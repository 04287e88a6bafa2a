"""Estimates table and totals, the budget check, the search for a design that fits, reports."""

import json
from types import SimpleNamespace

import pandas as pd
import pytest
from finn_designs import PART

import config
from modules.hardware import estimates as fe

CLOCK = 100.0


def test_totals_are_the_whole_design_with_finn_per_layer_beside(mobilenet_flow):
    folded = mobilenet_flow["flow"].folded
    budget = fe.PartBudget()
    result = fe.estimate(folded, budget, CLOCK, 0.9)
    for name in fe.BUDGET_RESOURCES:
        assert result.totals.loc[name, "used"] == pytest.approx(result.blocks[name].sum())
    for name in fe.RESOURCES:
        assert result.totals.loc[name, "FINN per-layer"] == result.layers[name].sum()
    # the stitched design has more than the layers, and never less than FINN counts
    assert {"FIFO", "StreamingDataWidthConverter", "DMA", "AXI"} <= set(result.blocks["type"])
    assert result.totals.loc["LUT", "used"] > result.totals.loc["LUT", "FINN per-layer"]
    assert result.totals.loc["DSP", "used"] >= result.totals.loc["DSP", "FINN per-layer"]
    assert len(result.layers) == len(folded.graph.node)
    assert result.performance["bottleneck_cycles"] == result.layers["cycles"].max()
    assert result.performance["fps"] == CLOCK * 1e6 / result.layers["cycles"].max()
    assert result.layers["note"].str.contains("no LUT model").any()  # said, not hidden


def test_budget_check_flags_an_over_budget_design(mobilenet_flow):
    folded = mobilenet_flow["flow"].folded
    small = fe.PartBudget(LUT=1000, BRAM36=140, DSP=1)
    result = fe.estimate(folded, small, CLOCK, 0.9)
    assert not result.fits
    assert set(fe.over_budget(result.totals).index) == {"LUT", "DSP"}


def test_board_part_and_its_resources_come_from_config():
    assert fe.part_for_board(config.BOARD, config.BOARD_PARTS) == PART
    assert fe.budget_from_config(config).part == PART
    zybo = SimpleNamespace(BOARD="Zybo", BOARD_PARTS={"Zybo": "xc7z010clg400-1"})
    budget = fe.budget_from_config(zybo)
    assert (budget.LUT, budget.FF, budget.BRAM36, budget.DSP) == (17_600, 35_200, 60, 80)
    odd = SimpleNamespace(BOARD="X", BOARD_PARTS={"X": "xc9unknown"})
    with pytest.raises(ValueError, match="xc9unknown.*BOARD_PARTS"):
        fe.budget_from_config(odd)


def test_no_dsp_budget_moves_every_layer_to_luts(mobilenet_flow):
    generic = mobilenet_flow["flow"].child
    budget = fe.PartBudget(DSP=0)
    costs, rest = fe.option_costs(generic, budget, 20000, CLOCK)
    choices, totals = fe.choose_options(costs, rest, budget, 0.9)
    assert set(choices) == set(fe.compute_layers(generic))
    assert all(option.startswith("hls_lut") for option in choices.values())
    assert totals["DSP"] == 0


def test_fit_mode_lowers_the_target_until_the_design_fits(tmp_path, mobilenet_flow):
    generic = mobilenet_flow["flow"].child
    budget = fe.PartBudget(LUT=34_000, DSP=30)  # too small for the 32x32 model at 20000 FPS
    best, frontier = fe.fit_to_part(generic, budget, 20000, CLOCK, 0.9, refine=1, step=0.5)
    assert best is not None and best.fits
    assert not frontier["fits"].iloc[-1]  # the first (highest) target did not fit
    for name, limit in budget.limits(0.9).items():
        assert best.totals.loc[name, "used"] <= limit
    paths = fe.save_report(best, tmp_path, budget, 0.9, frontier)
    assert all(path.is_file() for path in paths.values())
    summary = json.loads(paths["summary_json"].read_text())
    assert summary["fits"] and summary["performance"]["fps"] == best.performance["fps"]
    assert len(pd.read_csv(paths["layers_csv"])) == len(best.layers)
    assert len(pd.read_csv(paths["blocks_csv"])) == len(best.blocks)
    assert "excludes" in summary["performance"]
    assert set(summary["holdout_error"]) == {"LUT", "FF", "BRAM36", "DSP"}
    # beside each total its hold-out error; a few DSPs in DSPs, not a percentage of 0 or 1
    dsp = summary["holdout_error"]["DSP"]
    unit = "DSP" if dsp["max_abs_error"] <= 5 else "%"
    assert best.totals.loc["DSP", "hold-out error"].endswith(unit)
    assert best.totals.loc["LUT", "hold-out error"].endswith(" %")
    assert summary["fifo_method"] == "backpressure"
