"""COCO mAP (modules/training/detection_metrics.py) on hand-made ground truth and detections."""

import numpy as np
import pytest

from modules.training.detection_metrics import coco_metrics

CLASSES = ["smoke", "fire"]
SIZES = [(100, 200), (100, 200), (100, 200)]
# image 0: one smoke box; image 1: one fire box; image 2: nothing
GT = [
    np.array([[0, 0.25, 0.5, 0.2, 0.4]], np.float32),  # x 30..70, y 30..70 in pixels
    np.array([[1, 0.75, 0.5, 0.1, 0.2]], np.float32),  # x 140..160, y 40..60
    np.zeros((0, 5), np.float32),
]
SMOKE = [30, 30, 70, 70]
FIRE = [140, 40, 160, 60]


def dets(*rows):
    return np.array(rows, np.float32).reshape(-1, 6)


def test_perfect_detections_give_map_one():
    m = coco_metrics(GT, [dets([*SMOKE, 0.9, 0]), dets([*FIRE, 0.8, 1]), dets()], SIZES, CLASSES)
    assert m.map50 == pytest.approx(1.0) and m.map50_95 == pytest.approx(1.0)
    assert m.ap50 == pytest.approx({"smoke": 1.0, "fire": 1.0})


def test_no_detections_give_zero_not_a_crash():
    m = coco_metrics(GT, [dets(), dets(), dets()], SIZES, CLASSES)
    assert m.map50 == 0.0 and m.map50_95 == 0.0 and m.ap50 == {"smoke": 0.0, "fire": 0.0}


def test_false_positive_in_an_image_without_boxes_counts():
    """Smoke: FP (0.9, in the empty image), TP (0.8). Precision 1/2 at recall 1: COCO's
    interpolated AP is 0.5. Fire is perfect: mAP@0.5 = 0.75."""
    detections = [
        dets([*SMOKE, 0.8, 0]),
        dets([*FIRE, 0.8, 1]),
        dets([10, 10, 50, 50, 0.9, 0]),
    ]
    m = coco_metrics(GT, detections, SIZES, CLASSES)
    assert m.ap50["smoke"] == pytest.approx(0.5, abs=1e-6)
    assert m.map50 == pytest.approx(0.75, abs=1e-6)


def test_ranked_false_positive_gives_interpolated_precision():
    """Two smoke boxes; ranked FP, TP, TP: precision 2/3 at full recall and the envelope keeps
    2/3 at every recall point, so AP = 2/3."""
    gt = [np.array([[0, 0.25, 0.5, 0.2, 0.4], [0, 0.75, 0.5, 0.2, 0.4]], np.float32)]
    right = [130, 30, 170, 70]
    detections = [dets([0, 0, 10, 10, 0.9, 0], [*SMOKE, 0.8, 0], [*right, 0.7, 0])]
    m = coco_metrics(gt, detections, SIZES[:1], CLASSES)
    assert m.ap50["smoke"] == pytest.approx(2 / 3, abs=1e-6)
    assert np.isnan(m.ap50["fire"])  # no fire in the ground truth: not a zero


def test_loose_box_counts_at_half_iou_but_not_at_strict_thresholds():
    """A 31x40 box inside the 40x40 truth has IoU 0.775: a hit at IoU thresholds 0.50 .. 0.75
    (6 of COCO's 10), a miss above, so mAP@0.5 = 1 and mAP@0.5:0.95 = 0.6."""
    m = coco_metrics(GT[:1], [dets([30, 30, 61, 70, 0.9, 0])], SIZES[:1], CLASSES)
    assert m.map50 == pytest.approx(1.0)
    assert m.map50_95 == pytest.approx(0.6, abs=1e-6)


def test_one_detection_list_per_image_is_required():
    with pytest.raises(ValueError, match="one \\(possibly empty\\) array per ground-truth image"):
        coco_metrics(GT, [dets(), dets()], SIZES, CLASSES)
