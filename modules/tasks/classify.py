"""The classification task: the fire/smoke multi-label classifier (modules/stages/train_fp32.py)."""

import torch

from modules.board.decisions import agreement_percent, decide
from modules.models.quant_layers import build_quant_model
from modules.quantization.equivalence import torch_stage
from modules.reporting.plots import (
    plot_confusion_matrices,
    plot_image_grid,
    plot_training_curves,
)
from modules.reporting.report import save_table
from modules.stages import pynq_inference, train_brevitas, train_fp32
from modules.tasks.base import AcceleratorResults, Task
from modules.training.metrics import classification_metrics


class ClassifyTask(Task):
    name, metric, metric_label = "classify", "mean_f1", "test mean F1"

    def prepare_data(self, cfg, paths=None):
        return train_fp32.prepare_data(cfg, paths)

    def build_model(self, cfg):
        """FP32, or the Brevitas model when config.BREVITAS_MODEL."""
        return train_fp32.build_configured_model(cfg)

    def build_quantized(self, cfg, bits):
        torch.manual_seed(cfg.SEED)
        return build_quant_model(cfg.MODEL, len(cfg.CLASSES), cfg.WIDTH_MULT, bits)

    def finn_model(self, cfg, model, bits):
        """The same weights with the bipolar output quantizer: the accelerator emits decisions."""
        return train_brevitas.bipolar_model(cfg, model, bits)

    def make_trainer(self, cfg, model, data, paths, kind, epochs=None):
        return train_fp32.make_trainer(cfg, model, data, paths, kind)

    def export_quantized(self, cfg, model, paths, bits=None):
        """QONNX with and without the bipolar head; "deploy" is what notebook 03 compiles."""
        exports = train_brevitas.export_all(cfg, model, paths, bits)
        return {**exports, "deploy": exports["qonnx_bipolar_clean"]}

    def verify_quantized(self, cfg, model, data, paths, result, exports, bits=None):
        """Bipolar head vs logit >= 0 on the test set, QONNX vs Brevitas; raises on mismatch."""
        head = train_brevitas.bipolar_check(cfg, model, data, bits)
        save_table(paths, "02_bipolar_head_check", head.summary)
        dataset = data["test"].dataset
        equivalence = train_brevitas.check_exports(cfg, model, dataset, exports, bits)
        save_table(paths, "02_qonnx_equivalence", equivalence)
        if head.agreement != 100.0:
            raise AssertionError("bipolar decisions must equal logit >= 0 on every test image")
        if head.metrics_with_head != result.metrics:
            raise AssertionError("metrics must not change with the bipolar head")
        if not (equivalence["identical_outputs_%"].dropna() == 100.0).loc[["qonnx bipolar"]].all():
            raise AssertionError(f"QONNX bipolar graph differs from Brevitas:\n{equivalence}")
        if not (equivalence["decision_agreement_%"].dropna() == 100.0).all():
            raise AssertionError(f"decisions differ between exported graphs:\n{equivalence}")
        return equivalence

    def evaluate_on_test(self, cfg, model, data, paths, kind, checkpoint_path=None):
        return train_fp32.evaluate_on_test(cfg, model, data, paths, kind, checkpoint_path)

    def test_arrays(self, dataset, limit=None):
        return train_brevitas.stack_dataset(dataset, limit)

    def hardware_metrics(self, cfg, finn_model, images, truth, emulated):
        """Metrics of the emulated accelerator's decisions, and their agreement with Brevitas."""
        decisions = decide(emulated.reshape(len(images), -1))
        metrics = classification_metrics(truth, decisions, cfg.CLASSES)
        brevitas = decide(torch_stage(finn_model)(images))
        metrics["agreement_with_brevitas_%"] = agreement_percent(decisions, brevitas)
        return metrics

    def accelerator_results(self, cfg, accelerator, dataset, finn_model, paths):
        """Per-dataset metrics, confusion matrices, a prediction grid, agreement with Brevitas."""
        images, targets, decisions = pynq_inference.run_dataset(accelerator, dataset)
        row = pynq_inference.metrics_row(cfg.DATASET, targets, decisions, cfg.CLASSES)
        table = pynq_inference.per_dataset_table([row])
        plots = [paths.plot("05_confusion.png"), paths.plot("05_predictions.png")]
        plot_confusion_matrices(targets, decisions, cfg.CLASSES, plots[0])
        grid = images[:16].transpose(0, 2, 3, 1).astype("uint8")
        plot_image_grid(grid, targets[:16], cfg.CLASSES, decisions[:16], plots[1])
        brevitas = decide(torch_stage(finn_model)(images))
        return AcceleratorResults(table, agreement_percent(brevitas, decisions), images, plots)

    def sample_grid(self, cfg, data, paths, kind):
        _, images, targets = train_fp32.sample_images(data["train"].dataset, 16)
        path = paths.plot(f"{kind}_train_samples.png")
        return plot_image_grid(images, targets, cfg.CLASSES, path=path)

    def prediction_grid(self, cfg, model, dataset, paths, kind):
        return train_fp32.prediction_grid(cfg, model, dataset, paths, kind)

    def plot_curves(self, cfg, history, path):
        return plot_training_curves(history, cfg.CLASSES, path)

    def metric_floor(self, cfg):
        return cfg.MIN_TEST_MEAN_F1
