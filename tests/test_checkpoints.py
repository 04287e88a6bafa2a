import random

import numpy as np
import pytest
import torch

from modules.training import checkpoints
from modules.training.checkpoints import (
    load_checkpoint,
    restore_rng_states,
    rng_states,
    save_checkpoint,
)


def _parts():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    return model, optimizer, scheduler


def test_roundtrip_with_weights_only_and_kind_check(tmp_path):
    model, optimizer, scheduler = _parts()
    path = tmp_path / "w" / "last.pt"
    save_checkpoint(path, model, optimizer, scheduler, 4, {"f1": 0.5}, {"EPOCHS": 9}, "fp32")
    loaded = load_checkpoint(path, expected_kind="fp32")
    assert loaded["epoch"] == 4 and loaded["config"] == {"EPOCHS": 9}
    assert torch.equal(loaded["model"]["weight"], model.weight)
    with pytest.raises(ValueError, match="BREVITAS_MODEL"):
        load_checkpoint(path, expected_kind="brevitas-w4a4")


def test_missing_checkpoint_names_path_and_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="LOAD_MODEL_FILE") as error:
        load_checkpoint(tmp_path / "nothing.pt")
    assert "nothing.pt" in str(error.value)


def test_rng_states_restore_all_generators():
    states = rng_states()
    before = (torch.rand(3), random.random(), np.random.rand(3))
    restore_rng_states(states)
    after = (torch.rand(3), random.random(), np.random.rand(3))
    assert torch.equal(before[0], after[0]) and before[1] == after[1]
    assert np.array_equal(before[2], after[2])


def test_kill_during_write_keeps_previous_file(tmp_path, monkeypatch):
    model, optimizer, scheduler = _parts()
    path = tmp_path / "last.pt"
    save_checkpoint(path, model, optimizer, scheduler, 1, {}, {}, "fp32")
    real_save = torch.save

    def dying_save(obj, handle):
        real_save({"partial": torch.zeros(1000)}, handle)  # half a file on disk...
        raise KeyboardInterrupt  # ...then the process is interrupted

    monkeypatch.setattr(checkpoints.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, optimizer, scheduler, 2, {}, {}, "fp32")
    monkeypatch.setattr(checkpoints.torch, "save", real_save)
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind
