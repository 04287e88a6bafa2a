"""Bad detection input: each case is a counted skip, a clear error, or handled as documented."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from modules.board.yolo_labels import OUTSIDE_UNIT_RANGE, UNKNOWN_CLASS_ID
from modules.data.boxes import DetectionDataset, check_boxes
from modules.data.datasets import load_dfire_split

CLASS_IDS = {0: "smoke", 1: "fire"}
CLASSES = ["smoke", "fire"]


def dfire_folder(root, labels):
    """root/train/{images,labels}: one 64x64 image per label text (None: no label file)."""
    for sub in ("images", "labels"):
        (root / "train" / sub).mkdir(parents=True, exist_ok=True)
    for name, text in labels.items():
        cv2.imwrite(str(root / "train" / "images" / f"{name}.png"), np.zeros((64, 64, 3), np.uint8))
        if text is not None:
            (root / "train" / "labels" / f"{name}.txt").write_text(text)
    return Path(root)


def test_bad_labels_are_counted_skips_and_empty_images_are_kept(tmp_path):
    root = dfire_folder(
        tmp_path,
        {
            "ok": "0 0.5 0.5 0.2 0.2\n",
            "outside": "1 1.2 0.5 0.2 0.2\n",  # centre outside the image
            "class5": "5 0.5 0.5 0.2 0.2\n",  # class id beyond DFIRE_CLASS_IDS
            "empty": "",
            "nolabel": None,
        },
    )
    samples, report = load_dfire_split(root, "train", CLASS_IDS, CLASSES)
    assert report.skipped == {OUTSIDE_UNIT_RANGE: 1, UNKNOWN_CLASS_ID: 1}
    assert sorted(s.image_path.stem for s in samples) == ["empty", "nolabel", "ok"]
    dataset = DetectionDataset(samples, 32)
    counts = {s.image_path.stem: len(dataset[i][1]) for i, s in enumerate(samples)}
    assert counts == {"empty": 0, "nolabel": 0, "ok": 1}


def test_box_crossing_the_border_is_clipped_to_the_image(tmp_path):
    # (a box without area skips its image: tests/test_datasets.py covers that reason)
    root = dfire_folder(tmp_path, {"edge": "0 0.95 0.5 0.2 0.2\n"})
    samples, _ = load_dfire_split(root, "train", CLASS_IDS, CLASSES)
    _, boxes = DetectionDataset(samples, 64)[0]
    check_boxes(boxes.numpy(), "clipped")
    np.testing.assert_allclose(boxes.numpy(), [[0, 0.925, 0.5, 0.15, 0.2]], atol=1e-6)


def test_check_boxes_names_the_image():
    with pytest.raises(ValueError, match="a.jpg"):
        check_boxes(np.array([[0, 0.5, 0.5, 1.5, 0.2]]), "a.jpg")
