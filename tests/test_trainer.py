import numpy as np
import pandas as pd
import torch

from modules.run_paths import run_paths
from modules.tasks.classify import data as classify_data
from modules.tasks.classify import model as classify_model
from modules.tasks.classify import training as classify_training


def _trainer(cfg, run_name):
    cfg.RUN_NAME = run_name
    paths = run_paths(cfg).ensure()
    data = classify_data.prepare_data(cfg)
    model = classify_model.build_fp32_model(cfg)
    return classify_training.make_trainer(cfg, model, data, paths, kind="fp32"), model


def test_resume_after_kill_ends_like_uninterrupted_run(tiny_cfg):
    tiny_cfg.EPOCHS = 3
    full, full_model = _trainer(tiny_cfg, "uninterrupted")
    full_history = full.fit()

    first, _ = _trainer(tiny_cfg, "killed")
    first.fit(stop_after=1)  # the process dies after epoch 1's checkpoint
    torch.manual_seed(12345)  # whatever ran in between must not matter
    np.random.seed(54321)
    tiny_cfg.LOAD_MODEL = True
    resumed, resumed_model = _trainer(tiny_cfg, "killed")
    assert resumed.start_epoch == 1
    resumed_history = resumed.fit()

    pd.testing.assert_frame_equal(full_history, resumed_history, check_exact=True)
    for name, tensor in full_model.state_dict().items():
        assert torch.equal(tensor, resumed_model.state_dict()[name]), name
    logged = pd.read_csv(resumed.log_path)
    assert list(logged["epoch"]) == [1, 2, 3]


def test_training_learns_and_keeps_best_checkpoint(tiny_cfg):
    tiny_cfg.EPOCHS = 4
    trainer, _ = _trainer(tiny_cfg, "best")
    history = trainer.fit()
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0], history
    best = torch.load(trainer.best_path, weights_only=True)
    assert best["metrics"]["last"]["val_mean_f1"] == history["val_mean_f1"].max()
    assert best["config"]["RUN_NAME"] == "best" and best["kind"] == "fp32"
