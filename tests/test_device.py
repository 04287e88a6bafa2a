"""Device, precision and worker choices, with CUDA absent (and faked where a branch needs it)."""

import pytest
import torch

from modules.run_paths import run_paths
from modules.tasks.classify import data as classify_data
from modules.tasks.classify import model as classify_model
from modules.tasks.classify import training as classify_training
from modules.training import device as dev
from modules.training.distributed import World, check_shardable


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def fake_gpus(monkeypatch, count, bf16=True):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)


def test_auto_and_cpu_resolve_to_cpu_without_cuda(no_cuda):
    assert dev.resolve_device("auto") == torch.device("cpu")
    assert dev.resolve_device("CPU") == torch.device("cpu")


@pytest.mark.parametrize("spec", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_a_clear_error(no_cuda, spec):
    with pytest.raises(RuntimeError, match="config.DEVICE.*no CUDA device.*DEVICE = 'cpu'"):
        dev.resolve_device(spec)


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "tpu:0", "", "cuda:-1"])
def test_unknown_device_string_is_a_clear_error(spec):
    with pytest.raises(ValueError, match="config.DEVICE"):
        dev.resolve_device(spec)


def test_cuda_picks_the_local_rank_and_checks_the_index(monkeypatch):
    fake_gpus(monkeypatch, 2)
    assert dev.resolve_device("auto") == torch.device("cuda", 0)
    assert dev.resolve_device("cuda", local_rank=1) == torch.device("cuda", 1)
    assert dev.resolve_device("cuda:1", local_rank=0) == torch.device("cuda", 1)
    with pytest.raises(RuntimeError, match="GPU 2 requested, 2 present"):
        dev.resolve_device("cuda:2")


def test_precision_is_mixed_only_for_fp32_training_on_cuda(monkeypatch):
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert not dev.choose_precision(cpu, amp=True, quantized=False).enabled
    fake_gpus(monkeypatch, 1, bf16=True)
    assert not dev.choose_precision(gpu, amp=True, quantized=True).enabled  # QAT stays FP32
    assert not dev.choose_precision(gpu, amp=False, quantized=False).enabled
    bf16 = dev.choose_precision(gpu, amp=True, quantized=False)
    assert bf16.dtype == torch.bfloat16 and not bf16.needs_scaler
    fake_gpus(monkeypatch, 1, bf16=False)
    fp16 = dev.choose_precision(gpu, amp=True, quantized=False)
    assert fp16.dtype == torch.float16 and fp16.needs_scaler


def test_channels_last_and_workers_settings(monkeypatch):
    assert dev.use_channels_last("auto", torch.device("cpu")) is False
    assert dev.use_channels_last("auto", torch.device("cuda", 0)) is True
    with pytest.raises(ValueError, match="CHANNELS_LAST"):
        dev.use_channels_last("yes", torch.device("cpu"))
    monkeypatch.setattr(dev, "cores_per_rank", lambda world_size=1: 2)
    assert dev.loader_workers("auto") == 0
    monkeypatch.setattr(dev, "cores_per_rank", lambda world_size=1: 16)
    assert dev.loader_workers("auto") == 4 and dev.loader_workers(3) == 3
    for bad in (-1, "two", True):
        with pytest.raises(ValueError, match="NUM_WORKERS"):
            dev.loader_workers(bad)


def test_world_larger_than_dataset_or_uneven_batch_is_refused():
    with pytest.raises(ValueError, match="world size 4 exceeds the 3 train images"):
        check_shardable(3, 16, World(rank=0, size=4))
    with pytest.raises(ValueError, match="BATCH_SIZE = 15 does not divide over 2 ranks"):
        check_shardable(48, 15, World(rank=0, size=2))
    check_shardable(48, 16, World(rank=1, size=2))


def test_trainer_refuses_cuda_when_absent(tiny_cfg, no_cuda):
    tiny_cfg.DEVICE = "cuda"
    data = classify_data.prepare_data(tiny_cfg)
    model = classify_model.build_fp32_model(tiny_cfg)
    with pytest.raises(RuntimeError, match="config.DEVICE = 'cuda'"):
        classify_training.make_trainer(tiny_cfg, model, data, run_paths(tiny_cfg), "fp32")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_one_epoch_on_the_gpu_with_amp(tiny_cfg):
    tiny_cfg.DEVICE, tiny_cfg.AMP, tiny_cfg.EPOCHS, tiny_cfg.RUN_NAME = "cuda", True, 1, "gpu"
    paths = run_paths(tiny_cfg).ensure()
    data = classify_data.prepare_data(tiny_cfg)
    model = classify_model.build_fp32_model(tiny_cfg)
    trainer = classify_training.make_trainer(tiny_cfg, model, data, paths, "fp32")
    assert trainer.place.device.type == "cuda" and trainer.place.precision.enabled
    history = trainer.fit()
    assert len(history) == 1 and history["train_loss"].notna().all()
    assert next(model.parameters()).device.type == "cpu"  # back for export and plots
    result, _ = classify_training.evaluate_on_test(tiny_cfg, model, data, paths, "fp32")
    assert 0.0 <= result.metrics["mean_f1"] <= 1.0
