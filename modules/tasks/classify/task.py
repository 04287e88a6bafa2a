"""The classification task: the fire/smoke multi-label classifier (seed 001)."""

from modules.board.decisions import agreement_percent, decide
from modules.quantization import rounding_ties
from modules.quantization.equivalence import torch_stage
from modules.reporting.plots import plot_confusion_matrices, plot_image_grid, plot_training_curves
from modules.reporting.report import save_table
from modules.tasks.base import AcceleratorResults, Task
from modules.tasks.classify import board, data, export, model, training
from modules.training.metrics import classification_metrics


class ClassifyTask(Task):
    name, metric, metric_label = "classify", "mean_f1", "test mean F1"

    def prepare_data(self, cfg):
        return data.prepare_data(cfg)

    def build_model(self, cfg):
        """FP32, or the Brevitas model when config.BREVITAS_MODEL."""
        return model.build_configured_model(cfg)

    def build_quantized(self, cfg, bits):
        return model.build_quantized_model(cfg, bits)

    def finn_model(self, cfg, net, bits):
        """The same weights with the bipolar output quantizer: the accelerator emits decisions."""
        return model.bipolar_model(cfg, net, bits)

    def make_trainer(self, cfg, net, splits, paths, kind, epochs=None):
        return training.make_trainer(cfg, net, splits, paths, kind)

    def export_quantized(self, cfg, net, paths, bits=None):
        """QONNX with and without the bipolar head; "deploy" is what notebook 03 compiles."""
        exports = export.export_all(cfg, net, paths, bits)
        return {**exports, "deploy": exports["qonnx_bipolar_clean"]}

    def verify_quantized(self, cfg, net, splits, paths, result, exports, bits=None):
        """Bipolar head vs logit >= 0 on the test set, QONNX vs Brevitas; raises on mismatch."""
        head = export.bipolar_check(cfg, net, splits, bits)
        save_table(paths, "02_bipolar_head_check", head.summary)
        dataset = splits["test"].dataset
        equivalence = export.check_exports(cfg, net, dataset, exports, bits)
        save_table(paths, "02_qonnx_equivalence", equivalence)
        if head.agreement != 100.0:
            raise AssertionError("bipolar decisions must equal logit >= 0 on every test image")
        if head.metrics_with_head != result.metrics:
            raise AssertionError("metrics must not change with the bipolar head")
        if not rounding_ties.matches(equivalence, "qonnx bipolar"):
            raise AssertionError(f"QONNX bipolar graph differs from Brevitas:\n{equivalence}")
        if not (equivalence["decision_agreement_%"].dropna() == 100.0).all():
            raise AssertionError(f"decisions differ between exported graphs:\n{equivalence}")
        return equivalence

    def evaluate_on_test(self, cfg, net, splits, paths, kind, checkpoint_path=None):
        return training.evaluate_on_test(cfg, net, splits, paths, kind, checkpoint_path)

    def test_arrays(self, dataset, limit=None):
        return data.stack_dataset(dataset, limit)

    def hardware_metrics(self, cfg, finn_model, images, truth, emulated):
        """Metrics of the emulated accelerator's decisions, and their agreement with Brevitas."""
        decisions = decide(emulated.reshape(len(images), -1))
        metrics = classification_metrics(truth, decisions, cfg.CLASSES)
        brevitas = decide(torch_stage(finn_model)(images))
        metrics["agreement_with_brevitas_%"] = agreement_percent(decisions, brevitas)
        return metrics

    def accelerator_results(self, cfg, accelerator, dataset, finn_model, paths):
        """Per-dataset metrics, confusion matrices, a prediction grid, agreement with Brevitas."""
        images, targets, decisions = board.run_dataset(accelerator, dataset)
        row = board.metrics_row(cfg.DATASET, targets, decisions, cfg.CLASSES)
        table = board.per_dataset_table([row])
        plots = [paths.plot("05_confusion.png"), paths.plot("05_predictions.png")]
        plot_confusion_matrices(targets, decisions, cfg.CLASSES, plots[0])
        grid = images[:16].transpose(0, 2, 3, 1).astype("uint8")
        plot_image_grid(grid, targets[:16], cfg.CLASSES, decisions[:16], plots[1])
        brevitas = decide(torch_stage(finn_model)(images))
        return AcceleratorResults(table, agreement_percent(brevitas, decisions), images, plots)

    def sample_grid(self, cfg, splits, paths, kind):
        _, images, targets = data.sample_images(splits["train"].dataset, 16)
        path = paths.plot(f"{kind}_train_samples.png")
        return plot_image_grid(images, targets, cfg.CLASSES, path=path)

    def prediction_grid(self, cfg, net, dataset, paths, kind):
        return training.prediction_grid(cfg, net, dataset, paths, kind)

    def plot_curves(self, cfg, history, path):
        return plot_training_curves(history, cfg.CLASSES, path)

    def metric_floor(self, cfg):
        return cfg.MIN_TEST_MEAN_F1
