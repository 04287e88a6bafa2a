"""Does a Darknet detector fit the FPGA part as one FINN dataflow design, and how fast is it?

Two answers:

- `weight_fit` (fast, from the cfg alone, no FINN): the weight memory (per conv: weights x its
  weight bit width) against the part's BRAM bits, and what would make the weights fit: the
  widest DETECTOR_WIDTH_MULT, the first/last conv on the host (as QNN-MO-PYNQ ran
  tinier-yolo), or a part from resources.PART_TABLE with enough BRAM. A dataflow design keeps
  every weight on chip, so weights beyond the BRAM rule a design out before FINN runs; below
  it FINN's packing, the FIFOs and the thresholds still take BRAM, which only the flow shows.
- `detector_estimates` (minutes): builds the Brevitas detector, calibrates BatchNorm and the
  activation scales on random UINT8 images, exports QONNX, runs the repo's FINN flow to the
  folded design and `estimates.fit_to_part` on the part's budget (whole-design resource model).

The weights are untrained: the estimates depend on the structure and the bit widths, not on the
weight values (the calibration only keeps the thresholds in a realistic range).
"""

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from modules.hardware import resources
from modules.hardware.estimates import PartBudget
from modules.models.darknet import plan_layers
from modules.models.darknet_summary import summary_table, summary_totals

BRAM36_BITS = 36 * 1024  # data bits of one BRAM36 (parity bits left out)
PYNQ_PART = "xc7z020clg400-1"


@dataclass
class WeightFit:
    """Weight memory of a detector against a part's BRAM (see `weight_fit`)."""

    cfg: str
    width_mult: float
    bit_widths: str
    part: str
    weight_bits: int
    body_weight_bits: int  # without the first and last conv
    bram_bits: int
    budget_bits: float  # the budget share of bram_bits
    fits: bool
    widest_width_mult: float | None  # the widest DETECTOR_WIDTH_MULT whose weights fit
    body_fits: bool  # whether the weights fit with the first and last conv on the host
    parts_that_fit: list = field(default_factory=list)  # PART_TABLE devices with enough BRAM
    statement: str = ""


def weight_memory_bits(cfg, bits, width_mult=1.0, img_size=None):
    """(all convs, convs without the first and last) weight bits of a cfg under `bits`."""
    plans, _ = plan_layers(cfg, img_size, width_mult)
    totals = summary_totals(summary_table(plans, bits))
    return totals["weight_memory_bits"], totals["body_weight_memory_bits"]


def widest_fitting_width_mult(cfg, bits, budget_bits, low=0.05, high=1.0, steps=12):
    """The largest width multiplier in [low, high] whose weights fit `budget_bits` (bisection:
    weight bits grow with the multiplier), or None when even `low` does not fit."""
    if weight_memory_bits(cfg, bits, high)[0] <= budget_bits:
        return high
    if weight_memory_bits(cfg, bits, low)[0] > budget_bits:
        return None
    for _ in range(steps):
        middle = (low + high) / 2
        low, high = (
            (middle, high)
            if weight_memory_bits(cfg, bits, middle)[0] <= budget_bits
            else (
                low,
                middle,
            )
        )
    return math.floor(low * 1000) / 1000  # down: the reported width must still fit


def parts_with_room(weight_bits, fraction):
    """Devices of resources.PART_TABLE whose BRAM budget holds `weight_bits`, smallest first."""
    sizes = {device: bram * BRAM36_BITS for device, (_, _, bram, _) in resources.PART_TABLE.items()}
    return [
        d for d, size in sorted(sizes.items(), key=lambda i: i[1]) if weight_bits <= fraction * size
    ]


def weight_fit(cfg, bits, width_mult=1.0, part=PYNQ_PART, fraction=0.9):
    """Weight bits of a Darknet cfg under BitWidths vs the part's BRAM, and what would fit."""
    weight_bits, body_bits = weight_memory_bits(cfg, bits, width_mult)
    bram_bits = PartBudget.for_part(part).BRAM36 * BRAM36_BITS
    budget_bits = fraction * bram_bits
    fit = WeightFit(
        cfg=Path(cfg).stem,
        width_mult=width_mult,
        bit_widths=bits.signature,
        part=part,
        weight_bits=weight_bits,
        body_weight_bits=body_bits,
        bram_bits=bram_bits,
        budget_bits=budget_bits,
        fits=weight_bits <= budget_bits,
        widest_width_mult=widest_fitting_width_mult(cfg, bits, budget_bits),
        body_fits=body_bits <= budget_bits,
        parts_that_fit=parts_with_room(weight_bits, fraction),
    )
    fit.statement = fit_statement(fit, fraction)
    return fit


def fit_statement(fit, fraction):
    mbit = 1e6
    head = (
        f"{fit.cfg} at width {fit.width_mult:g} ({fit.bit_widths}): weights "
        f"{fit.weight_bits / mbit:.2f} Mbit ({fit.body_weight_bits / mbit:.2f} Mbit without the "
        f"first/last conv) vs {fit.bram_bits / mbit:.2f} Mbit of BRAM on the {fit.part} "
        f"({fraction:.0%} budget: {fit.budget_bits / mbit:.2f} Mbit)"
    )
    if fit.fits:
        return (
            f"{head}: the weights fit; whether the whole design fits (FINN's weight packing, "
            "FIFOs, thresholds) the FINN estimates tell"
        )
    remedies = []
    if fit.widest_width_mult is not None:
        remedies.append(f"DETECTOR_WIDTH_MULT <= {fit.widest_width_mult:g}")
    if fit.body_fits:
        remedies.append("the first and last conv on the host (as QNN-MO-PYNQ ran tinier-yolo)")
    if fit.parts_that_fit:
        remedies.append(f"a part with more BRAM ({', '.join(fit.parts_that_fit)})")
    remedies.append(
        "the largest layers' weights streamed from DRAM (EXTERNAL_WEIGHTS = 'auto'; "
        "`firesmoke cfg-summary CFG --fit` shows the FPS the DRAM bandwidth allows)"
    )
    if not fit.parts_that_fit:
        remedies[-1] += " (no device in resources.PART_TABLE holds the weights in BRAM)"
    return (
        f"{head}: does NOT fit as a dataflow design (the weights alone exceed the budget); "
        "the weights would fit with " + "; or ".join(remedies) + ". Whether a whole design "
        "then fits (FIFOs, thresholds, LUTs) FINN's estimate tells: "
        "benchmarks/detector_estimates.py"
    )


# ------------------------------------------------------------------ FINN estimates


@dataclass
class DetectorEstimate:
    """The fastest design that fits (None when nothing fits down to the floor FPS), the
    frontier of every target tried, the weight-memory statement and the wall times."""

    best: object  # estimates.Estimate or None
    frontier: pd.DataFrame
    weight_fit: WeightFit
    flow_seconds: float
    search_seconds: float

    @property
    def fits(self):
        return self.best is not None

    def summary(self):
        """FPS and LUT/FF/BRAM36/DSP % of the chosen design (or of the fastest design tried
        when none fits), and whether it fits."""
        row = self.frontier[self.frontier["fits"]] if self.fits else self.frontier
        row = row.sort_values("fps").iloc[-1]
        shares = {name: float(row[f"{name} %"]) for name in ("LUT", "FF", "BRAM36", "DSP")}
        return {"fps": float(row["fps"]), **shares, "fits": self.fits}

    def fit(self, design=None):
        """`firesmoke cfg-summary --fit`'s `fit`: fits, FPS (compute and DRAM bound, which
        binds), the external layers with their bits per frame, the resources of the chosen
        design (`design`: the fastest fitting one, else the one passed, e.g. the fastest
        tried), what limits it, and the frontier of targets tried."""
        design = self.best if self.best is not None else design
        fit = {"fits": self.fits, "frontier": self.frontier.to_dict(orient="records")}
        if design is None:
            return fit | {"fps": None, "resources": None}
        totals = design.totals
        resources = {
            name: {
                "used": float(totals.loc[name, "used"]),
                "available": int(totals.loc[name, "available"]),
                "% of part": float(totals.loc[name, "% of part"]),
                "fits": bool(totals.loc[name, "fits"]),
            }
            for name in totals.index
        }
        return fit | {
            "fps": float(design.performance["fps"]),
            **design.dram_summary(),
            "bottleneck_layer": design.generic_name(design.performance["bottleneck_layer"]),
            "choices": design.choices,
            "resources": resources,
            "limiting": design.limiting(),
        }


def calibrated_detector(cfg, bits, width_mult, img_size, images=4, steps=2, seed=0):
    """The Brevitas detector with BatchNorm statistics and activation scales from train-mode
    passes over random UINT8 images (untrained weights: see the module doc)."""
    import torch
    from torch import nn

    from modules.models.darknet import build_detector
    from modules.models.quant_layers import QuantLayers

    torch.manual_seed(seed)
    model = build_detector(cfg, QuantLayers(bits), width_mult)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative statistics over the passes
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randint(0, 256, (images, 3, img_size, img_size)).float())
    return model.eval()


def detector_estimates(
    cfg,
    bits,
    width_mult=1.0,
    img_size=416,
    part=PYNQ_PART,
    clock_mhz=100.0,
    fraction=0.9,
    target_fps=1000,
    floor_fps=5.0,
    step=0.8,
    mvau_wwidth_max=216,
    work_dir=None,
    fifo_methods=("backpressure",),
    external="never",
    port=None,
    refine=3,
    model=None,
):
    """Brevitas -> QONNX -> FINN flow -> `fit_to_part` for a Darknet cfg (module doc), once per
    FIFO sizing method in `fifo_methods` (config.FIFO_SIZING values; one flow for all);
    returns {method: DetectorEstimate}. `external` (config.EXTERNAL_WEIGHTS) and `port`
    (dram.DramPort) let the search stream weights from DRAM. `model`: a trained Brevitas
    detector of the cfg (default: the untrained one, calibrated). Intermediate files go to
    `work_dir` (default: a new temporary folder)."""
    from modules.dataflow import flow as finn_flow
    from modules.hardware import estimates
    from modules.quantization.export import export_qonnx_model

    out = work_dir or tempfile.mkdtemp(prefix="detector_fit_")
    started = time.time()
    if model is None:
        model = calibrated_detector(cfg, bits, width_mult, img_size)
    clean = export_qonnx_model(model, img_size, f"{out}/raw.onnx", f"{out}/clean.onnx")
    flow = finn_flow.run_flow(
        clean,
        out,
        part,
        target_fps=target_fps,
        clock_mhz=clock_mhz,
        mvau_wwidth_max=mvau_wwidth_max,
    )
    flow_seconds = time.time() - started
    results = {}
    for method in fifo_methods:
        started = time.time()
        best, frontier = estimates.fit_to_part(
            flow.child,
            PartBudget.for_part(part),
            target_fps,
            clock_mhz,
            fraction,
            mvau_wwidth_max=mvau_wwidth_max,
            step=step,
            floor_fps=floor_fps,
            refine=refine,
            fifo_method=method,
            external=external,
            port=port,
        )
        results[method] = DetectorEstimate(
            best,
            frontier,
            weight_fit(cfg, bits, width_mult, part, fraction),
            flow_seconds,
            time.time() - started,
        )
    return results


def without_binary_flags(cfg, path):
    """A copy of a cfg at `path` without `binary=1`, so its hidden convs take the configured
    WEIGHT_BIT_WIDTH instead of 1 bit (tinier-yolo at W4A4)."""
    from modules.models.darknet import resolve_cfg

    lines = resolve_cfg(cfg).read_text().splitlines(keepends=True)
    kept = [line for line in lines if line.replace(" ", "").strip() != "binary=1"]
    Path(path).write_text("".join(kept))
    return Path(path)


def config_fit(cfg_file, bits, width_mult, img_size, cfg, work_dir=None, model=None):
    """`fit` of `firesmoke cfg-summary --fit`: `detector_estimates` at the config's board,
    clock, target FPS, budget, FIFO sizing and EXTERNAL_WEIGHTS (DetectorEstimate.fit);
    `model`: a trained detector of the cfg (notebook 03 at FIT_IMG_SIZE), else untrained."""
    from modules.hardware import dram
    from modules.hardware.estimates import part_for_board

    port = dram.port_from_config(cfg) if cfg.EXTERNAL_WEIGHTS != "never" else None
    result = detector_estimates(
        cfg_file,
        bits,
        width_mult,
        img_size,
        part=part_for_board(cfg.BOARD, cfg.BOARD_PARTS),
        clock_mhz=cfg.CLOCK_MHZ,
        fraction=cfg.RESOURCE_BUDGET_FRACTION,
        target_fps=cfg.TARGET_FPS,
        floor_fps=1.0,
        mvau_wwidth_max=cfg.MVAU_WWIDTH_MAX,
        work_dir=work_dir,
        fifo_methods=(cfg.FIFO_SIZING,),
        external=cfg.EXTERNAL_WEIGHTS,
        port=port,
        model=model,
    )[cfg.FIFO_SIZING]
    return result.fit() | {
        "board": cfg.BOARD,
        "clock_MHz": cfg.CLOCK_MHZ,
        "img_size": img_size,
        "budget_fraction": cfg.RESOURCE_BUDGET_FRACTION,
        "external_weights": cfg.EXTERNAL_WEIGHTS,
    }


def fit_text(fit):
    """The `fit` dict in a few lines."""
    where = f"{fit['board']} at {fit['clock_MHz']:g} MHz, {fit['img_size']}x{fit['img_size']}"
    budget = f"{fit['budget_fraction']:.0%} of every resource"
    if fit["fps"] is None:
        fastest = max(fit["frontier"], key=lambda row: row["fps"])
        return (
            f"fit: does NOT fit the {where} within {budget} at any target tried; the fastest "
            f"design tried ({fastest['fps']:.1f} FPS) is limited by {fastest['limiting_resource']}"
            f" ({fastest['limiting_layer']})"
        )
    shares = ", ".join(
        f"{name} {row['used']:.0f}/{row['available']} ({row['% of part']:.0f} %)"
        for name, row in fit["resources"].items()
    )
    streamed = fit["external_layers"].items()
    external = ", ".join(f"{k} ({v / 1e6:.1f} Mbit/frame)" for k, v in streamed)
    dram_fps = fit["fps_dram_bound"]
    dram_text = "no DRAM traffic" if dram_fps is None else f"DRAM {dram_fps:.1f} FPS"
    lines = [
        f"fit: fits the {where} within {budget}: {fit['fps']:.1f} FPS, {fit['bound']}-bound "
        f"(compute {fit['fps_compute_bound']:.1f} FPS, {dram_text})",
        f"  resources: {shares}",
        f"  weights from DRAM: {external or 'none'}",
    ]
    if fit.get("dram_warning"):
        lines.append(f"  {fit['dram_warning']}")
    return "\n".join(lines)
