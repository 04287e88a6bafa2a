"""Detection metrics of decoded head tensors (notebooks 03 and 05)."""

import numpy as np

from modules.board.detect import detect
from modules.tasks.detect.training import image_sizes
from modules.training.detection_metrics import coco_metrics


def decoded_metrics(heads, truth, settings, classes):
    """COCO metrics of head tensors decoded by the host's `detect`."""
    return coco_metrics(truth, detect(heads, settings), image_sizes(settings, len(truth)), classes)


def head_map(heads, truth, settings, classes):
    return decoded_metrics(heads, truth, settings, classes).as_dict()


def identical_percent(a, b):
    """% of images whose tensors are exactly equal."""
    a, b = np.asarray(a), np.asarray(b)
    same = (a.reshape(len(a), -1) == b.reshape(len(b), -1)).all(axis=1)
    return 100.0 * float(same.mean()) if len(same) else float("nan")
