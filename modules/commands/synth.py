"""`firesmoke synth DESIGN_DIR`: every RTL layer of a compiled design through Yosys, with the
resource model's figure beside each; exits non-zero when a layer failed."""

import contextlib
import sys

import numpy as np
import pandas as pd

import config
from modules.commands._shared import print_json
from modules.hardware.estimates import part_for_board
from modules.synthesis import design as synth
from modules.synthesis import simulate
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
    sim = parser.add_argument_group("cycle-accurate chain simulation (Verilator via cocotb)")
    sim.add_argument(
        "--simulate", action="store_true",
        help="also stream frames through the first SWG -> MVAU -> thresholding chain: outputs "
        "vs the emulator's, cycles per frame vs FINN's estimate (adds 'simulation' to --json)",
    )  # fmt: skip
    sim.add_argument("--chain-start", metavar="NAME", help="the chain's first layer (an SWG)")
    sim.add_argument("--frames", type=int, default=3, help="frames to stream (at least 2)")
    sim.add_argument("--inputs", metavar="NPY", help="design inputs (N, ...); default: random "
                     "values of the input datatype")  # fmt: skip


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


def _simulate(design, args):
    images = None
    if args.inputs:
        try:
            images = np.load(args.inputs)
        except (OSError, ValueError) as error:
            raise SystemExit(f"synth --inputs {args.inputs}: cannot load ({error})") from None
    return simulate.simulate_design(
        design, args.cache_dir, args.frames, images, start=args.chain_start
    )


def _print_simulation(result, source):
    summary = result.summary()
    print(f"\nchain simulation (Verilator, {result.frames} frames of {source}): "
          f"{' -> '.join(summary['layers'])}")  # fmt: skip
    print(f"  outputs vs emulator: {'bit-exact' if result.bit_exact else 'DIFFER'} "
          f"({summary['mismatches']} of {result.outputs.size} values differ)")  # fmt: skip
    print(f"  cycles per frame: {result.cycles_per_frame:.0f} simulated, "
          f"{summary['estimated_cycles_per_frame']} estimated ({summary['bottleneck_layer']}): "
          f"{100 * (result.cycles_vs_estimate - 1):+.1f} %")  # fmt: skip


def main(args):
    config.apply()
    default_part = part_for_board(config.BOARD, config.BOARD_PARTS)
    result = None
    try:
        design = synth.load_design(args.design, part=args.part, default_part=default_part)
        with contextlib.redirect_stdout(sys.stderr):  # FINN prints progress; stdout is the report
            report = synth.synthesize(design, args.cache_dir, args.layers, args.jobs)
            if args.simulate:
                result = _simulate(design, args)
    except (synth.SynthError, simulate.SimulationError, ValueError, RuntimeError) as error:
        raise SystemExit(str(error)) from None
    source = args.inputs or "random inputs"
    if args.json:
        out = report_dict(report)
        if result is not None:
            out["simulation"] = {**result.summary(), "inputs": source}
        print_json(out)
    else:
        _print_text(report)
        if result is not None:
            _print_simulation(result, source)
    simulated_ok = result is None or (result.bit_exact and result.within_tolerance)
    return 1 if report.failures or not simulated_ok else 0
