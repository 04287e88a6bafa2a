"""The classification task (fire/smoke multi-label classifier): task.py is its Task."""

from modules.tasks.classify.task import ClassifyTask

__all__ = ["ClassifyTask"]
