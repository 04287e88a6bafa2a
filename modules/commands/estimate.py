"""`firesmoke estimate BUILD.onnx [--part P] [--clock-mhz F] [--json]`: the whole-design
resources of an existing FINN build's ONNX (finn-plus or older FINN op names), per block with
the rule that costed it, and totals with their leave-one-design-out error.

Exit codes: 0 every block costed; 2 some op types have no rule (listed by name); 1 the model
cannot be read or has no hardware layers."""

import config
from modules.commands._shared import print_json
from modules.hardware import resources
from modules.hardware.block_models import MissingAttribute
from modules.hardware.compile import TOTALS
from modules.hardware.design_estimate import NotAHardwareGraph, estimate_file, holdout_text

NAME = "estimate"
HELP = "whole-design LUT/FF/BRAM/DSP of an existing FINN build ONNX (any FINN version)"
UNCOSTED_EXIT = 2


def add_arguments(parser):
    parser.add_argument("model", help="a FINN build's ONNX after HW conversion (step_*.onnx)")
    default_part = config.BOARD_PARTS[config.BOARD]
    parser.add_argument("--part", default=default_part, help=f"FPGA part ({default_part})")
    parser.add_argument(
        "--clock-mhz", type=float, default=config.CLOCK_MHZ, help="clock, for the report"
    )
    parser.add_argument("--json", action="store_true", help="print the estimate as JSON")


def _print_text(report, available):
    print(f"{report['model']} on {report['part']} at {report['clock_mhz']:g} MHz")
    print(f"{'block':<44} {'op type':<34} {'LUT':>7} {'FF':>7} {'BRAM36':>6} {'DSP':>4}  rule")
    for block in report["blocks"]:
        print(
            f"{block['block'][:44]:<44} {block['op_type'][:34]:<34} {block['LUT']:>7.0f} "
            f"{block['FF']:>7.0f} {block['BRAM36']:>6.1f} {block['DSP']:>4.0f}  {block['rule']}"
        )
    for name in TOTALS:
        trust = holdout_text(
            name, report["holdout_error_pct"].get(name), report["holdout_error_abs"].get(name)
        )
        share = 100 * report["totals"][name] / getattr(available, name)
        print(f"total {name:<6} {report['totals'][name]:>9.1f}  {share:5.1f} % of part  ({trust})")
    print("(±: largest error of that total on published designs left out of the model's fit)")
    for note in report["added"]:
        print(f"added: {note}")
    for item in report["uncosted"]:
        print(f"NOT COSTED: {item['node']} ({item['op_type']}): no rule for this op type")


def main(args):
    try:
        available = resources.part_resources(args.part)
        estimate = estimate_file(args.model, args.part, fifo_method=config.FIFO_SIZING)
    except (OSError, ValueError, NotAHardwareGraph, MissingAttribute) as error:
        raise SystemExit(str(error)) from None
    report = estimate.as_dict() | {"clock_mhz": args.clock_mhz}
    report["percent_of_part"] = {
        name: 100 * report["totals"][name] / getattr(available, name) for name in TOTALS
    }
    if args.json:
        print_json(report)
    else:
        _print_text(report, available)
    return UNCOSTED_EXIT if estimate.uncosted else 0
