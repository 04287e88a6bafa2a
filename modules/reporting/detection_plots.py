"""Detection figures: images with true and predicted boxes, PR curves, training curves."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from modules.data.boxes import yolo_to_xyxy
from modules.reporting.plots import _save

COLOURS = ("cyan", "red", "yellow", "lime")  # per class index: smoke cyan, fire red


def draw_detections(ax, image, truths, detections, classes):
    """True boxes dashed, predictions solid with their score; colour = class."""
    height, width = image.shape[:2]
    ax.imshow(image)
    ax.axis("off")
    for row, xyxy in zip(truths, yolo_to_xyxy(truths[:, 1:], width, height), strict=True):
        x0, y0, x1, y1 = xyxy
        colour = COLOURS[int(row[0]) % len(COLOURS)]
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=colour, ls="--", lw=1))
    for x0, y0, x1, y1, score, cls in detections:
        colour = COLOURS[int(cls) % len(COLOURS)]
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=colour, lw=1.5))
        ax.text(x0, y0, f"{classes[int(cls)]} {score:.2f}", color=colour, fontsize=6, va="bottom")


def plot_box_grid(images, truths, detections, classes, path=None, cols=4):
    """Images (N, H, W, 3 uint8) with true (dashed) and predicted (solid) boxes."""
    rows = int(np.ceil(len(images) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, truth, dets in zip(axes.flat, images, truths, detections, strict=False):
        draw_detections(ax, image, np.asarray(truth).reshape(-1, 5), dets, classes)
    fig.suptitle("dashed: true boxes, solid: predictions", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_detection_pr(metrics, path=None):
    """COCO's interpolated precision-recall curve per class at IoU 0.5."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for name, precision in metrics.precision.items():
        valid = precision > -1
        ax.plot(
            metrics.recall[valid], precision[valid], label=f"{name} AP {metrics.ap50[name]:.3f}"
        )
    ax.set(title=f"PR at IoU 0.5 (mAP@0.5 {metrics.map50:.3f})", xlabel="recall",
           ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.02))  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_detection_curves(history, path=None):
    """Loss (train/val) and validation mAP per epoch."""
    fig, (ax_loss, ax_map) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(history["epoch"], history["train_loss"], "o-", label="train")
    ax_loss.plot(history["epoch"], history["val_loss"], "o-", label="val")
    ax_loss.set(title="Loss", xlabel="epoch", ylabel="YOLO loss (summed over the batch)")
    for key, label in (("val_map50", "mAP@0.5"), ("val_map50_95", "mAP@0.5:0.95")):
        ax_map.plot(history["epoch"], history[key], "o-", label=label)
    ax_map.set(title="Validation mAP", xlabel="epoch", ylim=(0, 1.02))
    for ax in (ax_loss, ax_map):
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)
