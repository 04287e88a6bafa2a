"""One small interface over what differs between the tasks; notebooks call it, never branch.

task = task_for(config)                   # ClassifyTask or DetectTask from config.TASK
data = task.prepare_data(config)          # split -> SplitData(dataset, report)
model = task.build_model(config)          # the FP32 model
trainer = task.make_trainer(config, model, data, paths, kind)
result, table = task.evaluate_on_test(config, model, data, paths, kind, checkpoint)
result.metrics[task.metric]               # the headline: "mean_f1" or "map50"
"""

from abc import ABC, abstractmethod

TASKS = ("classify", "detect")


class Task(ABC):
    name: str
    metric: str  # key of the headline metric in result.metrics
    metric_label: str  # how the notebooks print it

    @abstractmethod
    def prepare_data(self, cfg, paths=None):
        """split -> SplitData; with `paths`, skipped files go to the run's data_skips CSV."""

    @abstractmethod
    def build_model(self, cfg):
        """FP32, or the Brevitas model (config bit widths) when config.BREVITAS_MODEL."""

    @abstractmethod
    def build_ptq_model(self, cfg):
        """The Brevitas model at the PTQ bit widths (PTQ_WEIGHT/ACT_BIT_WIDTH)."""

    @abstractmethod
    def make_trainer(self, cfg, model, data, paths, kind, epochs=None): ...

    @abstractmethod
    def export_quantized(self, cfg, model, paths):
        """QONNX files of the trained quantized model; key "deploy" names what 03 compiles."""

    @abstractmethod
    def verify_quantized(self, cfg, model, data, paths, result, exports):
        """Exported graphs vs Brevitas on test images; returns the table, raises on mismatch."""

    @abstractmethod
    def evaluate_on_test(self, cfg, model, data, paths, kind, checkpoint_path=None): ...

    @abstractmethod
    def sample_grid(self, cfg, data, paths, kind): ...

    @abstractmethod
    def prediction_grid(self, cfg, model, dataset, paths, kind): ...

    @abstractmethod
    def plot_curves(self, cfg, history, path): ...

    @abstractmethod
    def metric_floor(self, cfg):
        """The value the test metric must reach (config), or None."""


def task_for(cfg):
    """The task config.TASK names."""
    if cfg.TASK == "classify":
        from modules.tasks.classify import ClassifyTask

        return ClassifyTask()
    if cfg.TASK == "detect":
        from modules.tasks.detect import DetectTask

        return DetectTask()
    raise ValueError(f"config.TASK = {cfg.TASK!r}; choose one of {list(TASKS)}")


def require_classifier(cfg, notebook):
    """Notebooks 03-05 compile, build and deploy the classifier only (so far): say so up front
    instead of failing on a missing file later."""
    if cfg.TASK != "classify":
        raise NotImplementedError(
            f"notebook {notebook} runs config.TASK = 'classify' only; the detector "
            f"(TASK = {cfg.TASK!r}) goes through notebooks 01 and 02, and its FINN flow is "
            "checked by tests/test_darknet_finn.py. Run `firesmoke run --profile demo-detect "
            "--only 01 02`."
        )
