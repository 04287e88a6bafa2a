"""Each task's model can learn: it overfits 16 demo images, scored on those images in eval mode.

The detector (the configured Darknet cfg) must reach mAP@0.5 >= 0.8: this checks the loss, its
target assignment, the anchors, the letterbox and the host decode together (a wrong sign or a
swapped box coordinate anywhere keeps it low). The classifier must reach mean F1 >= 0.9: loss,
targets, class order and the decision rule. The tiny profile's 2 epochs (6 optimizer steps on
48 images) cannot show learning on held-out images; these tests can, in about a minute each."""

import types

import pytest
import torch

import config
from modules.board.decisions import decide
from modules.data.boxes import collate_boxes
from modules.tasks.classify import ClassifyTask
from modules.tasks.classify.data import stack_dataset
from modules.tasks.detect import DetectTask, detector_optimizer, model_anchors
from modules.tasks.detect.settings import eval_settings
from modules.tasks.detect.training import detection_loss, evaluate_detector
from modules.training.loss import BCELoss
from modules.training.metrics import classification_metrics
from modules.training.trainer import make_loader

IMAGES = 16
DETECT_STEPS, MIN_MAP50 = 200, 0.8  # measured: mAP@0.5 0.79 at 150 steps, 0.97 at 200
CLASSIFY_STEPS, MIN_MEAN_F1 = 100, 0.9  # measured: mean F1 0.17 at 50 steps, 1.0 from 75


def tiny_cfg_without_augmentation(tiny_dirs, **overrides):
    try:
        return types.SimpleNamespace(
            **config.apply("tiny", AUGMENT=False, **tiny_dirs, **overrides)
        )
    finally:
        config.apply()


def fit_one_batch(model, loss_fn, optimizer, inputs, targets, steps):
    """`steps` optimizer steps on the same batch (the model in training mode)."""
    model.train()
    for _ in range(steps):
        loss, _ = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.mark.slow
def test_classifier_overfits_sixteen_images(tiny_dirs):
    cfg = tiny_cfg_without_augmentation(tiny_dirs)
    task = ClassifyTask()
    images, targets = stack_dataset(task.prepare_data(cfg)["train"].dataset, IMAGES)
    assert targets.sum(axis=0).min() >= 2, "both classes should be present to learn"
    model = task.build_model(cfg)
    loss_fn = BCELoss(cfg.CLASSES, cfg.SMOKE_PRECISION_WEIGHT)
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    x, y = torch.from_numpy(images), torch.from_numpy(targets)
    fit_one_batch(model, loss_fn, optimizer, x, y, CLASSIFY_STEPS)
    with torch.no_grad():
        logits = model.eval()(x).numpy()
    decisions = decide(logits, cfg.DECISION_THRESHOLD)
    metrics = classification_metrics(targets, decisions, cfg.CLASSES)
    assert metrics["mean_f1"] >= MIN_MEAN_F1, metrics


@pytest.mark.slow
def test_detector_overfits_sixteen_images(tiny_dirs):
    cfg = tiny_cfg_without_augmentation(tiny_dirs, TASK="detect", IMG_SIZE=64)
    task = DetectTask()
    train = task.prepare_data(cfg)["train"].dataset
    subset = torch.utils.data.Subset(train, range(IMAGES))
    images, targets = collate_boxes([subset[i] for i in range(IMAGES)])
    assert len(targets) >= 4, "the 16 images should hold boxes to learn"

    model = task.build_model(cfg)
    anchors = model_anchors(model)
    loss_fn = detection_loss(cfg, anchors)
    optimizer = detector_optimizer(model, "adam", 3e-3, 0.937, 0.0)
    fit_one_batch(model, loss_fn, optimizer, images, targets, DETECT_STEPS)

    loader = make_loader(subset, IMAGES, 0, collate_fn=collate_boxes)
    result = evaluate_detector(model, loader, loss_fn, eval_settings(cfg, anchors), cfg.CLASSES)
    assert result.metrics["map50"] >= MIN_MAP50, result.metrics
