from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from modules.board.yolo_labels import read_yolo_label
from modules.data import demo_data
from modules.data.datasets import load_dfire_split
from modules.data.preprocess import load_rgb

CLASSES = ["smoke", "fire"]
IDS = {0: "smoke", 1: "fire"}


def tree_bytes(root):
    files = sorted(path for path in root.rglob("*") if path.is_file())
    return {str(path.relative_to(root)): path.read_bytes() for path in files}


def make_cfg(root, **overrides):
    values = dict(
        DEMO_DIR=str(root),
        DEMO_SPLITS={"train": 6, "val": 2},
        DEMO_IMAGE_SIZE=40,
        DEMO_SEED=5,
        DFIRE_CLASS_IDS=IDS,
    )
    return SimpleNamespace(**{**values, **overrides})


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path):
    splits = {"train": 5, "test": 3}
    a = demo_data.generate_demo_dataset(tmp_path / "a", splits, 48, seed=1)
    b = demo_data.generate_demo_dataset(tmp_path / "b", splits, 48, seed=1)
    c = demo_data.generate_demo_dataset(tmp_path / "c", splits, 48, seed=2)
    assert tree_bytes(a) == tree_bytes(b)
    images = [name for name in tree_bytes(a) if name.endswith(".jpg")]
    assert len(images) == 8
    assert all(tree_bytes(a)[name] != tree_bytes(c)[name] for name in images)


def test_category_plan_follows_the_dfire_mix_exactly():
    plan = demo_data.category_plan(demo_data.DFIRE_MIX, 1000, np.random.default_rng(0))
    assert Counter(plan) == {"none": 457, "smoke": 273, "fire": 54, "both": 216}
    assert plan[:20] != sorted(plan[:20])  # shuffled


def test_generated_split_loads_cleanly_with_the_planned_mix(tmp_path):
    demo_data.generate_demo_dataset(tmp_path, {"train": 20}, 48, seed=3)
    samples, report = load_dfire_split(tmp_path, "train", IDS, CLASSES)
    # 20 x (0.457, 0.273, 0.054, 0.216): floors 9, 5, 1, 4 and the last one to smoke (.46)
    assert dict(report.kept) == {"none": 9, "smoke": 6, "fire": 1, "both": 4}
    assert report.n_skipped == 0 and not report.notes
    for sample in samples:
        assert load_rgb(sample.image_path).shape == (48, 48, 3)
        boxes = sample.boxes
        assert ((boxes[:, 1:] >= 0) & (boxes[:, 1:] <= 1)).all()
        assert (boxes[:, 3:] > 0).all()
        # every box lies inside the picture
        assert (boxes[:, 1] - boxes[:, 3] / 2 >= -1e-5).all()
        assert (boxes[:, 1] + boxes[:, 3] / 2 <= 1 + 1e-5).all()


def test_class_ids_follow_the_mapping_passed_in(tmp_path):
    swapped = {0: "fire", 1: "smoke"}
    demo_data.generate_demo_dataset(tmp_path / "a", {"train": 8}, 40, 4)
    demo_data.generate_demo_dataset(tmp_path / "b", {"train": 8}, 40, 4, class_ids=swapped)
    for label in sorted((tmp_path / "a" / "train" / "labels").glob("*.txt")):
        original = read_yolo_label(label, IDS, CLASSES)
        other = tmp_path / "b" / "train" / "labels" / label.name
        np.testing.assert_array_equal(read_yolo_label(other, swapped, CLASSES), original)


def test_ensure_generates_once_and_again_when_parameters_change(tmp_path, monkeypatch):
    root = tmp_path / "demo"
    calls = []
    real = demo_data.generate_demo_dataset
    monkeypatch.setattr(
        demo_data, "generate_demo_dataset", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    demo_data.ensure_demo_dataset(make_cfg(root))
    demo_data.ensure_demo_dataset(make_cfg(root))
    assert len(calls) == 1
    demo_data.ensure_demo_dataset(make_cfg(root, DEMO_SEED=6))
    demo_data.ensure_demo_dataset(make_cfg(root, DEMO_IMAGE_SIZE=32))
    assert len(calls) == 3
    demo_data.ensure_demo_dataset(make_cfg(root, DEMO_SPLITS={"train": 3, "test": 1}))
    assert len(list((root / "train" / "images").iterdir())) == 3
    assert not list((root / "val" / "images").iterdir())  # the old split's files are gone
    assert len(calls) == 4


def test_interrupted_generation_is_redone(tmp_path):
    cfg = make_cfg(tmp_path)
    demo_data.ensure_demo_dataset(cfg)
    complete = tree_bytes(tmp_path)
    (tmp_path / demo_data.MARKER).unlink()  # as if killed before the end
    first_image = sorted((tmp_path / "train" / "images").iterdir())[0]
    first_image.write_bytes(b"half written")
    demo_data.ensure_demo_dataset(cfg)
    assert tree_bytes(tmp_path) == complete


def test_refuses_to_delete_files_it_did_not_write(tmp_path):
    (tmp_path / "train" / "images").mkdir(parents=True)
    (tmp_path / "train" / "images" / "precious.jpg").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="DEMO_DIR"):
        demo_data.ensure_demo_dataset(make_cfg(tmp_path))
    assert (tmp_path / "train" / "images" / "precious.jpg").exists()


def test_preview_grid_writes_a_png(tmp_path):
    demo_data.generate_demo_dataset(tmp_path / "d", {"val": 5}, 40, 1)
    path = demo_data.save_preview_grid(tmp_path / "d", "val", tmp_path / "plots" / "p.png", n=4)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
