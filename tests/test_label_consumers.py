"""One bad-label corpus through the three label consumers (the training loader,
`firesmoke check-data` and the board runtime): the same images kept, the same images
skipped for the same reasons, because all three use modules/board/yolo_labels.py."""

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from modules import cli
from modules.board import dataset as board_dataset
from modules.data.datasets import load_dfire_split

CLASSES = ["smoke", "fire"]
IDS = {0: "smoke", 1: "fire"}
BOARD_IDS = {"0": "smoke", "1": "fire"}  # io_spec.json keys are strings

LABELS = {  # image stem -> label file bytes
    "good": b"1 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.1 0.1\n",
    "empty": b"",  # neither class
    "bom": "\ufeff1 0.5 0.5 0.2 0.2\n".encode(),
    "crlf": b"0 0.5 0.5 0.2 0.2\r\n1 0.3 0.3 0.1 0.1\r\n",
    "blank_lines": b"\n0 0.5 0.5 0.2 0.2\n\n",
    "non_numeric": b"1 0.5 0.5 abc 0.2\n",
    "out_of_range": b"1 1.5 -0.5 0.2 0.2\n",
    "zero_area": b"0 0.5 0.5 0.0 0.2\n",
    "unknown_class": b"7 0.5 0.5 0.2 0.2\n",
    "fractional_class": b"0.5 0.5 0.5 0.2 0.2\n",
    "four_fields": b"1 0.5 0.5 0.2\n",
    "one_bad_line": b"1 0.5 0.5 0.2 0.2\n1 0.5 nan 0.2 0.2\n",
    "latin1": b"1 0.5 0.5 0.2 0.2\xe9\n",
}
KEPT = {"good", "empty", "bom", "crlf", "blank_lines", "no_label_file"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("labels")
    images, labels = root / "test" / "images", root / "test" / "labels"
    images.mkdir(parents=True)
    labels.mkdir()
    for stem, text in LABELS.items():
        cv2.imwrite(str(images / f"{stem}.png"), np.full((8, 8, 3), 90, np.uint8))
        (labels / f"{stem}.txt").write_bytes(text)
    # no label file: neither class (D-Fire's convention) for all three
    cv2.imwrite(str(images / "no_label_file.png"), np.full((8, 8, 3), 90, np.uint8))
    return root


def training_outcome(root):
    samples, report = load_dfire_split(root, "test", IDS, CLASSES)
    kept = {Path(s.image_path).stem: s.target.tolist() for s in samples}
    skipped = {Path(f).stem: r for r, files in report.skipped_files.items() for f in files}
    return kept, skipped


def check_data_outcome(root):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(["check-data", "--dataset", "dfire", "--dir", str(root), "--json"])
    assert code == 0
    split = json.loads(printed.getvalue())["splits"]["test"]
    return {Path(row["file"]).stem: row["reason"] for row in split["skipped"]}, split["kept"]


def board_outcome(root):
    paths = board_dataset.image_files(root / "test")
    targets, labelled, skipped = board_dataset.read_targets(paths, BOARD_IDS, CLASSES)
    kept = {paths[i].stem: t.tolist() for i, t in zip(labelled, targets, strict=True)}
    return kept, {Path(p).stem: r for r, files in skipped.items() for p in files}


def test_all_three_consumers_keep_and_skip_the_same_files_for_the_same_reasons(corpus):
    train_kept, train_skipped = training_outcome(corpus)
    board_kept, board_skipped = board_outcome(corpus)
    check_skipped, check_kept = check_data_outcome(corpus)
    assert set(train_kept) == set(board_kept) == KEPT
    assert train_skipped == board_skipped == check_skipped
    assert set(train_skipped) == set(LABELS) - KEPT
    # the reasons a reader expects, not only the same ones
    assert train_skipped["non_numeric"] == "non-numeric field"
    assert train_skipped["out_of_range"] == "coordinates outside 0..1"
    assert train_skipped["zero_area"] == "box with zero or negative width or height"
    assert train_skipped["unknown_class"] == train_skipped["fractional_class"]
    assert train_skipped["four_fields"] == "wrong field count"
    # same targets: the BOM and CRLF files read as plain ones
    assert {k: [int(v) for v in t] for k, t in train_kept.items()} == board_kept
    assert board_kept["bom"] == [0, 1] and board_kept["crlf"] == [1, 1]
    assert board_kept["empty"] == board_kept["no_label_file"] == [0, 0]
    assert board_kept["good"] == [1, 1]
    assert sum(check_kept.values()) == len(KEPT)
