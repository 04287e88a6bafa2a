import random
import subprocess
import sys
import types

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


def test_empty_and_truncated_checkpoints_name_the_file(tmp_path):
    model, optimizer, scheduler = _parts()
    path = tmp_path / "last.pt"
    save_checkpoint(path, model, optimizer, scheduler, 1, {}, {}, "fp32")
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="truncated") as error:
        load_checkpoint(path)
    assert str(path) in str(error.value)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"last\.pt is empty"):
        load_checkpoint(path)


class _Payload:
    def __reduce__(self):
        return (print, ("this ran on load",))


def test_checkpoint_that_would_run_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "x": _Payload()}, path)
    with pytest.raises(ValueError, match="refused") as error:
        load_checkpoint(path)
    assert str(path) in str(error.value)
    assert "this ran on load" not in capsys.readouterr().out


FILE_SIZE_LIMIT_SCRIPT = """
import resource, signal, sys, torch
from modules.training.checkpoints import atomic_torch_save
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))
try:
    atomic_torch_save({"w": torch.zeros(100_000)}, sys.argv[1])
except OSError as error:
    print(error)
"""


def test_file_size_limit_gives_an_error_naming_file_and_cause(tmp_path):
    target = tmp_path / "big.pt"
    out = subprocess.run(
        [sys.executable, "-c", FILE_SIZE_LIMIT_SCRIPT, str(target)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert f"could not write {target}" in out and "file-size limit" in out, out
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temp file


def test_full_disk_is_named_as_the_cause(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints.shutil, "disk_usage", lambda _: types.SimpleNamespace(free=0))
    error = RuntimeError("[enforce fail at inline_container.cc] unexpected pos 510848 vs 510740")
    cause = checkpoints.write_failure_cause(tmp_path / "x.pt", 510_848, error)
    assert cause.startswith("the disk is full, 0 bytes free") and "unexpected pos" in cause
