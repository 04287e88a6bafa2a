"""The detection task: boxes, anchors, YOLOv5 loss and schedule, COCO mAP, box plots.

The model is the Darknet detector (model.py) cut before the Detect decode; its anchors are
fitted on the training boxes and stored as a buffer on the model (settings.py), so every
checkpoint carries the anchors its head was trained with. Training and evaluation: training.py.
"""

import dataclasses
import json

import numpy as np
import pandas as pd
import torch

from modules.board.detect import detect, detect_raw
from modules.data.boxes import BoxAugmentation, DetectionDataset, collate_boxes
from modules.data.datasets import SPLITS, build_split
from modules.hardware.detector_fit import config_fit, weight_fit
from modules.hardware.estimates import part_for_board
from modules.models.quant_layers import BitWidths
from modules.quantization import rounding_ties
from modules.quantization.detect_head import head_quantization, write_detect_spec
from modules.quantization.equivalence import equivalence_table, onnx_stage, torch_stage
from modules.quantization.export import export_qonnx_model
from modules.reporting.detection_plots import (
    plot_box_grid,
    plot_detection_curves,
    plot_detection_pr,
)
from modules.reporting.report import save_table
from modules.tasks.base import AcceleratorResults, SplitData, Task
from modules.tasks.detect.metrics import decoded_metrics, head_map, identical_percent
from modules.tasks.detect.model import build_darknet_detector, head_layout
from modules.tasks.detect.settings import (
    attach_anchors,
    display_settings,
    eval_settings,
    fitted_anchors,
    model_anchors,
)
from modules.tasks.detect.training import (
    DetectLoop,
    detection_loss,
    evaluate_detector,
)
from modules.training.checkpoints import load_checkpoint
from modules.training.device import loader_workers
from modules.training.trainer import Trainer, make_loader


def detection_datasets(cfg, samples_by_split):
    """DetectionDataset per split; only train is augmented."""
    augmentation = BoxAugmentation.from_config(cfg) if cfg.AUGMENT else None
    return {
        split: DetectionDataset(
            samples, cfg.IMG_SIZE, augmentation if split == "train" else None, cfg.SEED
        )
        for split, samples in samples_by_split.items()
    }


def batch_images(dataset, indices):
    """Un-augmented images (N, H, W, 3 uint8) and their boxes, for grids."""
    loaded = [dataset.load(int(i)) for i in indices]
    return np.stack([square for square, _, _ in loaded]), [boxes for _, boxes, _ in loaded]


class DetectTask(Task):
    name, metric, metric_label = "detect", "map50", "test mAP@0.5"

    def __init__(self, model_builder=None):
        self.model_builder = model_builder or build_darknet_detector
        self.train_samples, self.anchor_fit = None, None

    def prepare_data(self, cfg):
        splits = {split: build_split(cfg, split) for split in SPLITS}
        self.train_samples = splits["train"][0]
        datasets = detection_datasets(cfg, {s: samples for s, (samples, _) in splits.items()})
        return {split: SplitData(datasets[split], splits[split][1]) for split in SPLITS}

    def build_model(self, cfg):
        """FP32 detector (Brevitas when config.BREVITAS_MODEL), anchors fitted on the training
        boxes (prepare_data first)."""
        bits = BitWidths.from_config(cfg) if cfg.BREVITAS_MODEL else None
        return self._with_anchors(cfg, self.model_builder(cfg, bits))

    def build_quantized(self, cfg, bits):
        return self._with_anchors(cfg, self.model_builder(cfg, bits))

    def finn_model(self, cfg, model, bits):
        """The detector itself: the accelerator computes its quantized head tensor."""
        return model.eval()

    def _with_anchors(self, cfg, model):
        if self.train_samples is None:
            raise RuntimeError("DetectTask.build_model needs prepare_data first (anchor fit)")
        anchors, classes = head_layout(model)
        if classes != len(cfg.CLASSES):
            raise ValueError(
                f"the detector predicts {classes} classes but config.CLASSES has "
                f"{len(cfg.CLASSES)} ({cfg.CLASSES}); use a detector cfg with classes="
                f"{len(cfg.CLASSES)} (config.DETECTOR_CFG)"
            )
        self.anchor_fit = fitted_anchors(cfg, self.train_samples, anchors)
        return attach_anchors(model, self.anchor_fit.anchors)

    def make_trainer(self, cfg, model, data, paths, kind, epochs=None):
        anchors = model_anchors(model)
        loop = DetectLoop(cfg, anchors, epochs)
        train, val = data["train"].dataset, data["val"].dataset
        trainer = Trainer(model, detection_loss(cfg, anchors), train, val, cfg, paths, kind, loop)
        if cfg.LOAD_MODEL:
            trainer.resume(cfg.LOAD_MODEL_FILE)
        return trainer

    def evaluate_on_test(self, cfg, model, data, paths, kind, checkpoint_path=None):
        """Test mAP (best checkpoint when given) with a PR plot and a metrics JSON."""
        if checkpoint_path is not None:
            model.load_state_dict(load_checkpoint(checkpoint_path, expected_kind=kind)["model"])
        anchors = model_anchors(model)
        workers = loader_workers(cfg.NUM_WORKERS)
        loader = make_loader(
            data["test"].dataset, cfg.BATCH_SIZE, workers, collate_fn=collate_boxes
        )
        result = evaluate_detector(
            model, loader, detection_loss(cfg, anchors), eval_settings(cfg, anchors),
            cfg.CLASSES, desc="test",
        )  # fmt: skip
        plot_detection_pr(result.coco, paths.plot(f"{kind}_test_pr.png"))
        paths.test_metrics(kind).parent.mkdir(parents=True, exist_ok=True)
        paths.test_metrics(kind).write_text(json.dumps(result.metrics, indent=2))
        return result, pd.Series(result.metrics, name=kind).to_frame()

    def sample_grid(self, cfg, data, paths, kind, count=8):
        dataset = data["train"].dataset
        pairs = [dataset[i] for i in range(min(count, len(dataset)))]  # augmented, as trained
        images = np.stack([image.permute(1, 2, 0).to(torch.uint8).numpy() for image, _ in pairs])
        empty = [np.zeros((0, 6), np.float32)] * len(pairs)
        truths = [boxes.numpy() for _, boxes in pairs]
        path = paths.plot(f"{kind}_train_samples.png")
        return plot_box_grid(images, truths, empty, cfg.CLASSES, path)

    @torch.no_grad()
    def prediction_grid(self, cfg, model, dataset, paths, kind, count=8):
        """Test images with true boxes and the boxes shown at display confidence."""
        indices = np.linspace(0, len(dataset) - 1, min(count, len(dataset))).round()
        images, truths = batch_images(dataset, indices)
        model.eval()
        head = model(torch.from_numpy(images).permute(0, 3, 1, 2).float()).numpy()
        detections = detect(head, display_settings(cfg, model_anchors(model)))
        path = paths.plot(f"{kind}_test_predictions.png")
        return plot_box_grid(images, truths, detections, cfg.CLASSES, path)

    def plot_curves(self, cfg, history, path):
        return plot_detection_curves(history, path)

    def metric_floor(self, cfg):
        return cfg.MIN_TEST_MAP50

    def export_quantized(self, cfg, model, paths, bits=None):
        """QONNX of the head (cut before the decode) and detect_spec.json for the host, with
        the head scale read from the exported graph."""
        tag = (bits or BitWidths.from_config(cfg)).tag
        raw, clean = paths.qonnx(tag, "head", cleaned=False), paths.qonnx(tag, "head")
        export_qonnx_model(model, cfg.IMG_SIZE, raw, clean)
        settings = display_settings(cfg, model_anchors(model))
        spec = write_detect_spec(paths.detect_spec, head_quantization(clean), settings,
                                 cfg.CLASSES)  # fmt: skip
        return {"qonnx_head": raw, "qonnx_head_clean": clean, "detect_spec": spec,
                "deploy": clean}  # fmt: skip

    def verify_quantized(self, cfg, model, data, paths, result, exports, bits=None):
        """QONNX head vs Brevitas head on EQUIVALENCE_IMAGES test images, and the board's
        decode of the integer head vs the decode of the Brevitas head; raises on mismatch."""
        dataset = data["test"].dataset
        count = min(cfg.EQUIVALENCE_IMAGES, len(dataset))
        images = torch.stack([dataset[i][0] for i in range(count)]).numpy()
        stages = {"brevitas head": torch_stage(model), "qonnx head": onnx_stage(exports["deploy"])}
        equivalence, outputs = equivalence_table(stages, images)
        flips = rounding_ties.explain_stage(equivalence, outputs, "qonnx head", "brevitas head",
                                            model, exports["deploy"], images)  # fmt: skip
        save_table(paths, "02_qonnx_equivalence", equivalence)
        if flips is not None:
            save_table(paths, "02_rounding_ties", flips)
        if not rounding_ties.matches(equivalence, "qonnx head"):
            raise AssertionError(
                f"QONNX head differs from Brevitas:\n{equivalence}\nlayer by layer:\n{flips}"
            )
        brevitas = torch_stage(model)(images)  # (N, A*(5+C), H, W)
        scale = json.loads(exports["detect_spec"].read_text())["head"]["scale"]
        settings = display_settings(cfg, model_anchors(model))
        for board, reference in zip(detect_raw(np.round(brevitas / scale), exports["detect_spec"]),
                                    detect(brevitas, settings), strict=True):  # fmt: skip
            if board.shape != reference.shape or not np.allclose(board, reference, atol=1e-3):
                raise AssertionError("the board's decode of the integer head differs")
        return equivalence

    def test_arrays(self, dataset, limit=None):
        """Letterboxed images (N, 3, S, S) float 0..255 and per image YOLO rows (n_i, 5)."""
        count = len(dataset) if limit is None else min(limit, len(dataset))
        pairs = [dataset[i] for i in range(count)]
        return torch.stack([p[0] for p in pairs]).numpy(), [p[1].numpy() for p in pairs]

    def hardware_metrics(self, cfg, finn_model, images, truth, emulated):
        """COCO mAP of the emulated accelerator's head (decoded by the host's `detect`) next to
        Brevitas', and the share of images whose head tensors are identical."""
        brevitas = torch_stage(finn_model)(images)
        emulated = np.asarray(emulated, dtype=np.float32).reshape(brevitas.shape)
        settings = eval_settings(cfg, model_anchors(finn_model))
        metrics = head_map(emulated, truth, settings, cfg.CLASSES)
        metrics["brevitas_map50"] = head_map(brevitas, truth, settings, cfg.CLASSES)["map50"]
        metrics["agreement_with_brevitas_%"] = identical_percent(emulated, brevitas)
        return metrics

    def weight_memory(self, cfg, bits):
        """Weights vs BRAM of this detector and of seed 004's tinier-yolo at W1A3 (binary
        weights, 3-bit activations), each with what would make it fit (cfg only, no FINN)."""
        part = part_for_board(cfg.BOARD, cfg.BOARD_PARTS)
        fraction = cfg.RESOURCE_BUDGET_FRACTION
        fits = {
            "this detector": weight_fit(
                cfg.DETECTOR_CFG, bits, cfg.DETECTOR_WIDTH_MULT, part, fraction
            ),  # fmt: skip
            "seed 004: tinier-yolo W1A3": weight_fit(
                "tinier-yolo", dataclasses.replace(bits, weight=1, act=3), 1.0, part, fraction
            ),
        }
        columns = ["cfg", "bit_widths", "weight_bits", "bram_bits", "fits", "statement"]
        return pd.DataFrame({name: {c: getattr(f, c) for c in columns}
                             for name, f in fits.items()}).T  # fmt: skip

    def deployment_fit(self, cfg, finn_model, bits, paths):
        """The trained detector at FIT_IMG_SIZE (a fully convolutional network: the same
        weights at any input size) through the FINN flow and the fit-to-part search at the
        config's board, clock and EXTERNAL_WEIGHTS; saved as finn/fit_<size>/fit.json."""
        if cfg.FIT_IMG_SIZE is None:
            return None
        work = paths.finn / f"fit_{cfg.FIT_IMG_SIZE}"
        work.mkdir(parents=True, exist_ok=True)
        fit = config_fit(cfg.DETECTOR_CFG, bits, cfg.DETECTOR_WIDTH_MULT, cfg.FIT_IMG_SIZE, cfg,
                         str(work), model=finn_model)  # fmt: skip
        (work / "fit.json").write_text(json.dumps(fit, indent=2, default=str))
        return fit

    def accelerator_results(self, cfg, accelerator, dataset, finn_model, paths):
        """The split through the accelerator: mAP, per-class AP, PR curves and a grid of
        true and detected boxes; agreement = images whose head equals Brevitas' exactly."""
        images, truth = self.test_arrays(dataset)
        outputs = accelerator.run(images)
        heads = accelerator.model_outputs(outputs)
        settings = eval_settings(cfg, model_anchors(finn_model))
        metrics = decoded_metrics(heads, truth, settings, cfg.CLASSES)
        plots = [paths.plot("05_pr.png"), paths.plot("05_predictions.png")]
        plot_detection_pr(metrics, plots[0])
        shown = np.linspace(0, len(images) - 1, min(8, len(images))).round().astype(int)
        grid = images[shown].transpose(0, 2, 3, 1).astype(np.uint8)
        boxes = accelerator.detections(outputs[shown])  # display confidence, as on the board
        plot_box_grid(grid, [truth[i] for i in shown], boxes, cfg.CLASSES, plots[1])
        row = {"dataset": cfg.DATASET, "images": len(images), **metrics.as_dict()}
        table = pd.DataFrame([row]).set_index("dataset")
        agreement = identical_percent(heads, torch_stage(finn_model)(images))
        return AcceleratorResults(table, agreement, images, plots)
