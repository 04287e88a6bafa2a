"""The classifier's data: multi-label [smoke, fire] targets per image, decoded once into the
image cache (config.IMAGE_CACHE)."""

import numpy as np
import torch

from modules.data.datasets import SPLITS, FireSmokeDataset, build_split
from modules.data.image_cache import CacheSettings
from modules.tasks.base import SplitData


def prepare_data(cfg):
    """Datasets for train (augmented), val and test; the demo data is generated on first use."""
    data, cache = {}, CacheSettings.from_config(cfg)
    for split in SPLITS:
        samples, report = build_split(cfg, split)
        augment = split == "train" and cfg.AUGMENT
        dataset = FireSmokeDataset(samples, cfg.IMG_SIZE, augment, cfg.SEED)
        data[split] = SplitData(dataset.use_cache(cache, f"{cfg.DATASET}_{split}"), report)
    return data


def sample_images(dataset, count, seed=0):
    """`count` evenly drawn images (HWC uint8 at model size) and their targets, for grids."""
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(len(dataset.samples), min(count, len(dataset.samples)), False))
    images = [np.array(dataset.image(i)) for i in indices]
    targets = np.stack([dataset.samples[i].target for i in indices])
    return indices, np.stack(images), targets


def stack_dataset(dataset, limit=None):
    """Un-augmented images (N,3,H,W float 0..255) and targets of a dataset."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    pairs = [dataset[i] for i in range(count)]
    images = torch.stack([p[0] for p in pairs]).numpy()
    targets = torch.stack([p[1] for p in pairs]).numpy()
    return images, targets
