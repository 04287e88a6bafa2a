"""The classifier on the accelerator (notebook 05): decisions of a split, per-dataset metrics."""

import numpy as np
import pandas as pd

from modules.tasks.classify.data import stack_dataset
from modules.training.metrics import classification_metrics


def run_dataset(accelerator, dataset, limit=None):
    """(images, targets, decisions) of a dataset through the accelerator, preprocessed with
    the same function as training."""
    images, targets = stack_dataset(dataset, limit)
    decisions = np.asarray(accelerator.decisions(accelerator.run(images))).astype(int)
    return images, targets.astype(int), decisions


def metrics_row(name, targets, decisions, classes):
    """One row like seed 001's board table: images, per-class F1/precision/recall, mean F1."""
    m = classification_metrics(targets, decisions, classes)
    row = {"dataset": name, "images": len(targets)}
    for c in classes:
        row.update({f"{c} F1": m[f"{c}_f1"], f"{c} precision": m[f"{c}_precision"]})
        row[f"{c} recall"] = m[f"{c}_recall"]
    row["mean F1"] = m["mean_f1"]
    return row


def per_dataset_table(rows):
    return pd.DataFrame(rows).set_index("dataset")
