"""Notebook 06's steps: the design-space sweep over bit widths, widths and QAT/PTQ for the
configured task, and the recommendation notebook 03 takes (DEPLOY_MODEL = "sweep").

A trial is notebooks 02 and 03 at one point: from the run's FP32 checkpoint (or, for another
width, an FP32 reference trained once per width under sweep/), QAT for SWEEP_QAT_EPOCHS or PTQ
(with its gate), test metric, QONNX export and check, then FINN's flow and the fit-to-part
search for the configured board, clock and budget. Each trial's files land in
RUN/sweep/<study>/trial-NNNN/, the study (modules/sweep/) in RUN/sweep/study.db unless
SWEEP_STORAGE / --storage says else.
"""

import contextlib
import fcntl
import functools
import json
import os
import shutil
import time
from pathlib import Path

import config
from modules.dataflow.flow import FinnFlowError
from modules.hardware.estimates import BUDGET_RESOURCES
from modules.quantization.deployed import DeployedModel
from modules.quantization.ptq import run_ptq
from modules.run_paths import run_paths
from modules.stages import finn_transform, train_brevitas
from modules.sweep import space as sweep_space
from modules.sweep import study as sweep_study
from modules.tasks.registry import task_for


class SweepFailed(RuntimeError):
    """Every trial of a sweep failed; the message lists their reasons."""


# ------------------------------------------------------------------ the study


def sweep_dir(cfg):
    return run_paths(cfg).sweep


def storage_url(cfg, storage=None):
    """--storage, else config.SWEEP_STORAGE, else SQLite in RUN/sweep/study.db."""
    url = storage or cfg.SWEEP_STORAGE
    if url:
        return url
    return f"sqlite:///{(sweep_dir(cfg) / 'study.db').resolve()}"


def sweep_spec(cfg, profile, overrides, grid=None, trials=None, storage=None):
    """The study of this run and task: grid `grid` (None: config.SWEEP_GRID), or NSGA-II for
    `trials` trials (trials given). Every point is checked against config.apply first."""
    grid = grid or cfg.SWEEP_GRID
    common = dict(
        storage_url=storage_url(cfg, storage),
        seed=cfg.SWEEP_SEED,
        heartbeat_s=cfg.SWEEP_HEARTBEAT_S,
        grace_s=cfg.SWEEP_GRACE_S,
        max_retry=cfg.SWEEP_MAX_RETRY,
    )
    if trials is not None:
        space = sweep_space.search_space(cfg.SWEEP_SEARCH_SPACES, cfg.TASK)
        single = [{key: value} for key, values in space.items() for value in values]
        where = f"config.SWEEP_SEARCH_SPACES[{cfg.TASK!r}]"
        sweep_space.check_points(single, profile, overrides, where)
        searched = tuple((key, tuple(values)) for key, values in space.items())
        name = f"{cfg.RUN_NAME}-{cfg.TASK}-search"
        return sweep_study.SweepSpec(name, search_space=searched, n_trials=trials, **common)
    points = sweep_space.grid_points(cfg.SWEEP_GRIDS, cfg.TASK, grid)
    where = f"config.SWEEP_GRIDS[{cfg.TASK!r}][{grid!r}]"
    sweep_space.check_points(points, profile, overrides, where)
    name = f"{cfg.RUN_NAME}-{cfg.TASK}-grid-{grid}"
    return sweep_study.SweepSpec(name, points=tuple(points), **common)


def run_sweep(profile, overrides=None, grid=None, trials=None, storage=None, jobs=1):
    """Run (or continue) the study with `jobs` worker processes (1: this process). Returns
    the study; SweepFailed when every trial failed."""
    overrides = dict(overrides or {})
    config.apply(profile, **overrides)
    if not run_paths(config).checkpoint("fp32").is_file():
        raise FileNotFoundError(
            f"{run_paths(config).checkpoint('fp32')} is missing: every trial starts from the "
            f"run's FP32 checkpoint; run notebook 01 for RUN_NAME = {config.RUN_NAME!r} first"
        )
    spec = sweep_spec(config, profile, overrides, grid, trials, storage)
    sweep_dir(config).mkdir(parents=True, exist_ok=True)
    sweep_study.open_study(spec)  # creates it once, before workers race to
    if jobs == 1:
        work(profile, overrides, spec)
    else:
        codes = sweep_study.run_workers(jobs, work, (profile, overrides, spec))
        if any(codes):
            raise RuntimeError(f"sweep worker(s) exited with codes {codes}")
    config.apply(profile, **overrides)
    study = sweep_study.open_study(spec)
    check_not_all_failed(study)
    return study


def work(profile, overrides, spec, parent=None):
    """One worker: trials of `spec` until none is left (spawned with --jobs N: `parent`)."""
    trial = functools.partial(run_trial, profile, overrides, spec.study_name)
    return sweep_study.run_worker(spec, trial, parent)


def check_not_all_failed(study):
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    if trials and all(t.state == TrialState.FAIL for t in trials):
        reasons = sorted({t.user_attrs.get("error", "killed or interrupted") for t in trials})
        raise SweepFailed(
            f"all {len(trials)} trials of study {study.study_name!r} failed: " + "; ".join(reasons)
        )


# ------------------------------------------------------------------ one trial


def trial_name(number):
    return f"trial-{number:04d}"


def trial_overrides(cfg, overrides, study_name, number, point):
    """The run's config, the point, and what every trial sets: its own folder under
    sweep/<study>/, the quantized model, SWEEP_QAT_EPOCHS, PTQ at the trial's hidden bit widths,
    the search's start at SWEEP_MAX_FPS."""
    merged = {**overrides, **point}
    weight = merged.get("WEIGHT_BIT_WIDTH", cfg.WEIGHT_BIT_WIDTH)
    act = merged.get("ACT_BIT_WIDTH", cfg.ACT_BIT_WIDTH)
    return {
        **merged,
        "RUNS_DIR": str(sweep_dir(cfg) / study_name),
        "RUN_NAME": trial_name(number),
        "TARGET_FPS": cfg.SWEEP_MAX_FPS or merged.get("TARGET_FPS", cfg.TARGET_FPS),
        "BREVITAS_MODEL": True,
        "LOAD_MODEL": False,
        "QAT_EPOCHS": cfg.SWEEP_QAT_EPOCHS or cfg.QAT_EPOCHS,
        "PTQ_WEIGHT_BIT_WIDTH": weight,
        "PTQ_ACT_BIT_WIDTH": act,
        "DEPLOY_MODEL": point.get("DEPLOY_MODEL", "qat"),
    }


def run_trial(profile, overrides, study_name, number, point):
    """Quantize, evaluate, export and compile one point; returns the trial's record."""
    clock = [time.perf_counter()]

    def lap():
        clock.append(time.perf_counter())
        return round(clock[-1] - clock[-2], 1)

    config.apply(profile, **overrides)
    run = run_paths(config)
    fp32_metric_path = run.test_metrics("fp32")
    settings = trial_overrides(config, overrides, study_name, number, point)  # the run's folders
    reference = fp32_reference(profile, overrides, point)  # leaves config at the reference's
    seconds = {"fp32_reference": lap()}
    config.apply(profile, **settings)
    paths = run_paths(config).ensure()
    link_fp32(reference, paths)
    task = task_for(config)
    data = task.prepare_data(config)
    deployed, result, gate = quantize(task, config, data, paths)
    seconds["quantize"] = lap()
    metric = float(result.metrics[task.metric])
    fp32 = float(json.loads(fp32_metric_path.read_text())[task.metric])
    record = {
        "method": deployed.choice,
        "kind": deployed.kind,
        "bits": deployed.bits.__dict__,
        "width": width_of(config),
        "config": model_config(config),
        "metric_name": task.metric,
        "metric": metric,
        "fp32_metric": fp32,
        "drop_from_fp32_%": 100.0 * (fp32 - metric) / fp32 if fp32 > 0 else None,
        "ptq_gate": str(gate) if gate is not None else None,
        "fp32_reference": str(reference.checkpoint("fp32")),
        "folder": str(paths.root),
        "checkpoint": str(deployed.checkpoint),
        "qonnx": str(deployed.qonnx),
        "run": str(run.root),
    }
    record.update(compile_trial(config, paths))
    seconds["compile"] = lap()
    return {**record, "seconds": seconds}


def width_of(cfg):
    return cfg.DETECTOR_WIDTH_MULT if cfg.TASK == "detect" else cfg.WIDTH_MULT


def model_config(cfg):
    """The config values the trial's model was built with: what notebook 03 applies to take it."""
    keys = [*sweep_space.FP32_MODEL_KEYS, "INPUT_BIT_WIDTH", "FIRST_LAYER_WEIGHT_BIT_WIDTH",
            "WEIGHT_BIT_WIDTH", "ACT_BIT_WIDTH", "LAST_LAYER_WEIGHT_BIT_WIDTH", "BIAS_BIT_WIDTH",
            "PTQ_WEIGHT_BIT_WIDTH", "PTQ_ACT_BIT_WIDTH"]  # fmt: skip
    return {key: getattr(cfg, key) for key in keys}


def quantize(task, cfg, data, paths):
    """Notebook 02 at this point: PTQ (DEPLOY_MODEL ptq or gate) and/or QAT, then the deployed
    model recorded in the trial folder. Returns (DeployedModel, its test result, PTQ gate)."""
    ptq = run_ptq(task, cfg, data, paths) if cfg.DEPLOY_MODEL in ("ptq", "gate") else None
    gate = ptq[1] if ptq is not None else None
    qat_exports, qat_result = None, None
    if cfg.DEPLOY_MODEL == "qat" or (cfg.DEPLOY_MODEL == "gate" and not gate.use_ptq):
        model, trainer, _ = train_brevitas.train_qat(task, cfg, data, paths)
        qat_result, qat_exports = train_brevitas.evaluate_and_export(
            task, cfg, model, data, paths, trainer
        )
    deployed = train_brevitas.deploy_choice(task, cfg, paths, data, qat_exports, ptq)
    result = ptq[2] if deployed.choice == "ptq" else qat_result
    return deployed, result, gate


def compile_trial(cfg, paths):
    """Notebook 03's flow and fit-to-part search on the trial's QONNX; FINN refusing the
    graph is a result (recorded with its reason), not a crash."""
    deployed = DeployedModel.load(paths.deployed_model)
    try:
        flow = finn_transform.compile_qonnx(cfg, paths, deployed.qonnx)
    except FinnFlowError as error:
        return {
            "fps": 0.0, "fits": False, "finn_error": str(error),
            "constraints": {"finn_builds": 1.0, "over_budget": 1.0},
        }  # fmt: skip
    design, frontier = finn_transform.choose_design(cfg, flow)
    finn_transform.save_design(cfg, paths, flow, design, frontier)
    share = design.totals["% of part"]
    limiting = design.limiting()
    return {
        "fps": float(design.performance["fps"]),
        "fits": design.fits,
        **{f"{name} %": float(share[name]) for name in BUDGET_RESOURCES},
        "binding_resource": limiting["resource"],
        "binding_layer": str(limiting["layer"]),
        "handoff": str(paths.handoff),
        # <= 0 is feasible: the most-used resource's share of its limit, less 1
        "constraints": {"finn_builds": 0.0, "over_budget": limiting["share_of_limit"] - 1.0},
    }


# ------------------------------------------------------------------ FP32 references


def fp32_reference(profile, overrides, point):
    """RunPaths holding the FP32 checkpoint this point starts from: the run's, or for a point
    that changes the FP32 model (WIDTH_MULT, ...) one trained once under sweep/fp32-<...>/."""
    config.apply(profile, **overrides)
    run = run_paths(config)
    changes = {k: v for k, v in point.items() if k in sweep_space.FP32_MODEL_KEYS}
    changes = {k: v for k, v in changes.items() if getattr(config, k) != v}
    if not changes:
        return run
    name = "fp32-" + "-".join(f"{k}={v}" for k, v in sorted(changes.items()))
    folder = {"RUNS_DIR": str(sweep_dir(config)), "RUN_NAME": name, "BREVITAS_MODEL": False}
    config.apply(profile, **{**overrides, **changes, **folder, "LOAD_MODEL": False})
    paths = run_paths(config).ensure()
    with _locked(paths.root / "train.lock"):  # one worker trains it, the others wait
        if not paths.test_metrics("fp32").is_file():
            print(f"training the FP32 reference {name} (once per sweep)", flush=True)
            train_fp32_reference(config, paths)
    return paths


def train_fp32_reference(cfg, paths):
    """Notebook 01's training and test evaluation at this point's model settings."""
    task = task_for(cfg)
    data = task.prepare_data(cfg)
    model = task.build_model(cfg)
    epochs = cfg.SWEEP_FP32_EPOCHS or cfg.EPOCHS
    trainer = task.make_trainer(cfg, model, data, paths, "fp32", epochs)
    trainer.fit(epochs)
    task.evaluate_on_test(cfg, model, data, paths, "fp32", trainer.best_path)


@contextlib.contextmanager
def _locked(path):
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def link_fp32(reference, paths):
    """The reference's FP32 checkpoint and test metrics in the trial folder, where notebook
    02's steps look for them (a hard link, a copy across file systems)."""
    for source, target in (
        (reference.checkpoint("fp32"), paths.checkpoint("fp32")),
        (reference.test_metrics("fp32"), paths.test_metrics("fp32")),
    ):
        if target.exists():
            continue
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


# ------------------------------------------------------------------ the recommendation


def recommendation_record(study, number, why):
    """The recommended trial as notebook 03's record (DeployedModel with its model config)."""
    from modules.models.quant_layers import BitWidths

    attrs = study.trials[number].user_attrs
    return DeployedModel(
        attrs["method"],
        attrs["kind"],
        BitWidths(**attrs["bits"]),
        Path(attrs["checkpoint"]),
        Path(attrs["qonnx"]),
        f"sweep trial {number} ({attrs['label']}): {why}",
        config=attrs["config"],
    )


def save_recommendation(cfg, study, number, why):
    """Write RUN/sweep/recommended.json; notebooks 03-05 take it with DEPLOY_MODEL = "sweep"."""
    record = recommendation_record(study, number, why)
    return record.save(run_paths(cfg).sweep_choice)
