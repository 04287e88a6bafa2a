"""Seed 004's goal figure: tinier-yolo W1A3 at 416x416 on the PYNQ-Z2's xc7z020 at 100 MHz with
EXTERNAL_WEIGHTS = "auto" (weights the BRAM cannot hold streamed from DRAM).

    python benchmarks/external_weights_goal.py [--size 416] [--target-fps 20] [--json OUT]

The same path as `firesmoke cfg-summary tinier-yolo --img-size 416 --fit --set
EXTERNAL_WEIGHTS=auto ...` (untrained model at the configured bit widths, FINN flow,
`fit_to_part` with the DRAM bound); the flow keeps the binary weights at 1 bit
(`flow.minimize_bit_widths`; FINN alone would store them as INT2).

It prints: fits within 90 % of every resource, FPS (compute bound, DRAM bound, which holds),
LUT/FF/BRAM36/DSP, the external layers and the bits they read per frame, what binds, and the
frontier of targets; below the goal FPS, each streamed layer alone off chip at the goal (why
the goal is missed). QNN-MO-PYNQ's published figure (`published_builds.QNN_MO_PYNQ_TINIER_YOLO`)
is printed beside.
"""

import argparse
import json
import tempfile
import time
import types

import config
from modules.dataflow import flow as finn_flow
from modules.hardware import detector_fit, dram, estimates
from modules.hardware.external_weights_report import QNN_MO_PYNQ_TINIER_YOLO
from modules.models.quant_layers import BitWidths
from modules.quantization.export import export_qonnx_model

W1A3 = BitWidths(weight=1, act=3)


def search(child, cfg, target_fps):
    port = dram.port_from_config(cfg)
    started = time.time()
    best, frontier = estimates.fit_to_part(
        child,
        estimates.budget_from_config(cfg),
        target_fps,
        cfg.CLOCK_MHZ,
        cfg.RESOURCE_BUDGET_FRACTION,
        mvau_wwidth_max=cfg.MVAU_WWIDTH_MAX,
        floor_fps=1.0,
        fifo_method=cfg.FIFO_SIZING,
        external="auto",
        port=port,
    )
    fit = detector_fit.DetectorEstimate(best, frontier, None, 0.0, time.time() - started).fit()
    return fit | {
        "board": cfg.BOARD,
        "clock_MHz": cfg.CLOCK_MHZ,
        "budget_fraction": cfg.RESOURCE_BUDGET_FRACTION,
        "search_seconds": time.time() - started,
        "usable_dram_bits_per_s": port.usable_bits_per_s(cfg.CLOCK_MHZ),
    }


def why_not(child, cfg, fit, goal_fps):
    """Below the goal: each streamed layer alone off chip at the goal, the rest on chip."""
    if fit["fps"] is None or fit["fps"] >= goal_fps:
        return
    port = dram.port_from_config(cfg)
    budget = estimates.budget_from_config(cfg)
    for layer in fit["external_layers"]:
        design = estimates.best_design(
            child,
            budget,
            goal_fps,
            cfg.CLOCK_MHZ,
            cfg.RESOURCE_BUDGET_FRACTION,
            cfg.MVAU_WWIDTH_MAX,
            cfg.FIFO_SIZING,
            [layer],
            port,
        )
        share = design.totals["used"] / design.totals["limit"]
        perf = design.performance
        print(
            f"  at {goal_fps:g} FPS with only {layer} streamed: fits {design.fits}, share of the "
            f"budget {', '.join(f'{k} {100 * v:.0f} %' for k, v in share.items())}; compute "
            f"{perf['fps_compute_bound']:.1f} FPS, DRAM {perf['fps_dram_bound']:.1f} FPS"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--target-fps", type=float, default=20.0)
    parser.add_argument("--json", help="write the fit here")
    parser.add_argument("--goal-fps", type=float, default=10.0, help="seed 004's goal")
    args = parser.parse_args()
    values = config.apply("default", EXTERNAL_WEIGHTS="auto")
    cfg = types.SimpleNamespace(**values)
    config.apply()
    work = tempfile.mkdtemp(prefix="external_weights_goal_")
    started = time.time()
    model = detector_fit.calibrated_detector("tinier-yolo", W1A3, 1.0, args.size)
    clean = export_qonnx_model(model, args.size, f"{work}/raw.onnx", f"{work}/clean.onnx")
    flow = finn_flow.run_flow(
        clean,
        work,
        estimates.part_for_board(cfg.BOARD, cfg.BOARD_PARTS),
        target_fps=args.target_fps,
        clock_mhz=cfg.CLOCK_MHZ,
        mvau_wwidth_max=cfg.MVAU_WWIDTH_MAX,
    )
    print(f"tinier-yolo W1A3 at {args.size}x{args.size}: flow {time.time() - started:.0f} s")
    variants = {"binary weights at 1 bit": flow.child}
    results = {}
    for name, child in variants.items():
        fit = search(child, cfg, args.target_fps)
        fit["img_size"] = args.size
        results[name] = fit
        print(f"\n{name}: search {fit['search_seconds']:.0f} s")
        print(detector_fit.fit_text(fit))
        if fit["fps"] is not None:
            print(
                f"  DRAM bound set by: {fit['dram_limited_by']}; limiting resource: "
                f"{fit['limiting']}; bottleneck layer {fit['bottleneck_layer']}"
            )
        for row in fit["frontier"]:
            print(
                f"  target {row['target_fps']:6.1f}: {row['fps']:6.2f} FPS ({row['bound']}) "
                f"LUT {row['LUT %']:5.1f} % BRAM36 {row['BRAM36 %']:5.1f} % DSP {row['DSP %']:4.1f}"
                f" % fits {row['fits']} limiting {row['limiting_resource']} "
                f"({row['limiting_layer']}), {row['external_layers']} external"
            )
        why_not(child, cfg, fit, args.goal_fps)
    published = QNN_MO_PYNQ_TINIER_YOLO
    print(f"\nQNN-MO-PYNQ ({published['board']}): {published['statement']}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {"variants": results, "qnn_mo_pynq": published}, handle, indent=2, default=str
            )


if __name__ == "__main__":
    main()
