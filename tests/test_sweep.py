"""`firesmoke sweep` on the tiny profile. One study serves the sweep tests: a one-worker sweep
killed once its first trial finished and its second runs, resumed by two workers (--jobs 2)
that finish it; every point runs once, the finished trial is not rerun, the killed one is, and
the points at another width start from one FP32 reference of that width. Bad grids, storages
and runs get clear errors."""

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import optuna
import pandas as pd
import pytest
import sqlalchemy

import config
from modules.quantization.deployed import deployed_config, load_deployed_model
from modules.run_paths import run_paths
from modules.stages import design_space
from modules.sweep import results
from modules.sweep.space import SweepSpaceError, label
from modules.sweep.study import SweepSpec, SweepStorageError, open_storage
from modules.tasks.registry import task_for
from modules.training.checkpoints import load_weights

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# four cheap points, one QAT epoch each: one at the run's width, three at half width sharing
# one FP32 reference (one of them PTQ from it)
HALF = {"WIDTH_MULT": 0.5}
GRID = [
    {"WEIGHT_BIT_WIDTH": 2, "ACT_BIT_WIDTH": 2},
    {"WEIGHT_BIT_WIDTH": 3, "ACT_BIT_WIDTH": 3, **HALF},
    {"WEIGHT_BIT_WIDTH": 4, "ACT_BIT_WIDTH": 4, **HALF},
    {"WEIGHT_BIT_WIDTH": 4, "ACT_BIT_WIDTH": 4, "DEPLOY_MODEL": "ptq", **HALF},
]
LABELS = {label(point) for point in GRID}
REFERENCE_MESSAGE = "training the FP32 reference fp32-WIDTH_MULT=0.5"


def sweep_settings(tiny_dirs, runs_dir, grid=GRID, **extra):
    return {
        **tiny_dirs,
        "RUNS_DIR": str(runs_dir),
        "SWEEP_GRIDS": {"classify": {"test": grid}},
        "SWEEP_QAT_EPOCHS": 1,
        **extra,
    }


def command(subcommand, settings, *args):
    line = [str(BIN / "firesmoke"), subcommand, "--profile", "tiny", *args]
    return [*line, "--set", *(f"{key}={value!r}" for key, value in settings.items())]


ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def run(line, timeout=3600):
    done = subprocess.run(line, capture_output=True, text=True, env=ENV, timeout=timeout, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def fp32_run(tiny_dirs, tmp_path_factory):
    """A tiny run folder with notebook 01's FP32 checkpoint (firesmoke train --stage fp32)."""
    runs_dir = tmp_path_factory.mktemp("sweep_runs")
    run(command("train", {**tiny_dirs, "RUNS_DIR": str(runs_dir)}, "--stage", "fp32"))
    return runs_dir


@pytest.fixture(scope="module")
def sweep(fp32_run, tiny_dirs):
    """GRID's study: one worker killed (SIGKILL to its process group) once its first trial
    finished and its second runs, then the same command with --jobs 2 to the end. A grace of
    20 s costs no time (the workers take fresh points while the killed trial goes stale), and
    a live worker's 2 s heartbeat is never that late, even on a loaded machine."""
    settings = sweep_settings(tiny_dirs, fp32_run, SWEEP_HEARTBEAT_S=2, SWEEP_GRACE_S=20)
    line = command("sweep", settings, "--grid", "test")
    first = subprocess.Popen(line, env=ENV, cwd=REPO, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        study = wait_for(lambda: killable(fp32_run), first)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    finished = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])[0]
    killed = study.get_trials(states=[optuna.trial.TrialState.RUNNING])[0]
    checkpoint = Path(finished.user_attrs["checkpoint"])
    written = checkpoint.stat().st_mtime_ns
    done = run([*line, "--jobs", "2", "--json"])
    return types.SimpleNamespace(
        settings=settings,
        finished=finished,
        killed=killed,
        checkpoint=checkpoint,
        written=written,
        resumed_stdout=done.stdout,
        payload=json.loads(done.stdout[done.stdout.index('{\n  "study"') :]),
        study=study_of(fp32_run),
    )


def study_of(runs_dir, grid="test"):
    url = f"sqlite:///{runs_dir / 'tiny' / 'sweep' / 'study.db'}"
    return optuna.load_study(study_name=f"tiny-classify-grid-{grid}", storage=url)


def complete_by_label(study):
    """label -> numbers of the finished trials of that point."""
    found = {}
    for trial in study.get_trials(states=[optuna.trial.TrialState.COMPLETE]):
        found.setdefault(trial.user_attrs["label"], []).append(trial.number)
    return found


@pytest.mark.slow
def test_two_workers_run_every_grid_point_once(sweep, fp32_run):
    study, payload = sweep.study, sweep.payload
    assert payload["study"] == study.study_name
    assert sorted(row["trial"] for row in payload["trials"]) == [t.number for t in study.trials]
    by_label = complete_by_label(study)
    assert set(by_label) == LABELS
    assert all(len(numbers) == 1 for numbers in by_label.values()), by_label
    done = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    resumed = {t.user_attrs["worker"] for t in done if t.number != sweep.finished.number}
    assert len(resumed) == 2, f"both workers of --jobs 2 ran trials: {resumed}"
    for trial in done:
        attrs = trial.user_attrs
        assert 0.0 <= attrs["metric"] <= 1.0 and attrs["fps"] > 0
        assert Path(attrs["checkpoint"]).is_file() and Path(attrs["qonnx"]).is_file()
        assert Path(attrs["folder"]).parent == fp32_run / "tiny" / "sweep" / study.study_name
        assert attrs["fits"] == (trial.system_attrs["constraints:over_budget"] <= 0)
        assert trial.values == [attrs["metric"], attrs["fps"]]
        print(f"trial {trial.number} {attrs['label']}: {attrs['wall_s']} s, worker "
              f"{attrs['worker']}")  # fmt: skip
    takes_recommendation(study, sweep.settings)


def takes_recommendation(study, settings):
    """Notebook 03's first steps with DEPLOY_MODEL = "sweep": the recommended trial's config
    applied, its checkpoint loaded into the model that config builds, same test metric."""
    table = results.trials_table(study)
    best, why = results.recommend(table, target_fps=1.0)
    try:
        config.apply("tiny", **settings)
        design_space.save_recommendation(config, study, best, why)
        config.apply("tiny", **settings, DEPLOY_MODEL="sweep", BREVITAS_MODEL=True)
        paths = run_paths(config)
        config.apply("tiny", **settings, DEPLOY_MODEL="sweep", BREVITAS_MODEL=True,
                     **deployed_config(config, paths))  # fmt: skip
        task = task_for(config)
        data = task.prepare_data(config)
        deployed, model = load_deployed_model(task, config, paths)
        assert deployed.qonnx == Path(table.loc[best, "folder"]) / "onnx" / deployed.qonnx.name
        result, _ = task.evaluate_on_test(config, model, data, paths, "check")
        assert result.metrics[task.metric] == pytest.approx(table.loc[best, "metric"])
    finally:
        config.apply()


@pytest.mark.slow
def test_killed_sweep_resumes(sweep):
    study = sweep.study
    trials = {t.number: t for t in study.get_trials()}
    assert trials[sweep.finished.number].state == optuna.trial.TrialState.COMPLETE
    assert sweep.checkpoint.stat().st_mtime_ns == sweep.written, "the finished trial was rerun"
    assert trials[sweep.killed.number].state == optuna.trial.TrialState.FAIL
    failed = sweep.killed.number
    reruns = [t for t in trials.values() if t.system_attrs.get("failed_trial") == failed]
    ran = [t for t in reruns if t.state != optuna.trial.TrialState.PRUNED]
    assert len(ran) == 1 and ran[0].state == optuna.trial.TrialState.COMPLETE, reruns
    assert ran[0].params == sweep.killed.params
    # both workers may queue the killed trial again in the same instant: the later copy stops
    # at once as a twin of the one running (modules/sweep/study.py, same_point_trial)
    for twin in (t for t in reruns if t.state == optuna.trial.TrialState.PRUNED):
        assert twin.number > ran[0].number and twin.params == ran[0].params
    assert {k: len(v) for k, v in complete_by_label(study).items()} == {label(p): 1 for p in GRID}


@pytest.mark.slow
def test_points_at_another_width_start_from_one_fp32_reference_of_it(sweep, fp32_run):
    """A WIDTH_MULT point's QAT starts from an FP32 model of its width, trained once per sweep
    under sweep/fp32-WIDTH_MULT=0.5/ (the run's full-width checkpoint does not load into it);
    points at the run's width start from the run's checkpoint."""
    sweep_root = fp32_run / "tiny" / "sweep"
    reference = sweep_root / "fp32-WIDTH_MULT=0.5" / "weights" / "fp32_best.pt"
    full_width = fp32_run / "tiny" / "weights" / "fp32_best.pt"
    # the two workers of the resumed run train it once between them, and not at all when the
    # killed run finished it (that run may have been killed while training it)
    trainings = sweep.resumed_stdout.count(REFERENCE_MESSAGE)
    finished_there = sweep.finished.user_attrs["point"].get("WIDTH_MULT") == 0.5
    assert trainings == (0 if finished_there else 1), sweep.resumed_stdout[-3000:]
    done = sweep.study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    for trial in done:
        attrs = trial.user_attrs
        half = attrs["point"].get("WIDTH_MULT") == 0.5
        assert attrs["width"] == attrs["config"]["WIDTH_MULT"] == (0.5 if half else 1.0)
        source = reference if half else full_width
        assert Path(attrs["fp32_reference"]) == source
        folder = Path(attrs["folder"])
        assert folder.parent == sweep_root / sweep.study.study_name
        start = folder / "weights" / "fp32_best.pt"  # where the trial's QAT took it from
        assert start.read_bytes() == source.read_bytes(), trial.number
        if attrs["method"] == "qat":
            init = pd.read_csv(folder / "logs" / "02_fp32_initialisation.csv", index_col=0)
            init = init.iloc[:, 0]
            assert Path(init["initialised from"]) == start
            assert int(init["tensors copied"]) > 0 and init["FP32 tensors not used"] == "none"
    fp32_model = {**sweep.settings, "BREVITAS_MODEL": False}
    load_weights(build_classifier(fp32_model, **HALF), reference, "fp32")
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_weights(build_classifier(fp32_model), reference, "fp32")


def build_classifier(settings, **point):
    try:
        values = config.apply("tiny", **settings, **point)
    finally:
        config.apply()
    cfg = types.SimpleNamespace(**values)
    return task_for(cfg).build_model(cfg)


def killable(runs_dir):
    """The study once its first trial finished and its second runs, else None."""
    if not (runs_dir / "tiny" / "sweep" / "study.db").is_file():
        return None
    try:
        study = study_of(runs_dir)
    except (KeyError, sqlalchemy.exc.OperationalError):  # being created
        return None
    states = [t.state for t in study.get_trials()]
    done = states.count(optuna.trial.TrialState.COMPLETE)
    return study if done == 1 and optuna.trial.TrialState.RUNNING in states else None


def wait_for(check, process, timeout=3600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found is not None:
            return found
        assert process.poll() is None, "the sweep ended before it could be killed"
        time.sleep(0.5)
    raise AssertionError("the sweep did not reach its second trial in time")


def test_grid_key_that_is_not_a_config_key(tiny_cfg):
    grid = [{"WEIGHT_BITS": 4}]
    with pytest.raises(SweepSpaceError, match=r"'test'.*WEIGHT_BITS"):
        spec_for(tiny_cfg, grid)


def test_grid_value_config_refuses(tiny_cfg):
    grid = [{"WEIGHT_BIT_WIDTH": 4}, {"WEIGHT_BIT_WIDTH": 99}]
    with pytest.raises(SweepSpaceError, match=r"W99.*WEIGHT_BIT_WIDTH = 99"):
        spec_for(tiny_cfg, grid)


def test_grid_key_a_trial_sets_itself(tiny_cfg):
    with pytest.raises(SweepSpaceError, match="PTQ_WEIGHT_BIT_WIDTH"):
        spec_for(tiny_cfg, [{"PTQ_WEIGHT_BIT_WIDTH": 4}])


def spec_for(cfg, grid):
    overrides = {"SWEEP_GRIDS": {"classify": {"test": grid}}, "RUNS_DIR": cfg.RUNS_DIR}
    try:
        values = config.apply("tiny", **overrides)
        return design_space.sweep_spec(types.SimpleNamespace(**values), "tiny", overrides, "test")
    finally:
        config.apply()


def test_unreachable_storage_is_a_clear_error(tmp_path):
    for url in (
        f"sqlite:///{tmp_path}/no/such/folder/study.db",
        "postgresql://nobody@127.0.0.1:9/x",
    ):
        with pytest.raises(SweepStorageError, match="cannot open the sweep storage"):
            open_storage(SweepSpec("s", url))


@pytest.mark.slow
def test_every_trial_failing_names_the_reasons(fp32_run, tiny_dirs, tmp_path):
    broken = tmp_path / "runs"
    (broken / "tiny" / "weights").mkdir(parents=True)
    (broken / "tiny" / "logs").mkdir(parents=True)
    (broken / "tiny" / "weights" / "fp32_best.pt").write_bytes(b"not a checkpoint")
    source = fp32_run / "tiny" / "logs" / "fp32_test_metrics.json"
    (broken / "tiny" / "logs" / "fp32_test_metrics.json").write_text(source.read_text())
    at_run_width = [GRID[0], {"WEIGHT_BIT_WIDTH": 3, "ACT_BIT_WIDTH": 3}]
    overrides = sweep_settings(tiny_dirs, broken, at_run_width)
    with pytest.raises(design_space.SweepFailed, match="all 2 trials.*failed: .*fp32_best.pt"):
        try:
            design_space.run_sweep("tiny", overrides, "test")
        finally:
            config.apply()


def finished_trial(label_, method, weight, act, metric, fps, fits, width=1.0):
    attrs = {
        "label": label_, "method": method, "width": width, "metric": metric, "fps": fps,
        "fits": fits, "bits": {"weight": weight, "act": act, "first_weight": 8, "last_weight": 8},
    }  # fmt: skip
    return optuna.trial.create_trial(values=[metric, fps], user_attrs=attrs)


def test_bit_step_costs_take_fps_at_fit_and_name_designs_that_do_not_fit():
    study = optuna.create_study(directions=["maximize", "maximize"])
    for trial in (
        finished_trial("W8 A8 ptq", "ptq", 8, 8, 0.90, 100.0, True),
        finished_trial("W4 A4", "qat", 4, 4, 0.88, 300.0, True),
        finished_trial("W4 A4 ptq", "ptq", 4, 4, 0.85, 400.0, True),
        # does not fit: its FPS is the design's at the search's start, not an FPS at fit
        finished_trial("W2 A2", "qat", 2, 2, 0.70, 5000.0, False),
        finished_trial("W4 A4 x0.5", "qat", 4, 4, 0.80, 900.0, True, width=0.5),
    ):
        study.add_trial(trial)
    steps = results.bit_step_costs(results.trials_table(study)).set_index("from")
    # the same bits by two methods is no step; each method steps on its own side
    assert list(steps.index) == ["W8A8 ptq", "W4A4 qat"]
    assert list(steps["to"]) == ["W4A4 ptq", "W2A2 qat"]
    down = steps.loc["W8A8 ptq"]
    assert down["metric_cost"] == pytest.approx(0.05)
    assert down["fps_gain_x"] == pytest.approx(4.0) and down["does_not_fit"] is None
    unfit = steps.loc["W4A4 qat"]
    assert unfit["metric_cost"] == pytest.approx(0.18)
    assert unfit["fps_at_fit_from"] == 300.0 and pd.isna(unfit["fps_at_fit_to"])
    assert pd.isna(unfit["fps_gain_x"]) and unfit["does_not_fit"] == "W2A2 qat"
