"""Notebook 02's start from FP32 weights: a mismatch or a missing file is an error, not a quiet
partial or random start, unless a documented flag says so (issue 11)."""

import types

import pytest
import torch

import config
from modules.run_paths import run_paths
from modules.stages import train_brevitas
from modules.tasks.classify import model as classify_model
from modules.training.checkpoints import save_checkpoint


@pytest.fixture
def cfg(tiny_dirs, tmp_path):
    try:
        values = config.apply("tiny", **{**tiny_dirs, "RUNS_DIR": str(tmp_path)})
    finally:
        config.apply()
    return types.SimpleNamespace(**values)


def _save_fp32(cfg, width_mult):
    model = classify_model.build_fp32_model(
        types.SimpleNamespace(**{**vars(cfg), "WIDTH_MULT": width_mult})
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    paths = run_paths(cfg).ensure()
    save_checkpoint(paths.checkpoint("fp32"), model, optimizer, scheduler, 0, {}, {}, "fp32")
    return model, paths


def _quant_model(cfg):
    return classify_model.build_configured_model(
        types.SimpleNamespace(**{**vars(cfg), "BREVITAS_MODEL": True})
    )


def test_matching_checkpoint_copies_every_tensor(cfg):
    fp32, paths = _save_fp32(cfg, cfg.WIDTH_MULT)
    model = _quant_model(cfg)
    summary = train_brevitas.initialise_from_fp32(cfg, model, paths)
    assert summary["tensors copied"] == len(fp32.state_dict())
    assert summary["FP32 tensors not used"] == "none"
    for name, tensor in fp32.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_checkpoint_of_another_width_is_refused_unless_allowed(cfg):
    _, paths = _save_fp32(cfg, 0.5)
    model = _quant_model(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="QAT_INIT_ALLOW_PARTIAL") as error:
        train_brevitas.initialise_from_fp32(cfg, model, paths)
    assert "WIDTH_MULT" in str(error.value) and str(paths.checkpoint("fp32")) in str(error.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    cfg.QAT_INIT_ALLOW_PARTIAL = True
    summary = train_brevitas.initialise_from_fp32(cfg, model, paths)
    assert 0 < summary["tensors copied"] < len(before)
    assert summary["FP32 tensors not used"] != "none"


def test_missing_fp32_checkpoint_is_an_error_unless_disabled(cfg):
    paths = run_paths(cfg).ensure()
    model = _quant_model(cfg)
    with pytest.raises(FileNotFoundError, match="QAT_INIT_FROM_FP32 = False") as error:
        train_brevitas.initialise_from_fp32(cfg, model, paths)
    assert str(paths.checkpoint("fp32")) in str(error.value)
    cfg.QAT_INIT_FROM_FP32 = False
    summary = train_brevitas.initialise_from_fp32(cfg, model, paths)
    assert summary["initialised from"] == "random init"
