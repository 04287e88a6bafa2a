"""`firesmoke compile MODEL.onnx --out DIR`: any QONNX model through the FINN flow, with
estimates and what runs where (share of the MACs on the accelerator, compute nodes left on the
host); exits non-zero, naming the blocking nodes, when no HW-only partition is reached or a
convolution or matmul stays on the host."""

import json

import config
from modules.commands._shared import add_profile_arguments, parse_overrides, print_json
from modules.hardware.compile import TOTALS, CompileSettings, compile_model
from modules.hardware.design_estimate import holdout_text

NAME = "compile"
HELP = "compile a QONNX model with FINN: HW partition, node counts per stage, estimates, FPS"


def add_arguments(parser):
    parser.add_argument("model", help="QONNX file (its .onnx.data beside it, if any)")
    parser.add_argument("--out", required=True, help="folder for the stage graphs and design")
    parser.add_argument("--folding", help="folding JSON (PE/SIMD per layer), after --target-fps")
    parser.add_argument("--target-fps", type=float, help="SetFolding target (config.TARGET_FPS)")
    parser.add_argument(
        "--input-dtype",
        default="auto",
        help="auto (read from the graph), or a qonnx DataType name: UINT8, FLOAT32, INT8, ...",
    )
    add_profile_arguments(parser, default="default")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _totals_text(totals, report=None):
    def text(name):
        if report is None or "totals_holdout_error_pct" not in report:
            return f"{name} {totals[name]:.0f}"
        trust = holdout_text(
            name,
            report["totals_holdout_error_pct"].get(name),
            report["totals_holdout_error_abs"].get(name),
        )
        return f"{name} {totals[name]:.0f} ({trust})"

    return ", ".join(text(k) for k in TOTALS if totals.get(k) is not None)


def _print_placement(where):
    share, macs = where["accelerator_mac_share"], where["accelerator_macs"]
    share_text = "n/a" if share is None else f"{100 * share:.1f} %"
    print(f"MACs on the accelerator: {share_text} ({macs} of {macs + where['host_macs']})")
    left = [f"{n['name']} ({n['op_type']}, {n['macs']} MACs)" for n in where["host_compute_nodes"]]
    print(f"compute nodes on the host: {', '.join(left) or 'none'}")


def _print_text(report):
    for stage, counts in report["stages"].items():
        print(f"{stage:<18} {sum(counts.values()):>4} nodes  {json.dumps(counts)}")
    print(f"input datatype: {report['input_dtype']}")
    if "placement" in report:
        _print_placement(report["placement"])
    if not report["hw_only"]:
        partition = report.get("blocker") or "placement" in report
        print(f"{'no HW-only partition' if partition else 'compile failed'}: {report['error']}")
        return
    print(f"host nodes: {report['host_nodes']}")
    print(f"whole design: {_totals_text(report['totals'], report)}; {report['fps']:.0f} FPS")
    print("  (±: largest error of that total on published designs left out of the model's fit)")
    print(f"FINN per-layer sum: {_totals_text(report['totals']['finn_per_layer'])}")
    print(f"fits: {report['fits']}")
    if report["external_layers"]:
        streamed = ", ".join(f"{k} {v / 1e6:.1f}" for k, v in report["external_layers"].items())
        print(
            f"weights from DRAM (Mbit/frame): {streamed}; {report['bound']}-bound: compute "
            f"{report['fps_compute_bound']:.1f} FPS, DRAM {report['fps_dram_bound']:.1f} FPS"
        )
    if report.get("dram_warning"):
        print(report["dram_warning"])
    print(f"design: {report['design']}")


def main(args):
    config.apply(args.profile, **parse_overrides(args.set))
    settings = CompileSettings.from_config(
        config,
        target_fps=args.target_fps,
        folding=args.folding,
        input_dtype=args.input_dtype,
    )
    try:
        report = compile_model(args.model, args.out, settings)
    except (OSError, ValueError) as error:  # no model file, not an ONNX model
        raise SystemExit(str(error)) from None
    if args.json:
        print_json(report)
    else:
        _print_text(report)
    return 0 if report["hw_only"] else 1
