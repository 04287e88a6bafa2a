"""The detection task (Darknet-cfg Tiny-YOLO): task.py is its Task, the rest its own code."""

from modules.tasks.detect.settings import model_anchors
from modules.tasks.detect.task import DetectTask
from modules.tasks.detect.training import WarmupLinear, detector_optimizer

__all__ = ["DetectTask", "WarmupLinear", "detector_optimizer", "model_anchors"]
