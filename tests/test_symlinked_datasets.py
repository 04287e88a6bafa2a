"""Dataset folders linked in from elsewhere (symbolic links) are read like real ones by every
loader and by check-data, and a link loop is read once, not forever."""

import contextlib
import io
import json
import os

import cv2
import numpy as np
from test_datasets import CLASSES, DFIRE_IDS, FASDD_IDS, FASDD_KEPT, make_fasdd, names

from modules import cli
from modules.board import dataset as board_dataset
from modules.data import datasets as ds


def real_split(folder, count=4):
    """images/ and labels/ of `count` images somewhere else on the disk."""
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    for i in range(count):
        cv2.imwrite(str(folder / "images" / f"{i}.png"), np.full((8, 8, 3), 40 * i, np.uint8))
        (folder / "labels" / f"{i}.txt").write_text(f"{i % 2} 0.5 0.5 0.2 0.2\n")
    return folder


def linked_dfire(tmp_path):
    """dataset/test/{images,labels} are links; images/ also holds a link back up (a loop),
    a link to an image file and a broken link."""
    real = real_split(tmp_path / "elsewhere")
    split = tmp_path / "dataset" / "test"
    split.mkdir(parents=True)
    os.symlink(real / "images", split / "images")
    os.symlink(real / "labels", split / "labels")
    os.symlink(real, real / "images" / "loop")
    cv2.imwrite(str(tmp_path / "extra.png"), np.zeros((8, 8, 3), np.uint8))
    os.symlink(tmp_path / "extra.png", real / "images" / "extra.png")
    os.symlink(tmp_path / "nothing.png", real / "images" / "gone.png")
    return tmp_path / "dataset"


def test_training_loader_follows_linked_folders_once(tmp_path):
    samples, report = ds.load_dfire_split(linked_dfire(tmp_path), "test", DFIRE_IDS, CLASSES)
    assert names(samples) == {"0", "1", "2", "3", "extra"}
    assert report.notes[ds.DFIRE_NO_LABEL] == 1  # extra.png has no label: neither
    assert report.notes[ds.FOLDER_SEEN_TWICE] >= 1  # the loop: read once
    assert report.skipped_files == {
        ds.BROKEN_LINK: [str(tmp_path / "dataset/test/images/gone.png")]
    }


def test_check_data_follows_linked_folders_once(tmp_path):
    root = linked_dfire(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(["check-data", "--dataset", "dfire", "--dir", str(root), "--json"])
    split = json.loads(printed.getvalue())["splits"]["test"]
    assert code == 0 and sum(split["kept"].values()) == 5
    assert [row["reason"] for row in split["skipped"]] == [ds.BROKEN_LINK]


def test_board_runtime_reads_a_linked_folder(tmp_path):
    root = linked_dfire(tmp_path)
    paths = board_dataset.image_files(root / "test")
    assert [p.name for p in paths] == ["0.png", "1.png", "2.png", "3.png", "extra.png"]
    targets, labelled, _ = board_dataset.read_targets(paths, {"0": "smoke", "1": "fire"}, CLASSES)
    assert labelled == [0, 1, 2, 3, 4]  # extra.png: no label file, neither (as training)
    assert targets.tolist() == [[1, 0], [0, 1], [1, 0], [0, 1], [0, 0]]


def test_fasdd_loader_follows_linked_images_and_annotations(tmp_path):
    real = make_fasdd(tmp_path / "real")
    linked = tmp_path / "linked"
    linked.mkdir()
    os.symlink(real / "images", linked / "images")
    os.symlink(real / "annotations", linked / "annotations")
    os.symlink(linked, real / "images" / "loop")
    samples, _ = ds.load_fasdd_split(linked, "CV", "train", FASDD_IDS, CLASSES)
    assert names(samples) == set(FASDD_KEPT)
