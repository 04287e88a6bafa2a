"""Detection metrics through pycocotools' COCOeval: mAP@0.5, mAP@0.5:0.95, per-class AP@0.5
and the precision-recall curves behind them.

Every image is in the ground truth, also those without boxes (a detection there is a false
positive), and a run without a single detection scores 0 rather than crashing (COCO.loadRes
refuses an empty list).
"""

import contextlib
import io
from dataclasses import dataclass

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from modules.data.boxes import yolo_to_xyxy


def xywh(xyxy):
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    return [x0, y0, x1 - x0, y1 - y0]


def ground_truth(boxes_per_image, image_sizes, classes):
    """COCO ground truth from YOLO rows (class, cx, cy, w, h normalised) per image."""
    images, annotations = [], []
    for image_id, (rows, (height, width)) in enumerate(zip(boxes_per_image, image_sizes,
                                                           strict=True)):  # fmt: skip
        images.append({"id": image_id, "height": int(height), "width": int(width)})
        rows = np.asarray(rows, dtype=np.float32).reshape(-1, 5)
        for cls, xyxy in zip(rows[:, 0], yolo_to_xyxy(rows[:, 1:], width, height), strict=True):
            box = xywh(xyxy)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": int(cls) + 1, "bbox": box,
                                "area": box[2] * box[3], "iscrowd": 0})  # fmt: skip
    coco = COCO()
    coco.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": k + 1, "name": name} for k, name in enumerate(classes)],
    }
    with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints progress lines
        coco.createIndex()
    return coco


def detection_records(detections):
    """Per-image arrays (D, 6: x0, y0, x1, y1, score, class) -> COCO result dicts."""
    return [
        {
            "image_id": image_id,
            "category_id": int(det[5]) + 1,
            "bbox": xywh(det[:4]),
            "score": float(det[4]),
        }  # fmt: skip
        for image_id, dets in enumerate(detections)
        for det in np.asarray(dets).reshape(-1, 6)
    ]


@dataclass
class DetectionMetrics:
    map50: float
    map50_95: float
    ap50: dict  # class name -> AP@0.5 (nan for a class without ground-truth boxes)
    recall: np.ndarray  # COCO's 101 recall points
    precision: dict  # class name -> interpolated precision at IoU 0.5 on those points

    def as_dict(self):
        return {"map50": self.map50, "map50_95": self.map50_95,
                **{f"ap50_{name}": ap for name, ap in self.ap50.items()}}  # fmt: skip


def per_class_precision(evaluator, classes):
    """Interpolated precision at IoU 0.5, all areas, 100 detections: class -> (101,)."""
    precision = evaluator.eval["precision"][0, :, :, 0, -1]  # (recall points, classes)
    return {name: precision[:, k] for k, name in enumerate(classes)}


def average_precision(curve):
    valid = curve[curve > -1]  # -1: the class has no ground truth
    return float(valid.mean()) if valid.size else float("nan")


def coco_metrics(boxes_per_image, detections, image_sizes, classes):
    """mAP and per-class AP of `detections` (per image, pixels) against YOLO ground truth."""
    if len(detections) != len(boxes_per_image):
        raise ValueError(
            f"coco_metrics: {len(detections)} detection lists for {len(boxes_per_image)} images;"
            " pass one (possibly empty) array per ground-truth image"
        )
    gt = ground_truth(boxes_per_image, image_sizes, classes)
    records = detection_records(detections)
    recall = np.linspace(0, 1, 101)
    if not records:
        zeros = dict.fromkeys(classes, 0.0)
        return DetectionMetrics(0.0, 0.0, zeros, recall, {c: np.zeros(101) for c in classes})
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(gt, gt.loadRes(records), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    precision = per_class_precision(evaluator, classes)
    ap50 = {name: average_precision(curve) for name, curve in precision.items()}
    stats = [float(s) if s > -1 else float("nan") for s in evaluator.stats[:2]]
    return DetectionMetrics(stats[1], stats[0], ap50, recall, precision)
