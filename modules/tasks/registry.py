"""config.TASK -> the Task that implements it."""

from modules.tasks.classify import ClassifyTask
from modules.tasks.detect import DetectTask

TASKS = {"classify": ClassifyTask, "detect": DetectTask}


def task_for(cfg):
    """The task config.TASK names."""
    if cfg.TASK not in TASKS:
        raise ValueError(f"config.TASK = {cfg.TASK!r}; choose one of {list(TASKS)}")
    return TASKS[cfg.TASK]()
