"""`firesmoke sweep` on the tiny profile: two workers share one SQLite study, a killed sweep
resumes without rerunning finished trials, and bad grids, storages and runs get clear errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

import config
from modules.quantization.deployed import deployed_config, load_deployed_model
from modules.run_paths import run_paths
from modules.stages import design_space
from modules.sweep import results
from modules.sweep.space import SweepSpaceError, label
from modules.sweep.study import SweepSpec, SweepStorageError, open_storage
from modules.tasks.registry import task_for

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# four cheap points at the run's width (no FP32 reference to train), one QAT epoch each
GRID = [
    {"WEIGHT_BIT_WIDTH": 2, "ACT_BIT_WIDTH": 2},
    {"WEIGHT_BIT_WIDTH": 3, "ACT_BIT_WIDTH": 3},
    {"WEIGHT_BIT_WIDTH": 4, "ACT_BIT_WIDTH": 4},
    {"WEIGHT_BIT_WIDTH": 4, "ACT_BIT_WIDTH": 4, "DEPLOY_MODEL": "ptq"},
]
LABELS = {label(point) for point in GRID}


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


def run(line, timeout=3600):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(line, capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def fp32_run(tiny_dirs, tmp_path_factory):
    """A tiny run folder with notebook 01's FP32 checkpoint (firesmoke train --stage fp32)."""
    runs_dir = tmp_path_factory.mktemp("sweep_runs")
    run(command("train", {**tiny_dirs, "RUNS_DIR": str(runs_dir)}, "--stage", "fp32"))
    return runs_dir


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
def test_two_workers_run_every_grid_point_once(fp32_run, tiny_dirs):
    settings = sweep_settings(tiny_dirs, fp32_run)
    done = run(command("sweep", settings, "--grid", "test", "--jobs", "2", "--json"))
    payload = json.loads(done.stdout[done.stdout.index('{\n  "study"') :])
    study = study_of(fp32_run)
    assert payload["study"] == study.study_name
    assert sorted(row["trial"] for row in payload["trials"]) == [t.number for t in study.trials]
    by_label = complete_by_label(study)
    assert set(by_label) == LABELS
    assert all(len(numbers) == 1 for numbers in by_label.values()), by_label
    done = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len({t.user_attrs["worker"] for t in done}) == 2, "both workers ran trials"
    for trial in done:
        attrs = trial.user_attrs
        assert 0.0 <= attrs["metric"] <= 1.0 and attrs["fps"] > 0
        assert Path(attrs["checkpoint"]).is_file() and Path(attrs["qonnx"]).is_file()
        assert Path(attrs["folder"]).parent == fp32_run / "tiny" / "sweep" / study.study_name
        assert attrs["fits"] == (trial.system_attrs["constraints:over_budget"] <= 0)
        assert trial.values == [attrs["metric"], attrs["fps"]]
        print(f"trial {trial.number} {attrs['label']}: {attrs['wall_s']} s, worker "
              f"{attrs['worker']}")  # fmt: skip
    takes_recommendation(study, settings)


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
def test_killed_sweep_resumes(fp32_run, tiny_dirs):
    grid = GRID[:2]
    settings = sweep_settings(tiny_dirs, fp32_run, grid, SWEEP_HEARTBEAT_S=1, SWEEP_GRACE_S=2)
    settings["SWEEP_GRIDS"] = {"classify": {"resume": grid}}
    line = command("sweep", settings, "--grid", "resume")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(line, env=env, cwd=REPO, start_new_session=True,
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

    run(line)
    study = study_of(fp32_run, "resume")
    trials = {t.number: t for t in study.get_trials()}
    assert trials[finished.number].state == optuna.trial.TrialState.COMPLETE
    assert checkpoint.stat().st_mtime_ns == written, "the finished trial was not rerun"
    assert trials[killed.number].state == optuna.trial.TrialState.FAIL
    reruns = [t for t in trials.values() if t.system_attrs.get("failed_trial") == killed.number]
    assert len(reruns) == 1 and reruns[0].state == optuna.trial.TrialState.COMPLETE
    assert reruns[0].params == killed.params
    assert {k: len(v) for k, v in complete_by_label(study).items()} == {label(p): 1 for p in grid}


def killable(runs_dir):
    """The study once its first trial finished and its second runs, else None."""
    try:
        study = study_of(runs_dir, "resume")
    except KeyError:  # not created yet
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
        import types

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
    overrides = sweep_settings(tiny_dirs, broken, GRID[:2])
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
