"""Anchors by IoU k-means on the training boxes at the model's input size, with the best
possible recall (BPR): the share of boxes some anchor can be matched to under the same rule the
loss uses (both side ratios within DET_ANCHOR_THRESHOLD).
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image

from modules.board.detect import Letterbox


def box_sizes(samples, img_size):
    """(N, 2) width, height in pixels of every training box after letterboxing to img_size."""
    sizes = []
    for sample in samples:
        if len(sample.boxes) == 0:
            continue
        with Image.open(sample.image_path) as image:  # reads the header only
            width, height = image.size
        scale = Letterbox.fit(height, width, img_size).scale
        sizes.append(sample.boxes[:, 3:5] * np.array([width, height], np.float32) * scale)
    return np.concatenate(sizes).astype(np.float32) if sizes else np.zeros((0, 2), np.float32)


def wh_iou(wh, anchors):
    """IoU of boxes (N, 2) and anchors (K, 2) placed on a common centre -> (N, K)."""
    inter = np.minimum(wh[:, None], anchors[None]).prod(2)
    return inter / (wh.prod(1)[:, None] + anchors.prod(1)[None] - inter)


def ratio_fit(wh, anchors):
    """YOLOv5's match quality (N, K): the worse of the two side ratios, as a value in (0, 1]."""
    ratio = wh[:, None] / anchors[None]
    return np.minimum(ratio, 1 / ratio).min(2)


def best_possible_recall(wh, anchors, threshold):
    """Share of boxes whose best anchor is within `threshold` on both sides."""
    if len(wh) == 0:
        return float("nan")
    return float((ratio_fit(wh, anchors).max(1) > 1 / threshold).mean())


def kmeans_iou(wh, k, seed, iterations=300):
    """k anchors (k, 2), smallest area first, minimising 1 - IoU; medians as centres."""
    if len(wh) < k:
        raise ValueError(
            f"anchors: {len(wh)} training boxes cannot give {k} anchors (config.DET_ANCHORS);"
            " use more training images or fewer anchors"
        )
    rng = np.random.default_rng(seed)
    centres = wh[rng.choice(len(wh), k, replace=False)].copy()
    assignment = None
    for _ in range(iterations):
        new = wh_iou(wh, centres).argmax(1)
        if assignment is not None and np.array_equal(new, assignment):
            break
        assignment = new
        for j in range(k):
            if np.any(assignment == j):  # an empty cluster keeps its centre
                centres[j] = np.median(wh[assignment == j], axis=0)
    return centres[np.argsort(centres.prod(1))]


@dataclass
class AnchorFit:
    anchors: np.ndarray  # (k, 2) pixels at img_size
    best_possible_recall: float
    mean_best_iou: float
    boxes: int

    def __str__(self):
        sizes = ", ".join(f"{w:.0f}x{h:.0f}" for w, h in self.anchors)
        return (
            f"anchors (px): {sizes}; best possible recall {self.best_possible_recall:.3f}, "
            f"mean best IoU {self.mean_best_iou:.3f} over {self.boxes} training boxes"
        )


def fit_anchors(samples, img_size, k, seed, threshold):
    wh = box_sizes(samples, img_size)
    anchors = kmeans_iou(wh, k, seed)
    return AnchorFit(
        anchors,
        best_possible_recall(wh, anchors, threshold),
        float(wh_iou(wh, anchors).max(1).mean()),
        len(wh),
    )
