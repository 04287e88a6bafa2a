"""Multi-label metrics: per-class precision, recall, F1, accuracy and their mean F1."""

import pandas as pd

from modules.board.dataset import class_metrics


def classification_metrics(targets, decisions, classes):
    """Dict with '<class>_precision', ..., 'mean_f1'. Empty classes score 0, never NaN.

    The board runtime's numpy definition, so the board's figures and the repo's are one."""
    return class_metrics(targets, decisions, classes)


def metrics_table(metrics, classes):
    """Per-class rows (precision, recall, f1, accuracy) plus the mean F1, as a DataFrame."""
    rows = {
        c: {k: metrics[f"{c}_{k}"] for k in ("precision", "recall", "f1", "accuracy")}
        for c in classes
    }
    table = pd.DataFrame(rows).T
    table.loc["mean", "f1"] = metrics["mean_f1"]
    return table
