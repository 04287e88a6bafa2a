"""One small interface over what differs between the tasks; stages call it, never branch.

task = task_for(config)                   # ClassifyTask or DetectTask (modules/tasks/registry.py)
data = task.prepare_data(config)          # split -> SplitData(dataset, report)
model = task.build_model(config)          # the FP32 model
trainer = task.make_trainer(config, model, data, paths, kind)
result, table = task.evaluate_on_test(config, model, data, paths, kind, checkpoint)
result.metrics[task.metric]               # the headline: "mean_f1" or "map50"
head = task.finn_model(config, model, bits)  # what the accelerator computes (03-05)
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass

import pandas as pd


@dataclass
class SplitData:
    dataset: object  # a torch Dataset of the split (FireSmokeDataset, DetectionDataset)
    report: object  # what was kept and skipped (modules/data/datasets.py LoadReport)


@dataclass
class AcceleratorResults:
    """Notebook 05's outcome on one split."""

    table: pd.DataFrame  # one row per dataset: images and the task's metrics
    agreement: float  # % of images where the accelerator's result equals Brevitas'
    images: object  # the split's preprocessed images (N, 3, H, W), for throughput
    plots: list  # paths of the figures written


class Task(ABC):
    name: str
    metric: str  # key of the headline metric in result.metrics
    metric_label: str  # how the notebooks print it

    @abstractmethod
    def prepare_data(self, cfg):
        """split -> SplitData (demo data generated on first use)."""

    @abstractmethod
    def build_model(self, cfg):
        """FP32, or the Brevitas model (config bit widths) when config.BREVITAS_MODEL."""

    @abstractmethod
    def build_quantized(self, cfg, bits):
        """The Brevitas model at `bits` (a BitWidths), as trained (no deployment head)."""

    def build_ptq_model(self, cfg):
        """The Brevitas model at the PTQ bit widths (PTQ_WEIGHT/ACT_BIT_WIDTH)."""
        from modules.quantization.ptq import ptq_bit_widths

        return self.build_quantized(cfg, ptq_bit_widths(cfg))

    @abstractmethod
    def finn_model(self, cfg, model, bits):
        """The model whose output the accelerator computes (what 02 exports for FINN)."""

    @abstractmethod
    def test_arrays(self, dataset, limit=None):
        """(images (N, 3, H, W) float 0..255, ground truth) of a split, un-augmented."""

    @abstractmethod
    def hardware_metrics(self, cfg, finn_model, images, truth, emulated):
        """Metrics of the emulated accelerator's outputs and their agreement with Brevitas
        (key "agreement_with_brevitas_%")."""

    def weight_memory(self, cfg, bits):
        """Notebook 03: statements on the model's weight memory vs the part's BRAM, or None."""
        return None

    def deployment_fit(self, cfg, finn_model, bits, paths):
        """Notebook 03: the trained network compiled at config.FIT_IMG_SIZE with the
        fit-to-part search (`firesmoke cfg-summary --fit`'s dict), or None."""
        return None

    @abstractmethod
    def accelerator_results(self, cfg, accelerator, dataset, finn_model, paths):
        """Notebook 05: a split through an Accelerator; returns AcceleratorResults."""

    @abstractmethod
    def make_trainer(self, cfg, model, data, paths, kind, epochs=None): ...

    @abstractmethod
    def export_quantized(self, cfg, model, paths, bits=None):
        """QONNX files of the quantized model (at `bits`, config's when None); key "deploy"
        names what 03 compiles."""

    @abstractmethod
    def verify_quantized(self, cfg, model, data, paths, result, exports, bits=None):
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
