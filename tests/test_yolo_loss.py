"""YOLOv5-style loss (modules/training/yolo_loss.py), against the host decode and on demo data."""

import math

import numpy as np
import pytest
import torch
from standin_detector import StandIn

from modules.board.detect import DetectSettings, detect
from modules.data.boxes import DetectionDataset, collate_boxes
from modules.data.datasets import build_split
from modules.training.anchors import fit_anchors
from modules.training.yolo_loss import YoloLoss, ciou, match_targets

GAINS = {"box": 0.05, "obj": 1.0, "cls": 0.5}


def test_ciou_of_identical_boxes_is_one_and_reduces_to_iou_when_centred_and_similar():
    a = torch.tensor([[5.0, 5.0, 4.0, 2.0]])
    assert ciou(a, a).item() == pytest.approx(1.0, abs=1e-6)
    b = torch.tensor([[5.0, 5.0, 2.0, 1.0]])  # same centre, same aspect: CIoU = IoU = 1/4
    assert ciou(a, b).item() == pytest.approx(0.25, abs=1e-6)
    far = torch.tensor([[50.0, 5.0, 4.0, 2.0]])
    assert ciou(a, far).item() < 0  # disjoint: the distance term pushes it below zero


def test_match_uses_neighbour_cells_and_anchor_ratio():
    # one target centred at grid (1.2, 2.7) of a 4x4 grid, 1 x 1 cells in size
    targets = torch.tensor([[0, 1, 1.2 / 4, 2.7 / 4, 0.25, 0.25]])
    anchors = torch.tensor([[1.0, 1.0], [5.0, 5.0]])  # the second is 5x too big: no match
    m = match_targets(targets, anchors, 4, 4, 4.0)
    cells = sorted(zip(m.cell_x.tolist(), m.cell_y.tolist(), strict=True))
    # own cell (1, 2); leans left (x frac 0.2) -> (0, 2); leans down (y frac 0.7) -> (1, 3)
    assert cells == [(0, 2), (1, 2), (1, 3)]
    assert set(m.anchor.tolist()) == {0} and set(m.cls.tolist()) == {1}
    own = (m.cell_x == 1) & (m.cell_y == 2)
    np.testing.assert_allclose(m.box[own][0].numpy(), [0.2, 0.7, 1.0, 1.0], atol=1e-6)


def planted_head(anchors, classes, ny, cell, anchor, cls):
    """Head logits that say: one object of `cls` at the centre of `cell`, anchor-sized."""
    head = torch.full((1, len(anchors), 5 + classes, ny, ny), -12.0)
    gx, gy = cell
    head[0, anchor, :4, gy, gx] = 0.0
    head[0, anchor, 4, gy, gx] = 12.0
    head[0, anchor, 5 + cls, gy, gx] = 12.0
    return head.reshape(1, -1, ny, ny)


def test_loss_and_host_decode_agree_on_a_perfect_prediction():
    """A head the host decodes to exactly the target box is (near) zero loss; moving the box
    or dropping the objectness raises it."""
    anchors, img_size, ny = [[16.0, 12.0], [96.0, 64.0]], 128, 4  # > 4x apart: one match
    head = planted_head(anchors, 2, ny, cell=(2, 1), anchor=1, cls=0)
    (dets,) = detect(head.numpy(), DetectSettings(anchors, img_size, 0.25, 0.45))
    x0, y0, x1, y1 = dets[0, :4] / img_size
    targets = torch.tensor([[0, 0, (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]])
    loss_fn = YoloLoss(anchors, 2, img_size, GAINS)
    best, parts = loss_fn(head, targets)
    assert parts["box"] == pytest.approx(0.0, abs=1e-5) and best.item() < 1e-3
    shifted = head.clone()
    shifted[0, 7, 1, 2] = 1.0  # x logit of anchor 1 at the target cell
    assert loss_fn(shifted, targets)[1]["box"] > 1e-3
    no_object = head.clone()
    no_object[0, 11, 1, 2] = -12.0  # its objectness
    assert loss_fn(no_object, targets)[1]["obj"] > 100 * parts["obj"]


def test_loss_without_targets_only_pushes_objectness_down():
    loss_fn = YoloLoss([[10.0, 10.0]], 2, 64, GAINS)
    head = torch.zeros(2, 7, 2, 2, requires_grad=True)
    loss, parts = loss_fn(head, torch.zeros((0, 6)))
    loss.backward()
    assert parts["box"] == parts["cls"] == 0.0 and parts["obj"] > 0
    grads = head.grad.view(2, 1, 7, 2, 2)
    assert (grads[:, :, 4] > 0).all() and (grads[:, :, [0, 1, 2, 3, 5, 6]] == 0).all()
    assert math.isfinite(loss.item())


def test_loss_falls_when_overfitting_a_few_demo_images(tiny_cfg):
    samples, _ = build_split(tiny_cfg, "train")
    samples = [s for s in samples if len(s.boxes)][:8]
    fit = fit_anchors(samples, 64, 3, seed=0, threshold=4.0)
    images, targets = collate_boxes([DetectionDataset(samples, 64)[i] for i in range(8)])
    torch.manual_seed(0)
    model, loss_fn = StandIn(3, 2), YoloLoss(fit.anchors, 2, 64, GAINS)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(40):
        loss, parts = loss_fn(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(parts)
    # objectness targets are the IoUs, which rise as the boxes improve: check the total
    total = [sum(parts.values()) for parts in history]
    assert total[-1] < 0.5 * total[0]
    assert history[-1]["box"] < 0.7 * history[0]["box"]
    assert history[-1]["cls"] < 0.5 * history[0]["cls"]
