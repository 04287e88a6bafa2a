"""A folder of images on the board, with or without YOLO labels -> targets and metrics (numpy).

Labels are found as D-Fire lays them out (`x/images/a.jpg` -> `x/labels/a.txt`) or beside the
image (`a.jpg` -> `a.txt`); `class cx cy w h` per line, an empty file means neither class. In
the D-Fire layout an image without a label file is neither class (D-Fire's convention, as
training reads it); elsewhere it is left out of the metrics. An image whose label file does
not parse is left out of the metrics and listed with its reason.
"""

from pathlib import Path

import numpy as np

from .yolo_labels import boxes_to_target, read_yolo_label

NO_LABEL_FILE = "no label file"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def image_folder(folder):
    """The folder holding the images: `folder`, or its images/ subfolder (D-Fire layout)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such image folder")
    return folder / "images" if (folder / "images").is_dir() else folder


def image_files(folder):
    """The folder's image files (or those in its images/ subfolder), sorted by name."""
    files = image_folder(folder).iterdir()
    return sorted(p for p in files if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def non_image_files(folder):
    """{path: reason} for the other files beside the images (label files beside their image
    and the labels/ folder excepted): what `--images` leaves out."""
    folder = image_folder(folder)
    stems = {p.stem for p in image_files(folder)}
    found = {}
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            if path.name != "labels":
                found[path] = "a folder (subfolders are not read)"
        elif path.suffix.lower() == ".txt" and path.stem in stems:
            continue  # the label beside its image
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            found[path] = f"not an image file ({path.suffix or 'no extension'})"
    return found


def label_file(image_path):
    image_path = Path(image_path)
    if image_path.parent.name == "images":
        return image_path.parent.parent / "labels" / f"{image_path.stem}.txt"
    return image_path.with_suffix(".txt")


def dfire_convention(label_path):
    """True when a missing label file means neither class: its labels/ folder exists."""
    label_path = Path(label_path)
    return label_path.parent.name == "labels" and label_path.parent.is_dir()


def read_target(path, class_ids, classes):
    """A label file -> int (len(classes),) presence vector, or a skip reason string (the
    reasons of `yolo_labels`, the parser training and `check-data` use)."""
    if not Path(path).is_file():
        return np.zeros(len(classes), np.int64) if dfire_convention(path) else NO_LABEL_FILE
    boxes = read_yolo_label(path, class_ids, classes)
    if isinstance(boxes, str):
        return boxes
    return boxes_to_target(boxes, len(classes)).astype(np.int64)


def read_targets(image_paths, class_ids, classes):
    """(targets (M, C) for the labelled images, their indices, {skip reason: image paths}).

    `class_ids` maps the label files' class ids to names in `classes`."""
    targets, indices, skipped = [], [], {}
    for index, path in enumerate(image_paths):
        target = read_target(label_file(path), class_ids, classes)
        if isinstance(target, str):
            skipped.setdefault(target, []).append(Path(path))
        else:
            targets.append(target)
            indices.append(index)
    return np.array(targets, np.int64).reshape(-1, len(classes)), indices, skipped


def class_metrics(targets, decisions, classes):
    """Per-class precision/recall/F1/accuracy and mean F1, keyed like the repo's
    `classification_metrics` ('<class>_f1', 'mean_f1'); empty classes score 0."""
    targets = np.asarray(targets).astype(bool)
    decisions = np.asarray(decisions).astype(bool)
    result = {}
    for i, name in enumerate(classes):
        t, d = targets[:, i], decisions[:, i]
        tp, fp, fn = np.sum(t & d), np.sum(~t & d), np.sum(t & ~d)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[f"{name}_precision"] = float(precision)
        result[f"{name}_recall"] = float(recall)
        result[f"{name}_f1"] = float(f1)
        result[f"{name}_accuracy"] = float(np.mean(t == d)) if len(t) else 0.0
    result["mean_f1"] = float(np.mean([result[f"{c}_f1"] for c in classes]))
    return result
