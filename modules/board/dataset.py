"""A folder of images on the board, with or without YOLO labels -> targets and metrics (numpy).

Labels are found as D-Fire lays them out (`x/images/a.jpg` -> `x/labels/a.txt`) or beside the
image (`a.jpg` -> `a.txt`); `class cx cy w h` per line, an empty file means neither class. An
image whose label file is missing or unreadable is skipped from the metrics, and counted.
"""

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def image_files(folder):
    """The folder's image files (or those in its images/ subfolder), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such image folder")
    if (folder / "images").is_dir():
        folder = folder / "images"
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def label_file(image_path):
    image_path = Path(image_path)
    if image_path.parent.name == "images":
        return image_path.parent.parent / "labels" / f"{image_path.stem}.txt"
    return image_path.with_suffix(".txt")


def read_target(path, class_ids, classes):
    """A label file -> int (len(classes),) presence vector, or a skip reason string."""
    if not Path(path).is_file():
        return "no label file"
    target = np.zeros(len(classes), np.int64)
    for line in Path(path).read_text().splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5 or fields[0] not in class_ids:
            return "bad label line"
        target[classes.index(class_ids[fields[0]])] = 1
    return target


def read_targets(image_paths, class_ids, classes):
    """(targets (M, C) for the labelled images, their indices, {skip reason: count}).

    `class_ids` maps the label files' class ids (str) to names in `classes`."""
    targets, indices, skipped = [], [], {}
    for index, path in enumerate(image_paths):
        target = read_target(label_file(path), class_ids, classes)
        if isinstance(target, str):
            skipped[target] = skipped.get(target, 0) + 1
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
