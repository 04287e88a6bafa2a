"""The steps a training notebook calls, in order: data, model, training, test evaluation."""

import json
from dataclasses import dataclass

import numpy as np
import torch

from modules.checkpoints import load_checkpoint
from modules.datasets import FireSmokeDataset, build_split
from modules.demo_data import ensure_demo_dataset
from modules.loss import BCELoss
from modules.metrics import decisions_from_logits, metrics_table
from modules.models import build_model
from modules.plots import plot_confusion_matrices, plot_image_grid, plot_pr_curves
from modules.preprocess import load_rgb, preprocess
from modules.trainer import Trainer, evaluate, make_loader

SPLITS = ("train", "val", "test")


@dataclass
class SplitData:
    dataset: FireSmokeDataset
    report: object


def prepare_data(cfg):
    """Datasets for train (augmented), val and test; generates the demo data when needed."""
    if cfg.DATASET == "demo":
        ensure_demo_dataset(cfg)
    data = {}
    for split in SPLITS:
        samples, report = build_split(cfg, split)
        augment = split == "train" and cfg.AUGMENT
        data[split] = SplitData(FireSmokeDataset(samples, cfg.IMG_SIZE, augment, cfg.SEED), report)
    return data


def build_fp32_model(cfg):
    torch.manual_seed(cfg.SEED)  # same initial weights for the same seed
    return build_model(cfg.MODEL, len(cfg.CLASSES), cfg.WIDTH_MULT)


def make_trainer(cfg, model, data, paths, kind):
    loss_fn = BCELoss(cfg.CLASSES, cfg.SMOKE_PRECISION_WEIGHT)
    trainer = Trainer(model, loss_fn, data["train"].dataset, data["val"].dataset, cfg, paths, kind)
    if cfg.LOAD_MODEL:
        trainer.resume(cfg.LOAD_MODEL_FILE)
    return trainer


def evaluate_on_test(cfg, model, data, paths, kind, checkpoint_path=None):
    """Test metrics of `model` (loaded from `checkpoint_path` when given), with plots and a JSON
    of the metrics in the run folder. Returns (EvalResult, metrics DataFrame)."""
    if checkpoint_path is not None:
        model.load_state_dict(load_checkpoint(checkpoint_path, expected_kind=kind)["model"])
    loader = make_loader(data["test"].dataset, cfg.BATCH_SIZE, cfg.NUM_WORKERS, False, cfg.SEED)
    loss_fn = BCELoss(cfg.CLASSES, cfg.SMOKE_PRECISION_WEIGHT)
    result = evaluate(model, loader, loss_fn, cfg.CLASSES, cfg.DECISION_THRESHOLD, desc="test")
    decisions = decisions_from_logits(result.logits, cfg.DECISION_THRESHOLD)
    plot_confusion_matrices(
        result.targets, decisions, cfg.CLASSES, paths.plots / f"{kind}_test_confusion.png"
    )
    plot_pr_curves(result.targets, result.logits, cfg.CLASSES, paths.plots / f"{kind}_test_pr.png")
    (paths.logs / f"{kind}_test_metrics.json").write_text(json.dumps(result.metrics, indent=2))
    return result, metrics_table(result.metrics, cfg.CLASSES)


def sample_images(dataset, count, seed=0):
    """`count` evenly drawn images (HWC uint8 at model size) and their targets, for grids."""
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(len(dataset.samples), min(count, len(dataset.samples)), False))
    images = [
        preprocess(load_rgb(dataset.samples[i].image_path), dataset.img_size)
        .permute(1, 2, 0)
        .to(torch.uint8)
        .numpy()
        for i in indices
    ]
    targets = np.stack([dataset.samples[i].target for i in indices])
    return indices, np.stack(images), targets


def prediction_grid(cfg, model, dataset, paths, kind, count=16):
    indices, images, targets = sample_images(dataset, count)
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        model.eval()
        logits = model(batch).numpy()
    predictions = decisions_from_logits(logits, cfg.DECISION_THRESHOLD)
    path = paths.plots / f"{kind}_test_predictions.png"
    return plot_image_grid(images, targets, cfg.CLASSES, predictions, path)
