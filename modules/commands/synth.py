"""`firesmoke synth DESIGN_DIR`: every RTL layer of a compiled design through Yosys, with the
resource model's figure beside each; exits non-zero when a layer failed."""

import contextlib
import sys

import pandas as pd

import config
from modules.commands._shared import print_json
from modules.hardware.estimates import part_for_board
from modules.synthesis import design as synth
from modules.synthesis.lut_differences import explain

NAME = "synth"
HELP = "synthesize the RTL layers of a compiled design with Yosys (no Vivado); model vs Yosys"

SHOWN = ["op_type", "status", "LUT", "LUT_logic", "LUT_SRL", "LUT_RAM", "FF", "RAMB18", "RAMB36",
         "DSP", "seconds", "model_LUT", "diff_LUT", "model_FF", "model_BRAM36", "diff_BRAM36",
         "model_DSP", "diff_DSP"]  # fmt: skip


def add_arguments(parser):
    parser.add_argument("design", help="a `firesmoke compile --out` folder or a run's finn/ folder")
    parser.add_argument("--layers", nargs="+", metavar="NAME", help="only these blocks")
    parser.add_argument("--jobs", type=int, default=config.SYNTH_JOBS, help="parallel Yosys runs")
    parser.add_argument("--part", help="FPGA part (default: compile.json's, else config.BOARD's)")
    parser.add_argument("--cache-dir", default=config.SYNTH_CACHE_DIR, help="synthesis cache")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def report_dict(report):
    table = report.table.reset_index()
    return {
        "design": report.source,
        "part": report.part,
        "complete": report.complete,
        "layers": table.astype(object).where(table.notna(), None).to_dict("records"),
        "totals": report.totals(),
        "per_type": explain(synth.per_type(report.table)).reset_index().to_dict("records"),
        "failures": report.failures,
    }


def _print_text(report):
    with pd.option_context("display.width", 250, "display.max_rows", 500, "display.precision", 1):
        print(report.table[SHOWN].to_string(na_rep="-"))
        print("\nper block type (synthesized blocks):")
        kinds = explain(synth.per_type(report.table))
        print(kinds.drop(columns="why").to_string())
        for kind, why in kinds["why"].items():
            if why:
                print(f"  {kind}: {why}")
    totals = report.totals()
    scope = "whole design" if totals["complete"] else "synthesized blocks ONLY, not the design"
    if report.selected:
        scope = "the selected blocks ONLY, not the design"
    print(
        f"\ntotal, {scope}: LUT {totals['LUT']:.0f} (model {totals['model_LUT']:.0f}), "
        f"FF {totals['FF']:.0f}, BRAM36 {totals['BRAM36']:.1f} (model "
        f"{totals['model_BRAM36']:.1f}), DSP {totals['DSP']:.0f} (model {totals['model_DSP']:.0f})"
    )
    if totals["left_out"]:
        left = totals["left_out"]
        print(f"left out of that total: {len(left)} block(s) {sorted(set(left.values()))}; "
              f"their model figures: {totals['left_out_model']}")  # fmt: skip
    for failure in report.failures:
        print(f"FAILED: {failure}")


def main(args):
    config.apply()
    default_part = part_for_board(config.BOARD, config.BOARD_PARTS)
    try:
        design = synth.load_design(args.design, part=args.part, default_part=default_part)
        with contextlib.redirect_stdout(sys.stderr):  # FINN prints progress; stdout is the report
            report = synth.synthesize(design, args.cache_dir, args.layers, args.jobs)
    except (synth.SynthError, ValueError, RuntimeError) as error:
        raise SystemExit(str(error)) from None
    if args.json:
        print_json(report_dict(report))
    else:
        _print_text(report)
    return 1 if report.failures else 0
