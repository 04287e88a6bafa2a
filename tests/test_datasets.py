from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from modules.board.yolo_labels import (
    EMPTY_BOX,
    NON_NUMERIC,
    OUTSIDE_UNIT_RANGE,
    UNKNOWN_CLASS_ID,
    WRONG_FIELD_COUNT,
)
from modules.data import datasets as ds
from modules.data.preprocess import load_rgb, preprocess
from modules.run_paths import RunPaths
from modules.stages.train_fp32 import prepare_data
from modules.tasks.classify import ClassifyTask

CLASSES = ["smoke", "fire"]
DFIRE_IDS = {0: "smoke", 1: "fire"}
FASDD_IDS = {0: "fire", 1: "smoke"}
SMOKE, FIRE = "0 0.5 0.5 0.2 0.2\n", "1 0.3 0.6 0.1 0.1\n"  # D-Fire ids
F_FIRE, F_SMOKE = "0 0.5 0.5 0.2 0.2\n", "1 0.3 0.3 0.2 0.2\n"  # FASDD ids


def write_jpeg(path, seed=0, size=16):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    cv2.imwrite(str(path), pixels)


def write_text(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# name -> label text (None: no label file), and whether the image file is valid
DFIRE_FIXTURE = {
    "smoke1": (SMOKE, True),
    "fire1": (FIRE, True),
    "both1": (SMOKE + FIRE, True),
    "none1": ("", True),
    "nolabel": (None, True),
    "badcount": (SMOKE + "0 0.5 0.5 0.2\n", True),
    "badnum": ("1 0.5 x 0.2 0.2\n", True),
    "badclass": (FIRE + "7 0.5 0.5 0.2 0.2\n", True),
    "badcoord": ("0 1.5 0.5 0.2 0.2\n", True),
    "corrupt": (FIRE, False),
    "zerobox": ("1 0.5 0.5 0.0 0.2\n", True),
}
DFIRE_KEPT = {
    "smoke1": [1, 0],
    "fire1": [0, 1],
    "both1": [1, 1],
    "none1": [0, 0],
    "nolabel": [0, 0],
    "UPPER": [0, 1],
}


def make_dfire(root, split="train"):
    for index, (name, (label, valid)) in enumerate(DFIRE_FIXTURE.items()):
        image = root / split / "images" / f"{name}.jpg"
        if valid:
            write_jpeg(image, seed=index)
        else:
            write_text(image, "this is not a jpeg")
        if label is not None:
            write_text(root / split / "labels" / f"{name}.txt", label)
    (root / split / "images" / "empty.jpg").write_bytes(b"")
    write_text(root / split / "labels" / "empty.txt", SMOKE)
    write_text(root / split / "labels" / "orphan.txt", FIRE)
    write_text(root / split / "images" / "notes.md", "not an image")
    write_jpeg(root / split / "images" / "UPPER.JPG", seed=99)  # extensions in capitals
    write_text(root / split / "labels" / "UPPER.TXT", FIRE)
    write_truncated_jpeg(root / split / "images" / "truncated.jpg")
    write_text(root / split / "labels" / "truncated.txt", SMOKE)
    write_text(root / split / "labels" / "classes.yaml", "names: [smoke, fire]")
    write_jpeg(root / split / "images" / "extra" / "nested.jpg")
    return root


def write_truncated_jpeg(path):
    """A JPEG cut short, as a kill during a copy leaves it: OpenCV reads it as grey pixels."""
    write_jpeg(path, seed=5, size=64)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) * 2 // 3])


def make_plain_dfire(root, split, n):
    for i in range(n):
        write_jpeg(root / split / "images" / f"img{i:03d}.jpg", seed=i)
        label = [SMOKE, FIRE, "", SMOKE + FIRE][i % 4]
        write_text(root / split / "labels" / f"img{i:03d}.txt", label)
    return root


def names(samples):
    return {sample.image_path.stem for sample in samples}


def test_dfire_counts_every_kind_of_bad_data(tmp_path):
    samples, report = ds.load_dfire_split(make_dfire(tmp_path), "train", DFIRE_IDS, CLASSES)
    assert names(samples) == set(DFIRE_KEPT)
    for sample in samples:
        np.testing.assert_array_equal(sample.target, DFIRE_KEPT[sample.image_path.stem])
        assert sample.target.dtype == np.float32 and sample.boxes.shape[1] == 5
    assert dict(report.kept) == {"none": 2, "smoke": 1, "fire": 2, "both": 1}
    assert dict(report.skipped) == {
        WRONG_FIELD_COUNT: 1,
        NON_NUMERIC: 1,
        UNKNOWN_CLASS_ID: 1,
        OUTSIDE_UNIT_RANGE: 1,
        EMPTY_BOX: 1,
        ds.UNREADABLE_IMAGE: 2,
        ds.TRUNCATED_IMAGE: 1,
        ds.LABEL_WITHOUT_IMAGE: 1,
        ds.NOT_AN_IMAGE: 1,
        ds.NOT_A_LABEL: 1,
        ds.OUTSIDE_LAYOUT: 1,
    }
    assert dict(report.notes) == {ds.DFIRE_NO_LABEL: 1}
    skipped = report.skip_list().set_index("file")["reason"]
    assert skipped[str(tmp_path / "train" / "images" / "truncated.jpg")] == ds.TRUNCATED_IMAGE
    assert skipped[str(tmp_path / "train" / "labels" / "orphan.txt")] == ds.LABEL_WITHOUT_IMAGE


def test_every_file_under_the_split_is_kept_or_skipped_by_name(tmp_path):
    root = make_dfire(tmp_path)
    samples, report = ds.load_dfire_split(root, "train", DFIRE_IDS, CLASSES)
    everything = {p for p in (root / "train").rglob("*") if p.is_file()}
    kept = {s.image_path for s in samples}
    skipped = {Path(f) for f in report.skip_list()["file"]}
    images = {p.stem for p in kept | skipped if p.parent.name == "images"}
    labels_read = {p for p in everything - skipped if p.parent.name == "labels"}
    assert {p.stem for p in labels_read} <= images  # a label is read only for its image
    assert everything == kept | skipped | labels_read and not kept & skipped
    assert len(skipped) == report.n_skipped  # each skipped file counted once


def test_empty_split_folder_is_an_error_naming_it(tmp_path):
    (tmp_path / "test" / "images").mkdir(parents=True)
    (tmp_path / "test" / "labels").mkdir()
    write_text(tmp_path / "test" / "labels" / "a.txt", SMOKE)
    with pytest.raises(ValueError, match="holds no images") as error:
        ds.load_dfire_split(tmp_path, "test", DFIRE_IDS, CLASSES)
    assert str(tmp_path / "test" / "images") in str(error.value)


def test_split_with_only_bad_images_is_an_error(tmp_path):
    make_plain_dfire(tmp_path / "dfire", "test", 2)
    for path in (tmp_path / "dfire" / "test" / "images").iterdir():
        path.write_bytes(b"")
    with pytest.raises(ValueError, match="no usable images, all 2 skipped"):
        ds.build_split(make_cfg(tmp_path), "test")


def test_report_table_and_title(tmp_path):
    _, report = ds.load_dfire_split(make_dfire(tmp_path), "train", DFIRE_IDS, CLASSES)
    table = report.table().set_index("item")
    assert table.loc["none", "images"] == 2 and table.loc["both", "status"] == "kept"
    assert table.loc[ds.UNREADABLE_IMAGE, "images"] == 2
    assert table.loc[ds.UNREADABLE_IMAGE, "files"] == "corrupt.jpg, empty.jpg"
    assert table.loc["none", "files"] == ""
    assert table.loc[ds.DFIRE_NO_LABEL, "status"] == "note"
    assert table.loc[ds.LABEL_WITHOUT_IMAGE, "status"] == "skipped"
    assert str(report).startswith("D-Fire train: 6 images kept, 12 skipped")


def test_zero_count_categories_still_have_a_row(tmp_path):
    write_jpeg(tmp_path / "train" / "images" / "a.jpg")
    write_text(tmp_path / "train" / "labels" / "a.txt", SMOKE)
    _, report = ds.load_dfire_split(tmp_path, "train", DFIRE_IDS, CLASSES)
    kept = report.table().query("status == 'kept'").set_index("item")["images"].to_dict()
    assert kept == {"none": 0, "smoke": 1, "fire": 0, "both": 0}


@pytest.mark.parametrize("missing", ["images", "labels"])
def test_missing_folder_names_path_and_config_key(tmp_path, missing):
    make_plain_dfire(tmp_path, "train", 2)
    for path in (tmp_path / "train" / missing).iterdir():
        path.unlink()
    (tmp_path / "train" / missing).rmdir()
    with pytest.raises(FileNotFoundError) as error:
        ds.load_dfire_split(tmp_path, "train", DFIRE_IDS, CLASSES, config_key="DEMO_DIR")
    assert str(tmp_path / "train" / missing) in str(error.value)
    assert "DEMO_DIR" in str(error.value)


def test_ds_len_subset_is_deterministic_and_nested(tmp_path):
    make_plain_dfire(tmp_path, "train", 30)
    first, report = ds.load_dfire_split(tmp_path, "train", DFIRE_IDS, CLASSES, ds_len=10)
    again, _ = ds.load_dfire_split(tmp_path, "train", DFIRE_IDS, CLASSES, ds_len=10)
    larger, _ = ds.load_dfire_split(tmp_path, "train", DFIRE_IDS, CLASSES, ds_len=12)
    everything, _ = ds.load_dfire_split(tmp_path, "train", DFIRE_IDS, CLASSES, ds_len=100)
    assert [s.image_path for s in first] == [s.image_path for s in again]
    assert names(first) < names(larger) and len(everything) == 30
    assert names(first) != {f"img{i:03d}" for i in range(10)}  # shuffled, not the first ten
    assert report.n_kept == 10 and report.notes["left out by DS_LEN=10"] == 20


@pytest.mark.parametrize("bad", [0, -3, "5", 2.5])
def test_bad_ds_len_names_the_key(tmp_path, bad):
    make_plain_dfire(tmp_path, "train", 2)
    with pytest.raises(ValueError, match="DS_LEN"):
        ds.load_dfire_split(tmp_path, "train", DFIRE_IDS, CLASSES, ds_len=bad)


# ------------------------------------------------------------------------------- FASDD
FASDD_FIXTURE = {  # file name -> (label text or None, valid image)
    "both_CV001.jpg": (F_FIRE + F_SMOKE, True),
    "fire_CV002.jpg": (F_FIRE, True),
    "smoke_CV003.jpg": (F_SMOKE, True),
    "neither_CV004.jpg": (None, True),
    "neither_CV005.jpg": ("", True),
    "fire_CV006.jpg": (F_SMOKE, True),  # keyword says fire, boxes say smoke
    "smoke_CV007.jpg": ("1 0.5 0.5 oops 0.2\n", True),
    "both_CV008.jpg": (F_FIRE + F_SMOKE, False),
    "img009.jpg": (F_FIRE, True),  # no keyword
}
FASDD_KEPT = {
    "both_CV001": [1, 1],
    "fire_CV002": [0, 1],
    "smoke_CV003": [1, 0],
    "neither_CV004": [0, 0],
    "neither_CV005": [0, 0],
    "img009": [0, 1],
}


def make_fasdd(root, subset="CV"):
    annotations = root / "annotations" / f"YOLO_{subset}"
    for index, (name, (label, valid)) in enumerate(FASDD_FIXTURE.items()):
        if valid:
            write_jpeg(root / "images" / name, seed=index)
        else:
            write_text(root / "images" / name, "garbage")
        if label is not None:
            write_text(annotations / "labels" / f"{Path(name).stem}.txt", label)
    lines = [
        str(root / "images" / "both_CV001.jpg"),  # absolute, exists
        "images/fire_CV002.jpg",  # relative to the subset root
        "/data/elsewhere/FASDD_CV/images/smoke_CV003.jpg",  # absolute, elsewhere: by name
        "C:\\FASDD\\images\\neither_CV004.jpg",  # Windows path: by name
        "neither_CV005.jpg",
        "",
        "fire_CV006.jpg",
        "smoke_CV007.jpg",
        "both_CV008.jpg",
        "img009.jpg",
        "images/fire_CV010.jpg",  # not there
        "images/both_CV001.jpg",  # listed twice
    ]
    write_text(annotations / "train.txt", "\n".join(lines) + "\n")
    write_text(annotations / "val.txt", "images/fire_CV002.jpg\nimages/neither_CV005.jpg\n")
    write_text(annotations / "test.txt", "images/smoke_CV003.jpg\n")
    return root


def test_fasdd_resolves_paths_cross_checks_names_and_counts_skips(tmp_path):
    samples, report = ds.load_fasdd_split(make_fasdd(tmp_path), "CV", "train", FASDD_IDS, CLASSES)
    assert names(samples) == set(FASDD_KEPT)
    for sample in samples:
        np.testing.assert_array_equal(sample.target, FASDD_KEPT[sample.image_path.stem])
        assert sample.image_path.exists()
    assert dict(report.kept) == {"both": 1, "fire": 2, "smoke": 1, "none": 2}
    assert dict(report.skipped) == {
        ds.KEYWORD_DISAGREES: 1,
        NON_NUMERIC: 1,
        ds.UNREADABLE_IMAGE: 1,
        ds.MISSING_IMAGE: 1,
    }
    assert dict(report.notes) == {ds.FASDD_NO_LABEL: 1, ds.NO_KEYWORD: 1, ds.DUPLICATE_ENTRY: 1}
    assert str(report).startswith("FASDD_CV train: 6 images kept, 4 skipped")


def test_fasdd_missing_list_file_names_path_and_key(tmp_path):
    make_fasdd(tmp_path, "UAV")
    (tmp_path / "annotations" / "YOLO_UAV" / "val.txt").unlink()
    with pytest.raises(FileNotFoundError) as error:
        ds.load_fasdd_split(tmp_path, "UAV", "val", FASDD_IDS, CLASSES)
    assert str(tmp_path / "annotations" / "YOLO_UAV" / "val.txt") in str(error.value)
    assert "FASDD_UAV_DIR" in str(error.value)


@pytest.mark.parametrize(
    "stem, expected",
    [
        ("both_CV001", "both"),
        ("neither_RS12", "none"),
        ("smoke_UAV3", "smoke"),
        ("fire_x", "fire"),
        ("smoke_fire_2", "both"),
        ("img12", None),
        ("firework_1", None),
    ],
)
def test_name_keyword(stem, expected):
    assert ds.name_keyword_category(f"{stem}.jpg", CLASSES) == expected


# ------------------------------------------------------------------------------- build_split
def make_cfg(tmp_path, **overrides):
    values = dict(
        DATASET="dfire",
        CLASSES=CLASSES,
        DFIRE_CLASS_IDS=DFIRE_IDS,
        FASDD_CLASS_IDS=FASDD_IDS,
        DFIRE_DIR=str(tmp_path / "dfire"),
        DEMO_DIR=str(tmp_path / "demo"),
        FASDD_CV_DIR=str(tmp_path / "cv"),
        FASDD_UAV_DIR=str(tmp_path / "uav"),
        FASDD_RS_DIR=str(tmp_path / "rs"),
        DS_LEN=None,
        VAL_FRACTION=0.25,
        DEMO_SPLITS={"train": 8, "val": 4, "test": 4},
        DEMO_IMAGE_SIZE=48,
        DEMO_SEED=3,
        IMAGE_CACHE="memory",
        CACHE_KEY="stat",
        CACHE_DIR=str(tmp_path / "cache"),
    )
    return SimpleNamespace(**{**values, **overrides})


def test_dfire_val_is_a_stable_slice_carved_from_train(tmp_path, capsys):
    make_plain_dfire(tmp_path / "dfire", "train", 40)
    make_plain_dfire(tmp_path / "dfire", "test", 6)
    cfg = make_cfg(tmp_path)
    train, train_report = ds.build_split(cfg, "train")
    val, val_report = ds.build_split(cfg, "val")
    test, _ = ds.build_split(cfg, "test")
    assert len(val) == 10 and len(train) == 30 and len(test) == 6
    assert not names(train) & names(val)
    assert names(train) | names(val) == {f"img{i:03d}" for i in range(40)}
    assert names(ds.build_split(cfg, "val")[0]) == names(val)
    assert val_report.name == "D-Fire val" and train_report.n_kept == 30
    assert "D-Fire val: 10 images kept, 0 skipped" in capsys.readouterr().out


def test_unknown_dataset_names_key_and_choices(tmp_path):
    with pytest.raises(ValueError, match=r"DATASET.*'dfire\+fasdd'"):
        ds.build_split(make_cfg(tmp_path, DATASET="imagenet"), "train")


def test_fasdd_combined_concatenates_subsets_and_reports(tmp_path):
    for subset in ("cv", "uav", "rs"):
        make_fasdd(tmp_path / subset, subset.upper())
    samples, report = ds.build_split(make_cfg(tmp_path, DATASET="fasdd"), "train")
    assert len(samples) == 18 and report.n_kept == 18 and report.n_skipped == 12
    assert [part.name for part in report.parts] == [
        "FASDD_CV train",
        "FASDD_UAV train",
        "FASDD_RS train",
    ]
    assert report.skipped[ds.MISSING_IMAGE] == 3


def test_dfire_plus_fasdd_val_and_ds_len(tmp_path):
    make_plain_dfire(tmp_path / "dfire", "train", 20)
    for subset in ("cv", "uav", "rs"):
        make_fasdd(tmp_path / subset, subset.upper())
    samples, report = ds.build_split(make_cfg(tmp_path, DATASET="dfire+fasdd"), "val")
    assert len(samples) == 5 + 3 * 2
    limited, limited_report = ds.build_split(
        make_cfg(tmp_path, DATASET="dfire+fasdd", DS_LEN=4), "val"
    )
    assert len(limited) == 4 and names(limited) <= names(samples)
    assert limited_report.notes["left out by DS_LEN=4"] == 7


def test_demo_dataset_is_generated_on_first_use(tmp_path):
    cfg = make_cfg(tmp_path, DATASET="demo")
    samples, report = ds.build_split(cfg, "val")
    assert len(samples) == 4 and report.n_skipped == 0 and report.name == "demo val"
    assert (tmp_path / "demo" / "test" / "images").is_dir()


# ------------------------------------------------------------------------------- torch dataset
@pytest.fixture
def plain_samples(tmp_path):
    root = make_plain_dfire(tmp_path, "train", 6)
    return ds.load_dfire_split(root, "train", DFIRE_IDS, CLASSES)[0]


def test_dataset_without_augmentation_is_the_shared_preprocess(plain_samples):
    dataset = ds.FireSmokeDataset(plain_samples, img_size=12, augment=False, seed=0)
    image, target = dataset[2]
    expected = preprocess(load_rgb(plain_samples[2].image_path), 12)
    assert torch.equal(image, expected) and image.dtype == torch.float32
    assert image.shape == (3, 12, 12) and 0 <= image.min() and image.max() <= 255
    assert target.dtype == torch.float32
    np.testing.assert_array_equal(target.numpy(), plain_samples[2].target)


def items(dataset, order):
    return {index: dataset[index][0] for index in order}


def test_augmentation_depends_only_on_seed_epoch_and_index(plain_samples):
    forward = ds.FireSmokeDataset(plain_samples, 12, augment=True, seed=7)
    backward = ds.FireSmokeDataset(plain_samples, 12, augment=True, seed=7)
    a, b = items(forward, range(6)), items(backward, reversed(range(6)))
    assert all(torch.equal(a[i], b[i]) for i in range(6))
    assert all(torch.equal(a[i], forward[i][0]) for i in range(6))  # repeatable
    forward.set_epoch(1)
    assert not all(torch.equal(a[i], forward[i][0]) for i in range(6))
    backward.set_epoch(1)
    assert all(torch.equal(forward[i][0], backward[i][0]) for i in range(6))
    other_seed = ds.FireSmokeDataset(plain_samples, 12, augment=True, seed=8)
    assert not all(torch.equal(a[i], other_seed[i][0]) for i in range(6))


def test_augmentation_does_not_depend_on_worker_count(plain_samples):
    dataset = ds.FireSmokeDataset(plain_samples, 12, augment=True, seed=3)
    dataset.set_epoch(2)
    batches = []
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(dataset, batch_size=6, num_workers=workers)
        batches.append(next(iter(loader))[0])
    assert torch.equal(batches[0], batches[1])


def test_prepare_data_lists_every_skipped_file_in_the_run_folder(tmp_path):
    make_dfire(tmp_path / "dfire")
    make_plain_dfire(tmp_path / "dfire", "test", 4)
    paths = RunPaths(tmp_path / "run")
    data = prepare_data(
        ClassifyTask(), make_cfg(tmp_path, IMG_SIZE=16, AUGMENT=False, SEED=0), paths
    )
    listed = pd.read_csv(paths.data_skips)
    assert len(listed) == sum(part.report.n_skipped for part in data.values()) == 12
    assert set(listed["set"]) == {"D-Fire train"}
    assert str(tmp_path / "dfire" / "train" / "labels" / "classes.yaml") in set(listed["file"])
