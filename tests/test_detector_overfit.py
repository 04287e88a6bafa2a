"""The detector can learn: the configured Darknet detector overfits 16 demo images to mAP@0.5
>= 0.8 on those images. This checks the loss, its target assignment, the anchors, the letterbox
and the host decode together: a wrong sign or a swapped box coordinate anywhere keeps it low."""

import types

import pytest
import torch

import config
from modules.data.boxes import collate_boxes
from modules.tasks.detect import DetectTask, detector_optimizer, model_anchors
from modules.tasks.detect.settings import eval_settings
from modules.tasks.detect.training import detection_loss, evaluate_detector
from modules.training.trainer import make_loader

IMAGES, STEPS, MIN_MAP50 = 16, 300, 0.8


@pytest.mark.slow
def test_detector_overfits_sixteen_images(tiny_dirs):
    try:
        values = config.apply("tiny", TASK="detect", IMG_SIZE=64, AUGMENT=False, **tiny_dirs)
    finally:
        config.apply()
    cfg = types.SimpleNamespace(**values)
    task = DetectTask()
    train = task.prepare_data(cfg)["train"].dataset
    subset = torch.utils.data.Subset(train, range(IMAGES))
    images, targets = collate_boxes([subset[i] for i in range(IMAGES)])
    assert len(targets) >= 4, "the 16 images should hold boxes to learn"

    model = task.build_model(cfg)
    anchors = model_anchors(model)
    loss_fn = detection_loss(cfg, anchors)
    optimizer = detector_optimizer(model, "adam", 3e-3, 0.937, 0.0)
    model.train()
    for _ in range(STEPS):
        loss, _ = loss_fn(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    loader = make_loader(subset, IMAGES, 0, collate_fn=collate_boxes)
    result = evaluate_detector(model, loader, loss_fn, eval_settings(cfg, anchors), cfg.CLASSES)
    assert result.metrics["map50"] >= MIN_MAP50, result.metrics
