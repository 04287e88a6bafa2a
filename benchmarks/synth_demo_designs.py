"""Yosys against the resource model on the demo designs of both tasks (issue 21's figures).

    python benchmarks/synth_demo_designs.py [--out DIR] [--jobs 2] [--tasks classify detect]
                                            [--simulate]

Builds the demo profiles' architectures (MobileNetV2-mini at 96 px, the dfire-lpyolo detector
at 128 px, W4A4 with 8-bit first/last layers) with calibrated random weights, compiles each
with `firesmoke compile`'s flow at the profile's target FPS into DIR/<task>/design (kept:
a second call reuses it), synthesizes every RTL layer with Yosys (`firesmoke synth`'s
library; results cached in DIR/synth_cache) and prints, per design, the per-layer table,
Yosys vs model per block type and the DSP/BRAM agreement; with --simulate, also the first
SWG -> MVAU -> thresholding chain in Verilator (outputs vs the emulator, cycles per frame vs
FINN's estimate). Weights are random: the netlists
depend on the architecture, bit widths and folding, and on weight values only through the
constants Yosys folds into ROMs.
"""

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

import config
from modules.hardware.compile import CompileSettings, compile_model
from modules.quantization.export import export_qonnx_model
from modules.synthesis import design as synth
from modules.synthesis import simulate

PROFILES = {"classify": "demo", "detect": "demo-detect"}


def calibrated(model, size, steps=4, batch=8):
    """BatchNorm statistics and activation scales from train-mode passes over uint8 noise."""
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randint(0, 256, (batch, 3, size, size)).float())
    return model.eval()


def demo_model(task):
    torch.manual_seed(0)
    if task == "detect":
        from modules.models.darknet import build_detector_from_config

        return build_detector_from_config(config, quantized=True)
    from modules.models.quant_layers import BitWidths, build_quant_model

    return build_quant_model(
        config.MODEL, len(config.CLASSES), config.WIDTH_MULT, BitWidths.from_config(config), True
    )


def compiled_design(task, out):
    config.apply(PROFILES[task])
    folder = out / task
    if not (folder / "design" / "compile.json").is_file():
        model = calibrated(demo_model(task), config.IMG_SIZE)
        clean = export_qonnx_model(
            model, config.IMG_SIZE, folder / "raw.onnx", folder / "clean.onnx"
        )
        report = compile_model(clean, folder / "design", CompileSettings.from_config(config))
        if not report["hw_only"]:
            raise SystemExit(f"{task}: no HW-only design: {report['error']}")
    return folder / "design"


def agreement(table):
    """Blocks whose DSP / BRAM36 from the model differ from Yosys' (synthesized RTL only)."""
    done = table[table["status"].isin(("synthesized", "cached"))]
    return {
        "blocks": len(done),
        "DSP differs": done.index[done["diff_DSP"].abs() > 1e-9].tolist(),
        "BRAM36 differs": done.index[done["diff_BRAM36"].abs() > 1e-9].tolist(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/synth_demo"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--tasks", nargs="+", default=list(PROFILES), choices=list(PROFILES))
    parser.add_argument("--simulate", action="store_true", help="also simulate an RTL chain")
    args = parser.parse_args()
    for task in args.tasks:
        folder = compiled_design(task, args.out)
        start = time.perf_counter()
        report = synth.synthesize(
            synth.load_design(folder), args.out / "synth_cache", None, args.jobs
        )
        wall = time.perf_counter() - start
        report.table.to_csv(args.out / f"{task}_synth.csv")
        with pd.option_context("display.width", 250, "display.max_rows", 500):
            print(f"\n=== {task} ({PROFILES[task]} profile): {folder}, {wall:.0f} s wall")
            print(report.table.drop(columns=["log", "error"]).round(1).to_string())
            print(synth.per_type(report.table).round(1).to_string())
        print("totals:", {k: v for k, v in report.totals().items() if k != "left_out"})
        print("agreement:", agreement(report.table))
        for failure in report.failures:
            print("FAILED:", failure)
        if args.simulate:
            result = simulate.simulate_design(synth.load_design(folder), args.out / "synth_cache")
            print("chain simulation (random inputs of the input datatype):", result.summary())


if __name__ == "__main__":
    main()
