"""Notebook 03's steps around the FINN flow: compile the exported QONNX, choose the folding,
verify every stage on real images, and hand the result to notebooks 04 and 05.

Everything lands in RUN/finn/: the numbered stage graphs, estimates (JSON, CSV, PNG), the
folding JSON and `handoff.json`, which names the files the later notebooks load.
"""

import dataclasses
import json
import logging
import types

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from modules.dataflow import flow as finn_flow
from modules.dataflow import stage_check
from modules.hardware import dram
from modules.hardware import estimates as finn_estimates
from modules.hardware.emulator import Emulator
from modules.hardware.fifo_config import save_fifo_config
from modules.quantization import rounding_ties
from modules.training.checkpoints import load_weights


def quiet_finn_logs():
    # SetFolding and MinimizeAccumulatorWidth log hundreds of expected "did not meet" lines
    for name in ("finn", "finn_logger", "qonnx"):
        logging.getLogger(name).setLevel(logging.ERROR)


def compile_qonnx(cfg, paths, qonnx_path):
    """Every flow step, saved as RUN/finn/NN_<stage>.onnx; folding from config (target FPS or
    FOLDING_CONFIG_FILE)."""
    quiet_finn_logs()
    return finn_flow.run_flow(
        qonnx_path,
        paths.finn,
        finn_estimates.part_for_board(cfg.BOARD, cfg.BOARD_PARTS),
        target_fps=cfg.TARGET_FPS,
        clock_mhz=cfg.CLOCK_MHZ,
        folding_config=cfg.FOLDING_CONFIG_FILE,
        standalone_thresholds=cfg.STANDALONE_THRESHOLDS,
        mvau_wwidth_max=cfg.MVAU_WWIDTH_MAX,
    )


def choose_design(cfg, flow):
    """The folded design to build: the user's folding JSON as given, or the automatic
    per-layer search (lowering the target until it fits when FIT_TO_PART). Returns
    (Estimate, frontier DataFrame or None). EXTERNAL_WEIGHTS lets the search stream weights
    from DRAM (the FPS is then the lower of the compute and the DRAM bound)."""
    budget = finn_estimates.budget_from_config(cfg)
    fraction = cfg.RESOURCE_BUDGET_FRACTION
    port = dram.port_from_config(cfg) if cfg.EXTERNAL_WEIGHTS != "never" else None
    external = {"external": cfg.EXTERNAL_WEIGHTS, "port": port}
    if cfg.FOLDING_CONFIG_FILE:
        names = finn_estimates.place_named_weights(flow.child, flow.folded, cfg.EXTERNAL_WEIGHTS)
        design = finn_estimates.estimate(
            flow.folded, budget, cfg.CLOCK_MHZ, fraction, fifo_method=cfg.FIFO_SIZING, port=port
        )
        design.names = names
        return design, None
    best, frontier = finn_estimates.fit_to_part(
        flow.child,
        budget,
        cfg.TARGET_FPS,
        cfg.CLOCK_MHZ,
        fraction,
        fit=cfg.FIT_TO_PART,
        mvau_wwidth_max=cfg.MVAU_WWIDTH_MAX,
        fifo_method=cfg.FIFO_SIZING,
        **external,
    )
    if best is None:  # nothing fits (or FIT_TO_PART is off and the target does not fit)
        best = finn_estimates.best_design(
            flow.child,
            budget,
            cfg.TARGET_FPS,
            cfg.CLOCK_MHZ,
            fraction,
            cfg.MVAU_WWIDTH_MAX,
            cfg.FIFO_SIZING,
            **external,
        )
    return best, frontier


def save_design(cfg, paths, flow, design, frontier):
    """Estimates report, folding JSON, the folded child and the parent with it; handoff.json."""
    budget = finn_estimates.budget_from_config(cfg)
    report = finn_estimates.save_report(
        design,
        paths.estimates,
        budget,
        cfg.RESOURCE_BUDGET_FRACTION,
        frontier,
        cfg.FIFO_SIZING,
    )
    folded_path = paths.design_folded.resolve()
    parent_path = paths.design_parent
    stage_check.with_child(flow.parent, design.folded, folded_path).save(str(parent_path))
    folding_path = finn_flow.save_folding_config(design.folded, paths.folding_config)
    fifo_path = save_fifo_config(design.folded, budget.part, cfg.FIFO_SIZING, paths.fifo_config)
    handoff = {
        "folded_child": str(folded_path),
        "parent": str(parent_path),
        "folding_config": str(folding_path),
        "fifo_config": str(fifo_path),
        "estimates": str(report["summary_json"]),
        "fps": design.performance["fps"],  # accelerator only: see performance["excludes"]
        "fits": design.fits,
        "resources": design.totals["used"].to_dict(),  # whole stitched design
    }
    paths.handoff.write_text(json.dumps(handoff, indent=2))
    return handoff


def load_handoff(paths):
    path = paths.handoff
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run notebook 03 for this RUN_NAME first")
    return json.loads(path.read_text())


def fp32_model(task, cfg, paths):
    """Notebook 01's FP32 model of this task (context row of the equivalence table), or None
    when there is no FP32 checkpoint."""
    path = paths.checkpoint("fp32")
    if not path.is_file():
        return None
    fp32_cfg = types.SimpleNamespace(**{**cfg.snapshot(), "BREVITAS_MODEL": False})
    return load_weights(task.build_model(fp32_cfg), path, "fp32")


def verify_stages(cfg, flow, design, head_model, fp32_model, images, paths):
    """FP32 (context), Brevitas, QONNX, FINN-ONNX, streamlined, HW layers, partitioned, the
    chosen folded design and the emulator running it (weights of external layers read from
    their weight streams), on the same images. Returns the equivalence table."""
    chosen = dataclasses.replace(flow, folded=design.folded)  # the flow itself stays as compiled
    stages = stage_check.flow_stages(chosen, head_model, str(paths.finn), fp32_model, Emulator)
    table, _ = stage_check.stage_equivalence(stages, images)
    return table


def explain_disagreement(cfg, flow, design, head_model, images, emulated, paths):
    """The images on which the emulated accelerator's output differs from Brevitas', and every
    stage run again on them (`verify_stages`; None when there are none): `assert_identical`
    on that table passes only where each stage matches the one before it exactly or through a
    rounding tie or float noise (modules/quantization/rounding_ties.py)."""
    count = len(images)
    brevitas = np.asarray(stage_check.torch_stage(head_model)(images)).reshape(count, -1)
    differing = rounding_ties.differing_images(np.asarray(emulated).reshape(count, -1), brevitas)
    if not len(differing):
        return differing, None
    return differing, verify_stages(cfg, flow, design, head_model, None, images[differing], paths)


def emulate_design(paths, images):
    """The chosen design (host nodes + bit-exact emulated accelerator) on `images`."""
    emulator = Emulator(ModelWrapper(load_handoff(paths)["parent"]))
    return emulator(np.asarray(images, dtype=np.float32))


def synth_check(cfg, paths):
    """config.SYNTH_CHECK: the chosen design's RTL layers synthesized with Yosys beside the
    resource model (as `firesmoke synth RUN/finn`); None when off."""
    if not cfg.SYNTH_CHECK:
        return None
    from modules.synthesis import design as synth

    part = finn_estimates.part_for_board(cfg.BOARD, cfg.BOARD_PARTS)
    design = synth.load_design(paths.finn, part=part, clock_mhz=cfg.CLOCK_MHZ)
    return synth.synthesize(design, cfg.SYNTH_CACHE_DIR, jobs=cfg.SYNTH_JOBS)
