"""Host-side detector decode, NMS and letterbox undo (modules/board/detect.py)."""

import numpy as np
import pytest
import torch

from modules.board.detect import (
    DetectSettings,
    Letterbox,
    box_iou,
    decode_head,
    dequantize,
    detect,
    nms,
)


def torch_decode(head, anchors, img_size):
    """Reference decode written the YOLOv5 way (view, permute, grid tensors) in torch."""
    head = torch.as_tensor(head)
    n, _, ny, nx = head.shape
    na = len(anchors)
    p = head.view(n, na, -1, ny, nx).permute(0, 1, 3, 4, 2).sigmoid()
    yv, xv = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
    grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2).float()
    stride = torch.tensor([img_size / nx, img_size / ny])
    anchor_grid = torch.tensor(anchors, dtype=torch.float32).view(1, na, 1, 1, 2)
    xy = (p[..., :2] * 2 - 0.5 + grid) * stride
    wh = (p[..., 2:4] * 2) ** 2 * anchor_grid
    xyxy = torch.cat((xy - wh / 2, xy + wh / 2), -1)
    return torch.cat((xyxy, p[..., 4:]), -1).view(n, -1, p.shape[-1]).numpy()


def random_boxes(rng, n, size=100.0):
    xy = rng.uniform(0, size * 0.8, (n, 2))
    wh = rng.uniform(2, size * 0.4, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


@pytest.mark.parametrize("shape", [(2, 3, 2, 4, 4), (1, 2, 1, 3, 5)])
def test_decode_matches_torch_reference(shape):
    n, na, classes, ny, nx = shape
    rng = np.random.default_rng(0)
    head = rng.normal(0, 3, (n, na * (5 + classes), ny, nx)).astype(np.float32)
    anchors = rng.uniform(4, 60, (na, 2)).astype(np.float32)
    got = decode_head(head, anchors, img_size=32 * ny)
    want = torch_decode(head, anchors, 32 * ny)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_decode_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match="anchors x"):
        decode_head(np.zeros((1, 20, 2, 2)), np.ones((3, 2)), 64)


def test_box_iou_known_values():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(box_iou(a, b)[0], [1.0, 50 / 150, 0.0], rtol=1e-6)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_nms_is_greedy_nms(threshold):
    """Kept boxes never overlap above the threshold, and every dropped box overlaps a kept box
    with a higher score above it: the defining properties of greedy NMS."""
    rng = np.random.default_rng(int(threshold * 10))
    boxes, scores = random_boxes(rng, 60), rng.uniform(0, 1, 60).astype(np.float32)
    keep = nms(boxes, scores, threshold)
    assert list(scores[keep]) == sorted(scores[keep], reverse=True)
    iou = box_iou(boxes, boxes)
    kept_pairs = iou[np.ix_(keep, keep)] - np.eye(len(keep))
    assert kept_pairs.max() <= threshold
    for dropped in sorted(set(range(60)) - set(keep)):
        stronger = [k for k in keep if scores[k] >= scores[dropped]]
        assert iou[dropped, stronger].max() > threshold


def head_with_objects(objects, anchors, classes, ny=4, img_size=128):
    """A head tensor whose decode is exactly `objects` [(cell x, cell y, anchor, class)]: the
    chosen cells say 'object at this cell's centre with this anchor's size', all else says no."""
    na, no = len(anchors), 5 + classes
    head = np.full((1, na, no, ny, ny), -20.0, np.float32)
    for gx, gy, a, c in objects:
        head[0, a, :4, gy, gx] = 0.0  # sigmoid 0.5: centre of the cell, anchor-sized box
        head[0, a, 4, gy, gx] = 20.0
        head[0, a, 5 + c, gy, gx] = 20.0
    return head.reshape(1, na * no, ny, ny)


def test_detect_finds_planted_objects_and_undoes_letterbox():
    anchors = ((20.0, 30.0), (60.0, 40.0))
    head = head_with_objects([(1, 1, 0, 0), (3, 2, 1, 1)], anchors, classes=2)
    settings = DetectSettings(anchors, img_size=128, conf_threshold=0.25, iou_threshold=0.45)
    (square,) = detect(head, settings)
    assert square.shape == (2, 6)
    by_class = {int(row[5]): row for row in square}
    np.testing.assert_allclose(by_class[0][:4], [48 - 10, 48 - 15, 48 + 10, 48 + 15], atol=1e-3)
    np.testing.assert_allclose(by_class[1][:4], [112 - 30, 80 - 20, 112 + 30, 80 + 20], atol=1e-3)
    box = Letterbox.fit(height=100, width=200, size=128)  # 200x100 -> 128x64, 32 px top pad
    (original,) = detect(head, settings, [box])
    np.testing.assert_allclose(original[:, :4], box.to_original(square[:, :4]), atol=1e-4)
    np.testing.assert_allclose(box.to_square(original[:, :4])[0, [0, 2]], square[0, [0, 2]], 1e-3)


def test_detect_with_nothing_above_threshold_returns_empty_arrays():
    head = head_with_objects([], ((10.0, 10.0),), classes=2)
    settings = DetectSettings(((10.0, 10.0),), 128, conf_threshold=0.25, iou_threshold=0.45)
    (dets,) = detect(head, settings)
    assert dets.shape == (0, 6)


def test_classes_do_not_suppress_each_other():
    """A smoke box and a fire box in the same place both survive class-wise NMS."""
    anchors = ((40.0, 40.0),)
    head = head_with_objects([(1, 1, 0, 0)], anchors, classes=2)
    head[0, 6] = head[0, 5]  # the same cell is also confidently class 1
    settings = DetectSettings(anchors, 128, conf_threshold=0.25, iou_threshold=0.45)
    (dets,) = detect(head, settings)
    assert sorted(dets[:, 5].tolist()) == [0.0, 1.0]


def test_letterbox_round_trip_and_padding():
    box = Letterbox.fit(height=300, width=120, size=96)
    assert box.resized == (38, 96) and box.offset == (29, 0)
    xyxy = np.array([[0, 0, 120, 300], [10, 20, 50, 200]], np.float32)
    np.testing.assert_allclose(box.to_original(box.to_square(xyxy)), xyxy, atol=1e-3)
    assert box.to_original(np.array([[-50, -5, 500, 500]], np.float32)).tolist() == [
        [0, 0, 120, 300]
    ]


def test_dequantize_uses_given_scale_and_zero_point():
    np.testing.assert_allclose(dequantize(np.array([-128, 0, 127]), 0.5, 1), [-64.5, -0.5, 63])
