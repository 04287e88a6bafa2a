"""Anchors by IoU k-means, and the best possible recall (modules/training/anchors.py)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modules.data.datasets import Sample
from modules.training.anchors import best_possible_recall, fit_anchors, kmeans_iou, wh_iou


def clustered_sizes(rng, centres, per_cluster=50, spread=0.05):
    return np.concatenate(
        [np.asarray(c) * rng.uniform(1 - spread, 1 + spread, (per_cluster, 2)) for c in centres]
    ).astype(np.float32)


def test_kmeans_recovers_clusters_and_is_seeded():
    centres = [(8, 12), (30, 20), (70, 90)]
    wh = clustered_sizes(np.random.default_rng(0), centres)
    anchors = kmeans_iou(wh, 3, seed=1)
    np.testing.assert_allclose(anchors, centres, rtol=0.06)
    np.testing.assert_array_equal(anchors, kmeans_iou(wh, 3, seed=1))


def test_kmeans_needs_enough_boxes():
    with pytest.raises(ValueError, match="DET_ANCHORS"):
        kmeans_iou(np.ones((2, 2), np.float32), 3, seed=0)


def test_best_possible_recall_counts_boxes_within_the_ratio():
    anchors = np.array([[10.0, 10.0]], np.float32)
    wh = np.array([[10, 10], [39, 10], [41, 10], [10, 2]], np.float32)
    assert best_possible_recall(wh, anchors, 4.0) == 0.5
    assert wh_iou(wh[:1], anchors)[0, 0] == pytest.approx(1.0)


def test_fit_anchors_uses_letterboxed_pixels(tmp_path):
    """A 200x100 image letterboxed to 64: a box of half the width is 32 px wide."""
    path = Path(tmp_path / "a.png")
    Image.new("RGB", (200, 100)).save(path)
    boxes = np.array([[0, 0.5, 0.5, 0.5, 0.5]] * 3, np.float32)
    empty = Sample(path, np.zeros(2, np.float32), np.zeros((0, 5), np.float32))
    fit = fit_anchors([Sample(path, np.zeros(2, np.float32), boxes), empty], 64, 1, 0, 4.0)
    np.testing.assert_allclose(fit.anchors, [[32, 16]])
    assert fit.best_possible_recall == 1.0 and fit.boxes == 3
    assert "best possible recall 1.000" in str(fit)
