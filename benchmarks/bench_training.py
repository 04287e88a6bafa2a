"""Training throughput (images/s): end to end (cached demo images, augmentation, loader) against
model only (the same batches as ready-made tensors), FP32 and Brevitas QAT, measured in one run.

    python benchmarks/bench_training.py [--sizes 96 224] [--batch 32] [--steps 6] [--rounds 3]
                                        [--uncached]

Both figures come from the trainer's own `train_one_epoch` (forward, backward, Adam step) with
the worker count and torch threads the trainer picks (config.NUM_WORKERS = "auto"); only what
feeds it differs. The goal is end to end >= 80 % of model only. `--uncached` adds the previous
input pipeline for comparison (decode every image, two loader workers forked per epoch).
"""

import argparse
import time

import numpy as np
import torch

import config
from modules.data.datasets import FireSmokeDataset, build_split
from modules.data.image_cache import CacheSettings
from modules.models.architecture import build_model
from modules.models.quant_layers import BitWidths, build_quant_model
from modules.training.device import loader_workers, set_compute_threads
from modules.training.loss import BCELoss
from modules.training.trainer import make_loader, train_one_epoch


def timed_epochs(model, feeds, rounds):
    """Images/s of `train_one_epoch` over each feed (a loader or a list of tensors), the feeds
    taking turns for `rounds` rounds, each round starting with the next feed, so that a load
    change on the machine (or a model whose step cost drifts, like Brevitas collecting
    statistics in its first steps) hits them alike.
    Returns per feed the median images per wall second and per CPU second of this process,
    each with its median ratio to the first feed. On a busy machine wall time measures the
    other users too; CPU time counts only this process's work (loader work included when it
    runs here, i.e. without loader workers)."""
    loss_fn = BCELoss(config.CLASSES, config.SMOKE_PRECISION_WEIGHT)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_one_epoch(model, [next(iter(feeds[0]))], loss_fn, optimizer)  # warm-up step
    speeds = []
    for start in range(rounds):
        row = [None] * len(feeds)
        for i in np.roll(np.arange(len(feeds)), -start):
            wall, cpu = time.perf_counter(), time.process_time()
            images = train_one_epoch_counting(model, feeds[i], loss_fn, optimizer)
            row[i] = [images / (time.perf_counter() - wall), images / (time.process_time() - cpu)]
        speeds.append(row)
    speeds = np.array(speeds)  # (round, feed, wall|cpu)
    return np.median(speeds, axis=0), np.median(speeds / speeds[:, :1], axis=0)


def train_one_epoch_counting(model, batches, loss_fn, optimizer):
    counted = []

    def counting():
        for images, target in batches:
            counted.append(len(target))
            yield images, target

    train_one_epoch(model, counting(), loss_fn, optimizer)
    return sum(counted)


def train_loader(samples, size, batch, cache, workers):
    dataset = FireSmokeDataset(samples, size, augment=True, seed=0)
    if cache:
        started = time.perf_counter()
        dataset.use_cache(CacheSettings("memory", None), "bench")
        seconds = time.perf_counter() - started
        print(f"  cache of {len(samples)} images at {size}px: {seconds:.1f} s")
    return make_loader(dataset, batch, workers)


def build(kind):
    torch.manual_seed(0)
    if kind == "FP32":
        return build_model(config.MODEL, len(config.CLASSES))
    bits = BitWidths.from_config(config)
    return build_quant_model(config.MODEL, len(config.CLASSES), 1.0, bits)


def measure(size, batch, steps, rounds, uncached):
    samples, _ = build_split(config, "train")
    samples = samples[: batch * steps]
    workers = loader_workers(config.NUM_WORKERS)
    threads = set_compute_threads(workers)
    print(f"{size}x{size}, batch {batch}, {steps} steps: {workers} workers, {threads} threads")
    loader = train_loader(samples, size, batch, True, workers)
    tensors = [(images.clone(), target.clone()) for images, target in loader]
    feeds = {"model only": tensors, "end to end": loader}
    if uncached:  # decode per item, two persistent loader workers beside torch's threads
        feeds["previous pipeline"] = train_loader(samples, size, batch, False, 2)
    for kind in ("FP32", "QAT"):
        speeds, ratios = timed_epochs(build(kind), list(feeds.values()), rounds)
        print(f"  {kind} (median of {rounds} interleaved rounds), images/s and % of model only:")
        for name, (wall, cpu), (wall_ratio, cpu_ratio) in zip(feeds, speeds, ratios, strict=True):
            cpu_text = f"{cpu:7.1f} per CPU s {100 * cpu_ratio:6.1f} %"
            if name == "previous pipeline":
                cpu_text = "(work in loader processes: CPU time not comparable)"
            print(f"    {name:18s} {wall:7.1f} per wall s {100 * wall_ratio:6.1f} %  {cpu_text}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 224])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--uncached", action="store_true")
    args = parser.parse_args()
    config.apply("demo")
    print(f"torch {torch.__version__}, demo data set ({config.DEMO_DIR})")
    for size in args.sizes:
        measure(size, args.batch, args.steps, args.rounds, args.uncached)


if __name__ == "__main__":
    main()
