"""Figures saved into the run's plots folder (and returned for display in notebooks)."""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay


def _save(fig, path):
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def plot_training_curves(history, classes, path=None):
    """Loss (train/val) and F1 (per class and mean) per epoch."""
    fig, (ax_loss, ax_f1) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(history["epoch"], history["train_loss"], "o-", label="train")
    ax_loss.plot(history["epoch"], history["val_loss"], "o-", label="val")
    ax_loss.set(title="Loss", xlabel="epoch", ylabel="BCE (summed over classes)")
    for name in [*classes, "mean"]:
        ax_f1.plot(history["epoch"], history[f"val_{name}_f1"], "o-", label=name)
    ax_f1.set(title="Validation F1", xlabel="epoch", ylabel="F1", ylim=(0, 1.02))
    for ax in (ax_loss, ax_f1):
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def plot_confusion_matrices(targets, decisions, classes, path=None):
    fig, axes = plt.subplots(1, len(classes), figsize=(4.2 * len(classes), 3.8))
    for i, (ax, name) in enumerate(zip(np.atleast_1d(axes), classes, strict=True)):
        ConfusionMatrixDisplay.from_predictions(
            targets[:, i],
            decisions[:, i],
            labels=[0, 1],
            display_labels=[f"no {name}", name],
            ax=ax,
            colorbar=False,
        )
        ax.set_title(name)
    fig.tight_layout()
    return _save(fig, path)


def plot_pr_curves(targets, logits, classes, path=None):
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for i, name in enumerate(classes):
        PrecisionRecallDisplay.from_predictions(targets[:, i], logits[:, i], name=name, ax=ax)
    ax.set(title="Precision-recall (test)", xlim=(0, 1.01), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    return _save(fig, path)


def label_text(vector, classes):
    names = [c for c, v in zip(classes, vector, strict=True) if v]
    return "+".join(names) if names else "none"


def plot_image_grid(images, targets, classes, predictions=None, path=None, cols=8):
    """Images (N,H,W,3 uint8) titled with their labels, and predictions when given
    (red title = wrong)."""
    rows = int(np.ceil(len(images) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.flat, images, strict=False)):
        ax.imshow(image)
        title, color = label_text(targets[i], classes), "black"
        if predictions is not None:
            predicted = label_text(predictions[i], classes)
            color = "black" if np.array_equal(predictions[i], targets[i]) else "red"
            title = f"true {title}\npred {predicted}"
        ax.set_title(title, fontsize=8, color=color)
    fig.tight_layout()
    return _save(fig, path)
