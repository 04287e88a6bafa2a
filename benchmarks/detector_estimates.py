"""FINN estimates of the shipped Darknet detectors at full size on the PYNQ-Z2's xc7z020.

    python benchmarks/detector_estimates.py [--models dfire-lpyolo-w4a4 ...] [--size 416]
        [--fifo-sizing backpressure finn]

Per model: the weight memory against the part's BRAM and what would make it fit (from the cfg,
`detector_fit.weight_fit`), then the Brevitas detector (untrained, calibrated on random UINT8
images) through QONNX and the repo's FINN flow, and the search for the fastest design within
90 % of LUT/FF/BRAM/DSP at 100 MHz (whole-design resource model): FPS, % of part, fits, the
frontier of the targets tried, the FIFOs' share of the BRAM, and the wall time of the flow
and of the search, per FIFO sizing method (config.FIFO_SIZING). The estimates
depend on the structure and bit widths, not on the weight values. Files go to a temporary
folder. LPYOLO reports 18 FPS on a PYNQ-Z2 board for its tiny-YOLOv3 at width 0.2.
"""

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from modules.hardware import detector_fit, fifo_sizing
from modules.models.quant_layers import BitWidths

W4A4 = BitWidths()  # 8-bit first and last layers
W1A3 = BitWidths(weight=1, act=3)
WIDEST = None  # the widest multiplier whose weights fit the BRAM budget (weight_fit)
# name -> (cfg, bit widths, width multiplier, first target FPS, search step, floor FPS);
# designs whose weights exceed the BRAM get a coarse search (nothing can fit)
MODELS = {
    "dfire-lpyolo-w4a4": ("dfire-lpyolo", W4A4, 1.0, 1000, 0.8, 5),
    "tinier-yolo-w1a3": ("tinier-yolo", W1A3, 1.0, 200, 0.5, 10),
    "tinier-yolo-w4a4": ("tinier-yolo-w4", W4A4, 1.0, 200, 0.5, 10),
    "tinier-yolo-w1a3-widest": ("tinier-yolo", W1A3, WIDEST, 400, 0.8, 5),
    "tinier-yolo-w4a4-widest": ("tinier-yolo-w4", W4A4, WIDEST, 400, 0.8, 5),
}
COLUMNS = [
    "target_fps",
    "fps",
    "LUT %",
    "FF %",
    "BRAM36 %",
    "DSP %",
    "FIFO BRAM36",
    "fits",
    "limiting_resource",
]


def resolve(cfg, work):
    # tinier-yolo marks its hidden convs binary=1; at W4A4 they take 4 bits
    if cfg == "tinier-yolo-w4":
        return detector_fit.without_binary_flags("tinier-yolo", work / "tinier-yolo-w4.cfg")
    return cfg


def report(name, result):
    summary = result.summary()
    label = "best fitting" if summary["fits"] else "nothing fits; fastest tried"
    print(
        f"  {label}: {summary['fps']:.1f} FPS  LUT {summary['LUT']:.1f} %  "
        f"BRAM36 {summary['BRAM36']:.1f} %  DSP {summary['DSP']:.1f} %  FF {summary['FF']:.1f} %"
        f"  fits: {summary['fits']}"
    )
    if result.best is not None:
        limiting = result.best.limiting()
        print(
            f"  bottleneck {result.best.performance['bottleneck_layer']}, limiting resource "
            f"{limiting['resource']} (largest user {limiting['layer']})"
        )
    if result.best is not None:
        fifo = result.best.blocks[result.best.blocks["type"] == "FIFO"]["BRAM36"].sum()
        total = result.best.blocks["BRAM36"].sum()
        print(f"  FIFO BRAM36 {fifo:.1f} of {total:.1f}")
    print(f"  flow {result.flow_seconds:.0f} s, search {result.search_seconds:.0f} s")
    with pd.option_context("display.width", 200, "display.float_format", "{:.1f}".format):
        print("  frontier:\n" + result.frontier[COLUMNS].to_string(index=False))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument(
        "--fifo-sizing", nargs="+", choices=fifo_sizing.METHODS, default=["backpressure"]
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="detector_estimates_"))
    for name in args.models:
        cfg, bits, width, target, step, floor = MODELS[name]
        cfg = resolve(cfg, work)
        fit = detector_fit.weight_fit(cfg, bits, width or 1.0)
        width = width or fit.widest_width_mult
        print(f"\n{name} at {args.size}x{args.size}, width {width:g}, {bits.signature}")
        print("  " + fit.statement)
        results = detector_fit.detector_estimates(
            cfg,
            bits,
            width,
            args.size,
            target_fps=target,
            step=step,
            floor_fps=floor,
            work_dir=work / name,
            fifo_methods=args.fifo_sizing,
        )
        for method, result in results.items():
            print(f" FIFO_SIZING = {method!r}")
            report(name, result)


if __name__ == "__main__":
    main()
