"""Multi-label metrics: per-class precision, recall, F1, accuracy and their mean F1."""

import numpy as np
import pandas as pd
from sklearn.metrics import multilabel_confusion_matrix


def classification_metrics(targets, decisions, classes):
    """Dict with '<class>_precision', ..., 'mean_f1'. Empty classes score 0, never NaN."""
    targets = np.asarray(targets).astype(np.int64)
    decisions = np.asarray(decisions).astype(np.int64)
    confusion = multilabel_confusion_matrix(targets, decisions, labels=range(len(classes)))
    result = {}
    for name, ((tn, fp), (fn, tp)) in zip(classes, confusion, strict=True):
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[f"{name}_precision"] = float(precision)
        result[f"{name}_recall"] = float(recall)
        result[f"{name}_f1"] = float(f1)
        result[f"{name}_accuracy"] = float((tp + tn) / max(len(targets), 1))
    result["mean_f1"] = float(np.mean([result[f"{c}_f1"] for c in classes]))
    return result


def metrics_table(metrics, classes):
    """Per-class rows (precision, recall, f1, accuracy) plus the mean F1, as a DataFrame."""
    rows = {
        c: {k: metrics[f"{c}_{k}"] for k in ("precision", "recall", "f1", "accuracy")}
        for c in classes
    }
    table = pd.DataFrame(rows).T
    table.loc["mean", "f1"] = metrics["mean_f1"]
    return table
