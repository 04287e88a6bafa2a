"""Where torch runs: the device from config.DEVICE, mixed precision, memory layout, and the
thread/worker split that keeps loader processes and the model off each other's cores."""

import contextlib
import os
import re
from dataclasses import dataclass

import cv2
import torch

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


def resolve_device(spec, local_rank=None):
    """config.DEVICE -> torch.device. "auto" is CUDA when present; under torchrun a bare "cuda"
    means this rank's GPU (LOCAL_RANK)."""
    text = str(spec).strip().lower()
    if not DEVICE_PATTERN.match(text):
        raise ValueError(f"config.DEVICE = {spec!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"config.DEVICE = {spec!r} but this torch sees no CUDA device "
            f"(torch {torch.__version__}, cuda build {torch.version.cuda}); set DEVICE = 'cpu'"
        )
    index = int(text.split(":")[1]) if ":" in text else (local_rank or 0)
    if index >= torch.cuda.device_count():
        raise RuntimeError(
            f"config.DEVICE = {spec!r}: GPU {index} requested, {torch.cuda.device_count()} present"
        )
    return torch.device("cuda", index)


@dataclass(frozen=True)
class Precision:
    """Autocast settings for a training step; disabled on CPU and for quantized models."""

    enabled: bool
    dtype: torch.dtype = torch.float32
    device_type: str = "cpu"

    @property
    def needs_scaler(self):
        return self.enabled and self.dtype == torch.float16

    def autocast(self):
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def choose_precision(device, amp, quantized):
    """bf16 where the GPU has it, else fp16 (with a grad scaler). Brevitas QAT stays FP32: its
    quantizers compute scales and thresholds that fp16/bf16 rounding would shift."""
    if not amp or quantized or device.type != "cuda":
        return Precision(False)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return Precision(True, dtype, "cuda")


def use_channels_last(setting, device):
    """NHWC helps cuDNN (tensor cores); on CPU the depthwise convolutions get slower."""
    if setting == "auto":
        return device.type == "cuda"
    if not isinstance(setting, bool):
        raise ValueError(f"config.CHANNELS_LAST = {setting!r}; use 'auto', True or False")
    return setting


def cores_per_rank(world_size=1):
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (available or 1) // max(1, world_size))


def loader_workers(setting, world_size=1):
    """config.NUM_WORKERS ("auto" or an int) -> loader processes per rank. On few cores the
    cached images are augmented faster in the training process than they are passed between
    processes, and a worker would take a core from the model."""
    if setting == "auto":
        return 0 if cores_per_rank(world_size) <= 4 else 4
    if not isinstance(setting, int) or isinstance(setting, bool) or setting < 0:
        raise ValueError(f"config.NUM_WORKERS = {setting!r}; use 'auto' or an int >= 0")
    return setting


def set_compute_threads(workers, world_size=1):
    """Torch threads of this rank: its share of the cores, less one per loader worker."""
    threads = max(1, cores_per_rank(world_size) - workers)
    torch.set_num_threads(threads)
    return threads


def worker_init(_worker_id):
    """Loader workers augment one image at a time: one thread each, no oversubscription."""
    torch.set_num_threads(1)
    cv2.setNumThreads(0)
