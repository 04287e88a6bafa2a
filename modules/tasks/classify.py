"""The classification task: the fire/smoke multi-label classifier (modules/stages/train_fp32.py)."""

import torch

from modules.models.quant_layers import build_quant_model
from modules.quantization.ptq import ptq_bit_widths
from modules.reporting.plots import plot_image_grid, plot_training_curves
from modules.reporting.report import save_table
from modules.stages import train_brevitas, train_fp32
from modules.tasks.base import Task


class ClassifyTask(Task):
    name, metric, metric_label = "classify", "mean_f1", "test mean F1"

    def prepare_data(self, cfg, paths=None):
        return train_fp32.prepare_data(cfg, paths)

    def build_model(self, cfg):
        """FP32, or the Brevitas model when config.BREVITAS_MODEL."""
        return train_fp32.build_configured_model(cfg)

    def build_ptq_model(self, cfg):
        torch.manual_seed(cfg.SEED)
        bits = ptq_bit_widths(cfg)
        return build_quant_model(cfg.MODEL, len(cfg.CLASSES), cfg.WIDTH_MULT, bits)

    def make_trainer(self, cfg, model, data, paths, kind, epochs=None):
        return train_fp32.make_trainer(cfg, model, data, paths, kind)

    def export_quantized(self, cfg, model, paths):
        """QONNX with and without the bipolar head; "deploy" is what notebook 03 compiles."""
        exports = train_brevitas.export_all(cfg, model, paths)
        return {**exports, "deploy": exports["qonnx_bipolar_clean"]}

    def verify_quantized(self, cfg, model, data, paths, result, exports):
        """Bipolar head vs logit >= 0 on the test set, QONNX vs Brevitas; raises on mismatch."""
        head = train_brevitas.bipolar_check(cfg, model, data)
        save_table(paths, "02_bipolar_head_check", head.summary)
        equivalence = train_brevitas.check_exports(cfg, model, data["test"].dataset, exports)
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
