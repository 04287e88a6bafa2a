"""FINN estimates of the default MobileNetV2-mini and the emulator's speed, measured in one run.

    python benchmarks/bench_finn.py [--size 224] [--onnx-images 8] [--emulator-images 64]
        [--fifo-sizing backpressure finn]

(1) The automatic search (per-layer RTL/DSP vs HLS/LUT compute, BRAM vs LUTRAM weights,
    target FPS lowered until the design fits) for W4A4 on the config's board and clock, with
    the whole-design resource model (FIFOs, converters, DMA, AXI included): today's design at
    the config's target (whole design vs FINN per-layer), the best fitting FPS, LUT/BRAM/DSP %
    of the part, limiting resource and block, the FIFOs' BRAM, the frontier (plot); once per
    FIFO sizing method (config.FIFO_SIZING) given.
(2) Emulator vs qonnx execute_onnx on the same HW-layer graph and images: identical outputs
    on every image, and the throughput ratio (--emulator-images 0 leaves it out).
Weights are random but calibrated (BatchNorm and activation statistics): FINN's estimates
depend on the architecture and bit widths, not on the weight values.
"""

import argparse
import tempfile
import time
from pathlib import Path

from bench_designs import calibrated_model, compare

import config
from modules.dataflow import flow as finn_flow
from modules.hardware import estimates as finn_estimates
from modules.hardware import fifo_sizing
from modules.quantization.export import export_qonnx_model


def search(generic, budget, fifo_method):
    best, frontier = finn_estimates.fit_to_part(
        generic,
        budget,
        config.TARGET_FPS,
        config.CLOCK_MHZ,
        config.RESOURCE_BUDGET_FRACTION,
        config.FIT_TO_PART,
        config.MVAU_WWIDTH_MAX,
        fifo_method=fifo_method,
    )
    lower = [t for t in (100, 200, 400) if t < frontier["target_fps"].min()]
    extra = finn_estimates.frontier(
        generic,
        budget,
        lower,
        config.CLOCK_MHZ,
        config.RESOURCE_BUDGET_FRACTION,
        config.MVAU_WWIDTH_MAX,
        fifo_method,
    )
    return best, _concat(extra, frontier)


def _concat(*tables):
    import pandas as pd

    return pd.concat(tables).sort_values("target_fps").reset_index(drop=True)


def report_target(generic, budget):
    """The design at the configured target, whole design vs FINN's per-layer sum."""
    design = finn_estimates.best_design(
        generic,
        budget,
        config.TARGET_FPS,
        config.CLOCK_MHZ,
        config.RESOURCE_BUDGET_FRACTION,
        config.MVAU_WWIDTH_MAX,
    )
    totals = design.totals
    finn = 100 * totals["FINN per-layer"] / totals["available"]
    print(f"(0) design at target {config.TARGET_FPS} FPS: {design.performance['fps']:.0f} FPS")
    for name in ("LUT", "BRAM36", "DSP"):
        print(
            f"    {name:6s} whole design {totals.loc[name, '% of part']:5.1f} %   "
            f"FINN per-layer {finn[name]:5.1f} %"
        )
    print(f"    fits (whole design): {design.fits}")


def report_search(best, frontier, out_dir, budget, fifo_method):
    paths = finn_estimates.save_report(
        best, out_dir, budget, config.RESOURCE_BUDGET_FRACTION, frontier, fifo_method
    )
    fifo_bram = best.blocks.loc[best.blocks["type"] == "FIFO", "BRAM36"].sum()
    print(f"(1) FIFO_SIZING = {fifo_method!r}: FIFO BRAM36 {fifo_bram:.1f}")
    share = best.totals["% of part"]
    finn = 100 * best.totals["FINN per-layer"] / best.totals["available"]
    limiting = best.limiting()
    print(
        f"(1) MobileNetV2-mini W4A4 on {budget.part} at {config.CLOCK_MHZ} MHz, "
        f"target {config.TARGET_FPS} FPS, budget {100 * config.RESOURCE_BUDGET_FRACTION:.0f} %"
    )
    print(
        f"    best fitting: {best.performance['fps']:.0f} FPS "
        f"(bottleneck {best.performance['bottleneck_layer']}), "
        f"latency {best.performance['latency_ms']:.2f} ms"
    )
    print(
        f"    whole design: LUT {share['LUT']:.1f} %  BRAM36 {share['BRAM36']:.1f} %  "
        f"DSP {share['DSP']:.1f} %  (FINN per-layer: LUT {finn['LUT']:.1f} %  "
        f"BRAM36 {finn['BRAM36']:.1f} %  DSP {finn['DSP']:.1f} %)"
    )
    print(
        f"    limiting resource {limiting['resource']} "
        f"({100 * limiting['share_of_limit']:.0f} % of its budget), "
        f"largest user {limiting['layer']}"
    )
    counts = {}
    for option in best.choices.values():
        counts[option] = counts.get(option, 0) + 1
    print(f"    per-layer choices (MVAU/VVAU): {counts}")
    print(f"    FPS is the accelerator's; it excludes {finn_estimates.EXCLUDES}")
    print("    frontier (best per-layer options at each target):")
    print(frontier.round(1).to_string(index=False))
    print(f"    frontier plot: {paths['frontier_png']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=config.IMG_SIZE)
    parser.add_argument("--onnx-images", type=int, default=8)
    parser.add_argument("--emulator-images", type=int, default=64)
    parser.add_argument("--out", default=str(Path(config.RUNS_DIR) / "bench_finn"))
    parser.add_argument(
        "--fifo-sizing", nargs="+", choices=fifo_sizing.METHODS, default=[config.FIFO_SIZING]
    )
    args = parser.parse_args()
    budget = finn_estimates.budget_from_config(config)
    work = tempfile.mkdtemp(prefix="bench_finn_")
    started = time.perf_counter()
    model = calibrated_model(args.size)
    clean = export_qonnx_model(model, args.size, f"{work}/raw.onnx", f"{work}/clean.onnx")
    flow = finn_flow.run_flow(clean, work, budget.part, mvau_wwidth_max=config.MVAU_WWIDTH_MAX)
    print(f"flow to the HW graph: {time.perf_counter() - started:.0f} s (graphs in {work})")
    report_target(flow.child, budget)
    for method in args.fifo_sizing:
        best, frontier = search(flow.child, budget, method)
        report_search(best, frontier, Path(args.out) / method, budget, method)
    if not args.emulator_images:
        return
    print("(2) emulator vs execute_onnx on the HW-layer graph (benchmarks/bench_emulator.py)")
    compare(
        "MobileNetV2-mini W4A4",
        flow.models["hw_layers"],
        args.size,
        args.onnx_images,
        args.emulator_images,
    )


if __name__ == "__main__":
    main()
