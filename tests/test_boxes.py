"""Box data pipeline: letterbox, box-aware augmentation, collate (modules/data/boxes.py)."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from modules.data.boxes import (
    PAD_VALUE,
    BoxAugmentation,
    DetectionDataset,
    check_boxes,
    collate_boxes,
    letterbox_image,
)
from modules.data.datasets import Sample


def write_scene(path, height, width, rects):
    """A black image with white rectangles (x0, y0, x1, y1 pixels); returns YOLO rows."""
    image = np.zeros((height, width, 3), np.uint8)
    rows = []
    for k, (x0, y0, x1, y1) in enumerate(rects):
        image[y0:y1, x0:x1] = 255
        rows.append([k % 2, (x0 + x1) / 2 / width, (y0 + y1) / 2 / height,
                     (x1 - x0) / width, (y1 - y0) / height])  # fmt: skip
    cv2.imwrite(str(path), image)  # png: lossless, so the rectangles stay sharp
    return Sample(Path(path), np.zeros(2, np.float32), np.asarray(rows, np.float32).reshape(-1, 5))


def white_extent(image_chw):
    """Pixel box (x0, y0, x1, y1) of the bright pixels of a CHW float image."""
    ys, xs = np.nonzero(image_chw.numpy().mean(0) > 160)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def box_pixels(row, size):
    _, cx, cy, w, h = row.tolist()
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) * size


def test_letterbox_keeps_aspect_and_pads_grey():
    square, box = letterbox_image(np.zeros((50, 100, 3), np.uint8), 64)
    assert square.shape == (64, 64, 3) and box.offset == (0, 16)
    assert (square[:16] == PAD_VALUE).all() and (square[16:48] == 0).all()
    assert (square[48:] == PAD_VALUE).all()


def test_boxes_follow_the_pixels_through_letterbox(tmp_path):
    sample = write_scene(tmp_path / "a.png", 80, 160, [(20, 10, 60, 50)])
    image, boxes = DetectionDataset([sample], 64)[0]
    np.testing.assert_allclose(box_pixels(boxes[0], 64), white_extent(image), atol=1.0)


@pytest.mark.parametrize("rect", [(30, 30, 66, 70), (74, 4, 96, 30)], ids=["centre", "edge"])
@pytest.mark.parametrize("index", range(8))
def test_boxes_follow_the_pixels_through_augmentation(tmp_path, index, rect):
    """After flip, zoom, shift and colour jitter, every kept box still frames its rectangle
    (clipped at the border) and lies inside the image."""
    sample = write_scene(tmp_path / "a.png", 96, 96, [rect])
    dataset = DetectionDataset([sample], 96, BoxAugmentation(), seed=index)
    image, boxes = dataset[0]
    assert image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 255
    check_boxes(boxes.numpy(), "augmented")
    if len(boxes):  # a rectangle shifted mostly out of view is dropped, not kept half-seen
        np.testing.assert_allclose(box_pixels(boxes[0], 96), white_extent(image), atol=2.0)


def test_augmentation_is_seeded_by_epoch_and_index(tmp_path):
    sample = write_scene(tmp_path / "a.png", 64, 64, [(10, 10, 40, 40)])
    dataset = DetectionDataset([sample], 64, BoxAugmentation(), seed=3)
    first = dataset[0]
    assert torch.equal(dataset[0][1], first[1]) and torch.equal(dataset[0][0], first[0])
    dataset.set_epoch(1)
    assert not torch.equal(dataset[0][0], first[0])


def test_image_without_boxes_and_collate_of_variable_counts(tmp_path):
    samples = [
        write_scene(tmp_path / "none.png", 64, 64, []),
        write_scene(tmp_path / "two.png", 64, 64, [(0, 0, 20, 20), (30, 30, 60, 50)]),
    ]
    dataset = DetectionDataset(samples, 32, BoxAugmentation(), seed=0)
    assert dataset[0][1].shape == (0, 5)
    images, targets = collate_boxes([dataset[0], dataset[1], dataset[0]])
    assert images.shape == (3, 3, 32, 32)
    assert targets.shape[1] == 6 and set(targets[:, 0].tolist()) <= {1.0}
    assert collate_boxes([dataset[0]])[1].shape == (0, 6)


def test_check_boxes_rejects_boxes_outside_the_image():
    with pytest.raises(ValueError, match="img.jpg: boxes outside"):
        check_boxes(np.array([[0, 0.95, 0.5, 0.2, 0.2]]), "img.jpg")
    with pytest.raises(ValueError, match="without area"):
        check_boxes(np.array([[0, 0.5, 0.5, 0.0, 0.2]]), "img.jpg")
