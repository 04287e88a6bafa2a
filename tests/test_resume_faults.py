"""Kills, changed settings and odd epoch counts around a resume (issue 11)."""

import shutil
import types

import pandas as pd
import pytest
import torch

import config
from modules.run_paths import run_paths
from modules.tasks.classify import data as classify_data
from modules.tasks.classify import model as classify_model
from modules.tasks.classify import training as classify_training
from modules.training.distributed import World, train_sampler
from modules.training.trainer import make_loader


@pytest.fixture(scope="module")
def trained(tiny_dirs, tmp_path_factory):
    """A run folder after 2 epochs of the tiny profile (copied per test, trained once)."""
    runs = str(tmp_path_factory.mktemp("runs"))
    values = config.apply("tiny", **{**tiny_dirs, "RUNS_DIR": runs})
    config.apply()
    cfg = types.SimpleNamespace(**values)
    trainer = _trainer(cfg)
    trainer.fit()
    return cfg, run_paths(cfg).root


@pytest.fixture
def run(trained, tmp_path):
    """(cfg, paths) of a fresh copy of the trained run, with LOAD_MODEL set."""
    cfg, root = trained
    cfg = types.SimpleNamespace(**{**vars(cfg), "RUNS_DIR": str(tmp_path), "LOAD_MODEL": True})
    shutil.copytree(root, tmp_path / cfg.RUN_NAME)
    return cfg, run_paths(cfg)


def _trainer(cfg):
    paths = run_paths(cfg).ensure()
    data = classify_data.prepare_data(cfg)
    model = classify_model.build_fp32_model(cfg)
    return classify_training.make_trainer(cfg, model, data, paths, kind="fp32")


def test_log_emptied_by_a_kill_is_rebuilt_on_resume(run):
    cfg, paths = run
    paths.train_log("fp32").write_bytes(b"")  # killed while the last epoch rewrote it
    trainer = _trainer(cfg)  # EPOCHS reached: no epoch runs
    assert trainer.fit().shape[0] == 2
    assert list(pd.read_csv(paths.train_log("fp32"))["epoch"]) == [1, 2]


def test_stale_temp_files_are_removed_on_the_next_start(run):
    cfg, paths = run
    stale = [paths.weights / ".fp32_last.pt.x1.tmp", paths.logs / ".fp32_log.csv.x2.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    _trainer(cfg)
    assert not any(path.exists() for path in stale)


def test_resume_with_changed_settings_lists_them(run):
    cfg, _ = run
    cfg.SEED, cfg.LEARNING_RATE = 7, 0.01
    with pytest.raises(ValueError, match="RESUME_ALLOW_CHANGES") as error:
        _trainer(cfg)
    message = str(error.value)
    assert "SEED: 42 -> 7" in message and "LEARNING_RATE: 0.001 -> 0.01" in message


def test_allowed_change_reaches_the_optimizer(run):
    cfg, _ = run
    cfg.LEARNING_RATE, cfg.RESUME_ALLOW_CHANGES, cfg.EPOCHS = 0.01, ["LEARNING_RATE"], 3
    trainer = _trainer(cfg)
    assert trainer.optimizer.param_groups[0]["lr"] == 0.01
    trainer.fit()
    saved = torch.load(trainer.last_path, weights_only=True)
    assert saved["epoch"] == 2 and saved["config"]["LEARNING_RATE"] == 0.01


def test_fewer_epochs_than_the_checkpoint_stop_before_training(run):
    cfg, paths = run
    cfg.EPOCHS = 1
    before = paths.checkpoint("fp32", "last").read_bytes()
    with pytest.raises(ValueError, match="EPOCHS may only grow"):
        _trainer(cfg).fit()
    assert paths.checkpoint("fp32", "last").read_bytes() == before


def test_resume_from_another_run_folder(run):
    cfg, paths = run
    cfg.LOAD_MODEL_FILE, cfg.RUN_NAME = str(paths.checkpoint("fp32", "last")), "other"
    with pytest.raises(ValueError, match="no best checkpoint"):
        _trainer(cfg).fit()  # nothing left to train and no best here: stop with the reason
    cfg.EPOCHS = 3
    trainer = _trainer(cfg)
    history = trainer.fit()
    assert list(history["epoch"]) == [1, 2, 3] and trainer.best_path.is_file()
    assert torch.load(trainer.best_path, weights_only=True)["epoch"] == 2


def _batch_order(workers):
    dataset = torch.utils.data.TensorDataset(torch.arange(40))
    sampler = train_sampler(dataset, World(), seed=3)
    loader = make_loader(dataset, 8, workers, sampler)
    orders = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        orders.append(torch.cat([batch for (batch,) in loader]).tolist())
    return orders


def test_batch_order_is_the_same_for_any_worker_count():
    orders = _batch_order(0)
    assert orders[0] != orders[1] and sorted(orders[0]) == list(range(40))
    assert _batch_order(2) == orders
