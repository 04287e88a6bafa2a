"""The Optuna study of a sweep: its storage (SQLite in the run folder, or any RDB URL), the
sampler (GridSampler for a grid, NSGA-II for --search), the worker loop and worker processes.

Nothing lost, nothing repeated: trials live in the storage; a worker writes a heartbeat, and a
trial whose worker died (no heartbeat for grace_s) is marked failed and queued again by Optuna's
RetryHeartbeatStaleTrialCallback, as is a trial stopped by Ctrl-C; a finished or crashed trial
is never rerun. Several workers (processes here, or machines on a shared PostgreSQL/MySQL
storage) draw from the same study.
"""

import contextlib
import multiprocessing
import os
import socket
import time
import warnings
from dataclasses import dataclass

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import TrialState

from modules.sweep.space import label

OBJECTIVES = ("metric", "fps")  # both maximised
DIRECTIONS = ("maximize", "maximize")


class SweepStorageError(RuntimeError):
    """The storage URL cannot be opened (server down, no driver, bad path)."""


@dataclass(frozen=True)
class SweepSpec:
    """What a worker needs to join a study (picklable: workers are spawned processes)."""

    study_name: str
    storage_url: str
    points: tuple = ()  # grid: the points (dicts of config overrides)
    search_space: tuple = ()  # --search: ((key, (values...)), ...)
    n_trials: int = 0  # --search: how many trials the study holds when done
    seed: int = 0
    heartbeat_s: int = 10
    grace_s: int = 60
    max_retry: int = 2

    @property
    def is_grid(self):
        return bool(self.points)

    def labels(self):
        return [label(point) for point in self.points]


@contextlib.contextmanager
def heartbeat_api():
    """Heartbeats and their retry callback are marked experimental; resuming needs them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def retry_callback(spec):
    with heartbeat_api():
        return RetryHeartbeatStaleTrialCallback(spec.max_retry)


def open_storage(spec):
    """The RDB storage with heartbeats; a URL that cannot be opened is a SweepStorageError."""
    try:
        with heartbeat_api():
            return RDBStorage(
                spec.storage_url,
                heartbeat_interval=spec.heartbeat_s,
                grace_period=spec.grace_s,
                heartbeat_stale_trial_callback=retry_callback(spec),
                engine_kwargs={"pool_pre_ping": True},
            )
    except Exception as error:  # sqlalchemy's OperationalError, a missing driver, a bad URL
        raise SweepStorageError(
            f"cannot open the sweep storage {spec.storage_url!r} (--storage / "
            f"config.SWEEP_STORAGE): {type(error).__name__}: {str(error).splitlines()[0]}"
        ) from None


def sampler_for(spec):
    if spec.is_grid:
        return optuna.samplers.GridSampler({"point": spec.labels()}, seed=spec.seed)
    return optuna.samplers.NSGAIISampler(seed=spec.seed)


def open_study(spec):
    return optuna.create_study(
        study_name=spec.study_name,
        storage=open_storage(spec),
        sampler=sampler_for(spec),
        directions=list(DIRECTIONS),
        load_if_exists=True,
    )


def suggest_point(trial, spec):
    """The config overrides of this trial: a grid point, or one drawn from the search space."""
    if spec.is_grid:
        by_label = dict(zip(spec.labels(), spec.points, strict=True))
        return dict(by_label[trial.suggest_categorical("point", list(by_label))])
    return {key: trial.suggest_categorical(key, list(values)) for key, values in spec.search_space}


def retried_numbers(trials):
    """Numbers of trials that another trial re-runs (Optuna's retry history)."""
    return {n for t in trials for n in t.system_attrs.get("retry_history", [])}


def requeue_interrupted(study, spec):
    """A trial stopped by Ctrl-C (failed, no crash recorded, not yet retried) is queued again
    like a heartbeat-stale one; the callback keeps to max_retry."""
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    retry = retry_callback(spec)
    for trial in trials:
        crashed = "error" in trial.user_attrs
        if trial.state == TrialState.FAIL and not crashed and trial.number not in retried:
            retry(study, trial)


@dataclass
class Progress:
    waiting: int
    running: int
    to_start: int  # grid points never started, or search trials still to draw

    @property
    def done(self):
        return not (self.waiting or self.running or self.to_start)


def progress(study, spec):
    """What is left: a trial re-run by a retry no longer counts, its retry does."""
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    counted = [t for t in trials if t.number not in retried]
    waiting = sum(t.state == TrialState.WAITING for t in counted)
    running = sum(t.state == TrialState.RUNNING for t in counted)
    if spec.is_grid:
        started = {t.params.get("point") for t in counted}
        to_start = len(set(spec.labels()) - started)
    else:
        to_start = max(0, spec.n_trials - len(counted))
    return Progress(waiting, running, to_start)


def same_point_trial(trial, point):
    """Number of a finished trial of this point, or of an earlier one running it, else None
    (two workers can draw the same grid point in the same instant; the later one then stops
    at once, the earlier one runs it)."""
    states = (TrialState.RUNNING, TrialState.COMPLETE)
    for other in trial.study.get_trials(deepcopy=False, states=states):
        earlier = other.number < trial.number or other.state == TrialState.COMPLETE
        if other.number != trial.number and earlier and other.user_attrs.get("point") == point:
            return other.number
    return None


def objective_for(spec, run_point):
    """The Optuna objective around `run_point(number, point) -> record`: the record's fields
    become user attributes, its constraints Optuna constraints (<= 0: feasible), and a crash
    is recorded with its error before Optuna marks the trial failed."""

    def objective(trial):
        point = suggest_point(trial, spec)
        trial.set_user_attr("point", point)
        trial.set_user_attr("label", label(point))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        twin = same_point_trial(trial, point)
        if twin is not None:
            raise optuna.TrialPruned(f"trial {twin} runs the same point")
        started = time.perf_counter()
        try:
            record = run_point(trial.number, point)
        except Exception as error:
            trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:2000])
            trial.set_user_attr("wall_s", round(time.perf_counter() - started, 1))
            raise
        record["wall_s"] = round(time.perf_counter() - started, 1)
        for key, value in record.items():
            if key != "constraints":
                trial.set_user_attr(key, value)
        for key, value in record["constraints"].items():
            trial.set_constraint(key, value)
        return tuple(record[name] for name in OBJECTIVES)

    return objective


def run_worker(spec, run_point, parent=None):
    """Draw and run trials until the study has nothing left to start; while other workers'
    trials run, wait for them (a dead worker's trial comes back here after grace_s). A worker
    spawned by `run_workers` (`parent`: its pid) draws no more trials once that is gone."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(spec)
    objective = objective_for(spec, run_point)
    told = False
    while True:
        with heartbeat_api():
            fail_stale_trials(study)  # heartbeat-stale trials: failed, and queued again
        requeue_interrupted(study, spec)
        state = progress(study, spec)
        if state.done or (parent is not None and os.getppid() != parent):
            return study
        if state.waiting or state.to_start:
            study.optimize(objective, n_trials=1, catch=(Exception,))
            told = False
            continue
        if not told:
            print(f"waiting for {state.running} running trial(s): another worker's, or one "
                  f"whose worker died (run again after {spec.grace_s} s without a heartbeat)",
                  flush=True)  # fmt: skip
            told = True
        time.sleep(min(spec.heartbeat_s, spec.grace_s))


def run_workers(jobs, target, args):
    """`target(*args)` in `jobs` spawned processes (one GPU each when there are GPUs; on CPU
    they share the cores). Returns their exit codes."""
    import torch

    gpus = torch.cuda.device_count()
    context = multiprocessing.get_context("spawn")
    workers = []
    for index in range(jobs):
        env = {"CUDA_VISIBLE_DEVICES": str(index % gpus)} if gpus else {}
        env["SWEEP_WORKER_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
        # not daemonic: a worker's data loaders start processes of their own
        process = context.Process(target=_with_env, args=(env, target, (*args, os.getpid())))
        process.start()
        workers.append(process)
    for process in workers:
        process.join()
    return [process.exitcode for process in workers]


def _with_env(env, target, args):
    os.environ.update(env)
    if "SWEEP_WORKER_THREADS" in env:
        import torch

        torch.set_num_threads(int(env["SWEEP_WORKER_THREADS"]))
    target(*args)
