"""How the classifier trains and is evaluated: BCE with the smoke precision weight, test metrics
with confusion matrices and PR curves, a prediction grid."""

import json

import torch

from modules.board.decisions import decide
from modules.reporting.plots import plot_confusion_matrices, plot_image_grid, plot_pr_curves
from modules.tasks.classify.data import sample_images
from modules.training.checkpoints import load_checkpoint
from modules.training.device import loader_workers
from modules.training.distributed import World
from modules.training.loss import BCELoss
from modules.training.metrics import metrics_table
from modules.training.trainer import Trainer, evaluate, make_loader, placement


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
    place = placement(cfg, World())  # this process alone: rank 0 after a torchrun training
    loader = make_loader(data["test"].dataset, cfg.BATCH_SIZE, loader_workers(cfg.NUM_WORKERS))
    loss_fn = BCELoss(cfg.CLASSES, cfg.SMOKE_PRECISION_WEIGHT).to(place.device)
    model.to(place.device)
    try:
        result = evaluate(
            model, loader, loss_fn, cfg.CLASSES, cfg.DECISION_THRESHOLD, "test", place
        )
    finally:
        model.to("cpu")
    decisions = decide(result.logits, cfg.DECISION_THRESHOLD)
    plot_confusion_matrices(
        result.targets, decisions, cfg.CLASSES, paths.plot(f"{kind}_test_confusion.png")
    )
    plot_pr_curves(result.targets, result.logits, cfg.CLASSES, paths.plot(f"{kind}_test_pr.png"))
    paths.test_metrics(kind).write_text(json.dumps(result.metrics, indent=2))
    return result, metrics_table(result.metrics, cfg.CLASSES)


def prediction_grid(cfg, model, dataset, paths, kind, count=16):
    indices, images, targets = sample_images(dataset, count)
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        model.eval()
        logits = model(batch).numpy()
    predictions = decide(logits, cfg.DECISION_THRESHOLD)
    path = paths.plot(f"{kind}_test_predictions.png")
    return plot_image_grid(images, targets, cfg.CLASSES, predictions, path)
