"""Compile any QONNX model (not only this repo's): the FINN flow, the estimates of the folded
design, and a report (`firesmoke compile`). The compiled design (host graph + accelerator)
is saved so `firesmoke emulate` can run it.

Totals: `design_totals` gives the whole stitched design (modules.hardware.resources: FINN's
layers plus FIFOs, width converters, IODMAs and shell, FF included, by block models fitted on
published per-block reports, with each total's hold-out error) and, beside it, the sum of
FINN's per-layer estimates, which leaves those blocks out and has no FF model.
"""

import contextlib
import json
import sys
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from modules.dataflow import flow as finn_flow
from modules.dataflow import placement
from modules.dataflow.stage_check import with_child
from modules.hardware import block_models, dram
from modules.hardware import estimates as finn_estimates
from modules.hardware.design_estimate import holdout_errors

DESIGN_FILE = "design.onnx"  # host nodes + one StreamingDataflowPartition
ACCELERATOR_FILE = "design_accelerator.onnx"  # the folded accelerator that partition runs
REPORT_FILE = "compile.json"
TOTALS = ("LUT", "FF", "BRAM36", "DSP")


@dataclass
class CompileSettings:
    part: str = "xc7z020clg400-1"
    clock_mhz: float = 100.0
    target_fps: float | None = None
    folding: str | None = None  # a folding JSON (ApplyConfig format), applied after SetFolding
    input_dtype: str = "auto"
    budget_fraction: float = 0.9
    mvau_wwidth_max: int = 36
    fifo_sizing: str = "backpressure"  # config.FIFO_SIZING
    # config.EXTERNAL_WEIGHTS: "never", "auto" (the per-layer search at target_fps decides)
    # or generic layer names (MVAU_3, ...); board_dram: config.BOARD_DRAM[BOARD]
    external_weights: str | list = "never"
    board: str = "Pynq-Z2"
    board_dram: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg, **overrides):
        settings = {
            "part": finn_estimates.part_for_board(cfg.BOARD, cfg.BOARD_PARTS),
            "clock_mhz": cfg.CLOCK_MHZ,
            "target_fps": cfg.TARGET_FPS,
            "budget_fraction": cfg.RESOURCE_BUDGET_FRACTION,
            "mvau_wwidth_max": cfg.MVAU_WWIDTH_MAX,
            "fifo_sizing": cfg.FIFO_SIZING,
            "external_weights": cfg.EXTERNAL_WEIGHTS,
            "board": cfg.BOARD,
            "board_dram": cfg.BOARD_DRAM.get(cfg.BOARD, {}),
        }
        return cls(**settings | {k: v for k, v in overrides.items() if v is not None})

    def dram_port(self):
        """The board's dram.DramPort (None without figures: no layer may stream)."""
        if not self.board_dram:
            if self.external_weights != "never":
                raise ValueError(
                    f"EXTERNAL_WEIGHTS = {self.external_weights!r} needs config.BOARD_DRAM "
                    f"figures for BOARD {self.board!r}"
                )
            return None
        return dram.port_for_board(self.board, {self.board: self.board_dram})


def stage_counts(reports, models=None):
    """Node-type counts per stage (in flow order): from the step reports, and from `models`
    (stage -> model) for stages without a report of their own (the partition's child)."""
    counts = {report.stage: report.after for report in reports}
    counts |= {stage: finn_flow.node_counts(model) for stage, model in (models or {}).items()}
    return {stage: counts[stage] for stage in finn_flow.STAGES if stage in counts}


def _column(estimate, column):
    table = estimate.totals[column]
    return {name: (None if pd.isna(table.get(name)) else float(table[name])) for name in TOTALS}


def design_totals(estimate):
    """LUT, FF, BRAM36, DSP of the whole stitched design (`resources.whole_design_totals`,
    which the estimate's budget check already computed), and FINN's per-layer sums as
    "finn_per_layer" (FF None: FINN has no FF model)."""
    return _column(estimate, "used") | {"finn_per_layer": _column(estimate, "FINN per-layer")}


def _failure(settings, input_dtype, reports, error, blocker=None):
    return {
        "hw_only": False,
        "error": error,
        "blocker": blocker,
        "input_dtype": input_dtype,
        "stages": stage_counts(reports),
        "fps": None,
        "fits": False,
        "totals": dict.fromkeys(TOTALS),
        "settings": asdict(settings),
    }


def _load_checked(qonnx_path):
    path = Path(qonnx_path)
    if not path.is_file():
        raise FileNotFoundError(f"compile: no model file {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"compile: {path} is an empty file, not an ONNX model")
    try:
        model = ModelWrapper(str(path))
    except Exception as error:  # onnx raises several types for a file that is not a model
        raise ValueError(f"compile: {path} is not an ONNX model ({error})") from error
    if not model.graph.node or not model.graph.input or not model.graph.output:
        # protobuf parses many non-model files into an empty message without complaint
        raise ValueError(
            f"compile: {path} is not an ONNX model (no graph nodes, inputs or outputs)"
        )
    return model


def compile_model(qonnx_path, out_dir, settings):
    """Run the flow on `qonnx_path` into `out_dir`; returns the report dict (also saved as
    out_dir/compile.json). A model that cannot become one HW partition gives hw_only False
    and the blocking node, one whose convolutions or matmuls stay on the host gives hw_only
    False and those nodes (`placement`); any other flow failure gives the step and the error."""
    out_dir = Path(out_dir)
    model = _load_checked(qonnx_path)
    input_dtype = settings.input_dtype
    if input_dtype == "auto":
        input_dtype = finn_flow.graph_input_datatype(model)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # FINN prints progress; stdout is the report
            flow = finn_flow.run_flow(
                qonnx_path,
                out_dir,
                settings.part,
                target_fps=settings.target_fps,
                clock_mhz=settings.clock_mhz,
                folding_config=settings.folding,
                input_dtype=input_dtype,
                mvau_wwidth_max=settings.mvau_wwidth_max,
            )
    except finn_flow.FinnFlowError as error:
        report = _failure(settings, input_dtype, error.reports, str(error), error.blocker)
        return _save(report, out_dir)
    except Exception as error:  # a library failure deep inside a step: say which model/step
        last = traceback.extract_tb(error.__traceback__)[-1]
        message = f"{type(error).__name__}: {error} (in {Path(last.filename).name}:{last.lineno})"
        return _save(_failure(settings, input_dtype, [], message), out_dir)
    where = placement.placement(flow.parent, flow.child)
    cause = placement.likely_cause(finn_flow.node_counts(flow.models["qonnx"]))
    message = placement.placement_error(where, cause)
    if message is not None:  # an accelerator that leaves the convs/matmuls on the host
        failure = _failure(settings, flow.input_dtype, flow.reports, message)
        return _save(
            failure | {"placement": where, "host_nodes": finn_flow.node_counts(flow.parent)},
            out_dir,
        )
    return _save(_success(flow, settings, out_dir) | {"placement": where}, out_dir)


def _placed_design(flow, settings, budget):
    """The Estimate of the design to save: the flow's folding with EXTERNAL_WEIGHTS applied
    (named layers stream from DRAM), or with "auto" the per-layer search's design at the
    target (where it puts each layer's weights)."""
    port = settings.dram_port()
    if settings.external_weights == "auto":
        if settings.target_fps is None:
            raise ValueError("EXTERNAL_WEIGHTS = 'auto' needs a target FPS (--target-fps)")
        return finn_estimates.best_design(
            flow.child,
            budget,
            settings.target_fps,
            settings.clock_mhz,
            settings.budget_fraction,
            settings.mvau_wwidth_max,
            settings.fifo_sizing,
            "auto",
            port,
        )
    names = finn_estimates.place_named_weights(flow.child, flow.folded, settings.external_weights)
    estimate = finn_estimates.estimate(
        flow.folded,
        budget,
        settings.clock_mhz,
        settings.budget_fraction,
        fifo_method=settings.fifo_sizing,
        port=port,
    )
    estimate.names = names
    return estimate


def _success(flow, settings, out_dir):
    budget = finn_estimates.PartBudget(part=settings.part)
    with contextlib.redirect_stdout(sys.stderr):
        estimate = _placed_design(flow, settings, budget)
    with_child(flow.parent, estimate.folded, out_dir / ACCELERATOR_FILE).save(
        str(out_dir / DESIGN_FILE)
    )
    return {
        "hw_only": True,
        "error": None,
        "blocker": None,
        "input_dtype": flow.input_dtype,
        "stages": stage_counts(flow.reports, {"partition_child": flow.models["partition_child"]}),
        "host_nodes": finn_flow.node_counts(flow.parent),
        "fps": float(estimate.performance["fps"]),
        "latency_ms": float(estimate.performance["latency_ms"]),
        "bottleneck_layer": estimate.performance["bottleneck_layer"],
        "fits": estimate.fits,
        # external_layers (generic name -> bits read per frame), dram_bits_per_frame,
        # fps_compute_bound, fps_dram_bound (None: no DRAM traffic), bound, dram_warning
        **estimate.dram_summary(),
        "totals": design_totals(estimate),
        "totals_holdout_error_pct": holdout_errors(block_models.load_coefficients()),
        "totals_holdout_error_abs": holdout_errors(
            block_models.load_coefficients(), "max_abs_error"
        ),
        "totals_note": (
            "whole stitched design (layers, FIFOs, width converters, IODMAs, shell) by the block "
            "models fitted on published per-block reports; totals_holdout_error_pct: the largest "
            "error of each total on published designs left out of the fit; finn_per_layer: "
            "FINN's per-layer estimates summed (no FIFOs, converters, shell; no FF model)"
        ),
        "design": str(out_dir / DESIGN_FILE),
        "settings": asdict(settings),
    }


def _save(report, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REPORT_FILE).write_text(json.dumps(report, indent=2, default=str))
    return report


def load_design(out_dir):
    """The compiled design of `out_dir`, its partition pointed at the accelerator file there
    (so a moved or copied folder still runs)."""
    out_dir = Path(out_dir)
    path = out_dir / DESIGN_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"emulate: {path} not found; compile the model first (firesmoke compile MODEL "
            f"--out {out_dir}), and check that the report there says hw_only true"
        )
    design = ModelWrapper(str(path))
    for node in design.get_nodes_by_op_type("StreamingDataflowPartition"):
        getCustomOp(node).set_nodeattr("model", str(out_dir / ACCELERATOR_FILE))
    return design
