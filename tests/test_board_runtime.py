"""The board runtime (modules/board): board-only imports, one preprocessing, labels, metrics."""

import ast
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from modules.board import dataset
from modules.board.preprocess import camera_frame_input, image_file_input, input_size
from modules.data.demo_data import generate_demo_dataset
from modules.data.preprocess import load_rgb, preprocess

BOARD = Path(__file__).resolve().parents[1] / "modules" / "board"
BOARD_PACKAGES = {"numpy", "cv2", "PIL"}  # what requirements-board.txt installs
ON_BOARD_ONLY = {"finn_plus_driver", "pynq"}  # imported lazily, inside functions


def imports(tree):
    """(top-level module names imported at module level, those imported inside functions)."""
    module_level, nested = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = {node.module.split(".")[0]}
        else:
            continue
        (module_level if node.col_offset == 0 else nested).update(names)
    return module_level, nested


@pytest.mark.parametrize("path", sorted(BOARD.glob("*.py")), ids=lambda p: p.name)
def test_board_modules_import_only_what_the_board_has(path):
    module_level, nested = imports(ast.parse(path.read_text()))
    allowed = set(sys.stdlib_module_names) | BOARD_PACKAGES
    assert module_level <= allowed, f"{path.name} imports {module_level - allowed}"
    assert nested <= allowed | ON_BOARD_ONLY, f"{path.name} imports {nested - allowed}"


@pytest.fixture(scope="module")
def demo_images(tmp_path_factory):
    root = generate_demo_dataset(tmp_path_factory.mktemp("demo"), {"test": 6}, 64, seed=4)
    return sorted((root / "test" / "images").glob("*.jpg"))


@pytest.mark.parametrize("size", [32, 7, 64])
def test_repo_and_board_preprocessing_give_the_same_uint8_tensor(demo_images, size):
    for path in demo_images:
        board = image_file_input(path, size)
        repo = preprocess(load_rgb(path), size)
        assert board.dtype == np.uint8 and board.shape == (3, size, size)
        assert np.array_equal(board, repo.numpy()) and repo.numpy().max() > 1
        io_spec = {"input": {"host_layout": "NCHW", "host_shape": [1, 3, size, size]}}
        camera, _ = camera_frame_input(cv2.imread(str(path)), io_spec)  # BGR, as VideoCapture
        assert np.array_equal(camera, board)


def test_input_size_from_the_io_spec():
    nchw = {"input": {"host_layout": "NCHW", "host_shape": [1, 3, 32, 32]}}
    nhwc = {"input": {"host_layout": "NHWC", "host_shape": [1, 16, 16, 3]}}
    assert input_size(nchw) == 32 and input_size(nhwc) == 16
    with pytest.raises(ValueError, match="not square"):
        input_size({"input": {"host_layout": "NCHW", "host_shape": [1, 3, 8, 16]}})


def test_board_metrics_equal_sklearn():
    """The one metrics definition (board runtime, numpy only) against scikit-learn's."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    rng = np.random.default_rng(7)
    classes = ["smoke", "fire"]
    for count in (1, 13, 200):
        targets = rng.integers(0, 2, (count, 2))
        decisions = rng.integers(0, 2, (count, 2))
        board = dataset.class_metrics(targets, decisions, classes)
        precision, recall, f1, _ = precision_recall_fscore_support(
            targets, decisions, average=None, labels=[0, 1], zero_division=0
        )
        for i, name in enumerate(classes):
            assert board[f"{name}_precision"] == pytest.approx(precision[i])
            assert board[f"{name}_recall"] == pytest.approx(recall[i])
            assert board[f"{name}_f1"] == pytest.approx(f1[i])
            accuracy = accuracy_score(targets[:, i], decisions[:, i])
            assert board[f"{name}_accuracy"] == pytest.approx(accuracy)
        assert board["mean_f1"] == pytest.approx(f1.mean())
    empty = dataset.class_metrics(np.zeros((4, 2)), np.zeros((4, 2)), classes)
    assert empty["mean_f1"] == 0.0 and empty["smoke_accuracy"] == 1.0


def test_labels_in_dfire_layout_and_beside_the_image(tmp_path):
    classes, class_ids = ["smoke", "fire"], {"0": "smoke", "1": "fire"}
    (tmp_path / "set" / "images").mkdir(parents=True)
    (tmp_path / "set" / "labels").mkdir()
    for name in ("a", "b", "c", "d"):
        cv2.imwrite(str(tmp_path / "set" / "images" / f"{name}.png"), np.zeros((4, 4, 3), np.uint8))
    labels = tmp_path / "set" / "labels"
    (labels / "a.txt").write_text("1 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.1 0.1\n")
    (labels / "b.txt").write_text("")
    (labels / "c.txt").write_text("7 0.5 0.5 0.2 0.2\n")  # class id not in the mapping
    paths = dataset.image_files(tmp_path / "set")
    assert [p.name for p in paths] == ["a.png", "b.png", "c.png", "d.png"]
    targets, labelled, skipped = dataset.read_targets(paths, class_ids, classes)
    # d.png has no label file: neither class in the D-Fire layout, as training reads it
    assert targets.tolist() == [[1, 1], [0, 0], [0, 0]] and labelled == [0, 1, 3]
    skipped_names = {reason: [p.name for p in files] for reason, files in skipped.items()}
    assert skipped_names == {"class id not in mapping": ["c.png"]}
    beside = tmp_path / "flat"
    beside.mkdir()
    cv2.imwrite(str(beside / "x.jpg"), np.zeros((4, 4, 3), np.uint8))
    (beside / "x.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    cv2.imwrite(str(beside / "y.jpg"), np.zeros((4, 4, 3), np.uint8))  # no y.txt
    targets, _, skipped = dataset.read_targets(dataset.image_files(beside), class_ids, classes)
    assert targets.tolist() == [[1, 0]] and list(skipped) == ["no label file"]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        dataset.image_files(tmp_path / "nowhere")
