"""The detection task: boxes, anchors, YOLOv5 loss and schedule, COCO mAP, box plots.

The model is the Darknet detector (modules/models/darknet.py) cut before the Detect decode; its
anchors are fitted on the training boxes and stored as a buffer on the model, so every
checkpoint carries the anchors its head was trained with.
"""

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from modules.board.detect import DetectSettings, detect, detect_raw
from modules.data.boxes import BoxAugmentation, DetectionDataset, collate_boxes
from modules.data.datasets import build_split
from modules.hardware.detector_fit import weight_fit
from modules.hardware.estimates import part_for_board
from modules.models.quant_layers import BitWidths
from modules.quantization.detect_head import head_quantization, write_detect_spec
from modules.quantization.equivalence import equivalence_table, onnx_stage, torch_stage
from modules.quantization.export import export_qonnx_model
from modules.reporting.detection_plots import (
    plot_box_grid,
    plot_detection_curves,
    plot_detection_pr,
)
from modules.reporting.report import save_table
from modules.stages.train_fp32 import SPLITS, SplitData, write_skip_list
from modules.tasks.base import AcceleratorResults, Task
from modules.training.anchors import fit_anchors
from modules.training.checkpoints import load_checkpoint
from modules.training.detection_metrics import coco_metrics
from modules.training.device import loader_workers
from modules.training.trainer import CPU, OPTIMIZERS, Trainer, make_loader, to_device
from modules.training.yolo_loss import YoloLoss

ANCHOR_BUFFER = "anchors"


def detector_optimizer(model, name, lr, momentum, weight_decay):
    """SGD (Nesterov) or Adam with YOLOv5's groups: decay on conv/linear weights only.

    Adam takes `momentum` as beta1, as YOLOv5's --optimizer Adam does.
    """
    decay, no_decay = [], []
    for module in model.modules():
        for param_name, param in module.named_parameters(recurse=False):
            is_norm = isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
            (decay if param_name == "weight" and not is_norm else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0}]  # fmt: skip
    if name.lower() == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(momentum, 0.999))
    if name.lower() == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True)
    raise ValueError(f"config.DET_OPTIMIZER = {name!r}; choose one of {OPTIMIZERS}")


class WarmupLinear:
    """LR factor per optimizer step: linear warm-up from 0, then linear decay to `final`.

    A class, not a lambda, so LambdaLR's state_dict stores it and a resumed run continues it.
    """

    def __init__(self, steps_per_epoch, epochs, warmup_epochs, final):
        self.steps_per_epoch, self.epochs = max(int(steps_per_epoch), 1), max(int(epochs), 1)
        self.warmup_steps = max(round(warmup_epochs * self.steps_per_epoch), 1)
        self.final = final

    def __call__(self, step):
        warm = min(1.0, (step + 1) / self.warmup_steps)
        progress = min(step / (self.steps_per_epoch * self.epochs), 1.0)
        return warm * ((1 - progress) * (1 - self.final) + self.final)


@dataclass
class DetectEvalResult:
    loss: float
    metrics: dict  # map50, map50_95, ap50_<class>
    detections: list  # per image (D, 6) in model-input pixels
    truths: list  # per image YOLO rows (class, cx, cy, w, h) normalised to the model input
    coco: object  # DetectionMetrics: per-class AP and PR curves

    @property
    def targets(self):
        """The ground truth per image (as the classifier's EvalResult.targets)."""
        return self.truths


def split_targets(targets, count):
    """Collated targets (M, 6) -> per image YOLO rows (n_i, 5)."""
    return [targets[targets[:, 0] == i, 1:].numpy() for i in range(count)]


@torch.no_grad()
def evaluate_detector(model, loader, loss_fn, settings, classes, desc="eval", place=CPU):
    """Loss and COCO mAP of `model` over `loader`, decoded by the host's `detect`."""
    model.eval()
    total, count, detections, truths = 0.0, 0, [], []
    for images, targets in tqdm(loader, desc=desc, leave=False):
        images, targets = to_device(images, targets, place.device, place.channels_last)
        head = model(images)
        loss, _ = loss_fn(head, targets)
        total, count = total + loss.item() * len(images), count + len(images)
        detections += detect(head.float().cpu().numpy(), settings)
        truths += split_targets(targets.cpu(), len(images))
    metrics = coco_metrics(truths, detections, _sizes(settings, truths), classes)
    loss = total / max(count, 1)
    return DetectEvalResult(loss, metrics.as_dict(), detections, truths, metrics)


class DetectLoop:
    """The detector's part of the Trainer loop (see trainer.ClassifyLoop)."""

    metric = "map50"
    collate_fn = staticmethod(collate_boxes)
    scheduler_per_batch = True

    def __init__(self, cfg, anchors, epochs=None):
        self.cfg, self.epochs = cfg, epochs or cfg.EPOCHS
        self.settings = eval_settings(cfg, anchors)

    def optimizer(self, model):
        cfg = self.cfg
        return detector_optimizer(
            model, cfg.DET_OPTIMIZER, cfg.DET_LEARNING_RATE, cfg.DET_MOMENTUM,
            cfg.DET_WEIGHT_DECAY,
        )  # fmt: skip

    def scheduler(self, optimizer, steps_per_epoch):
        cfg = self.cfg
        factor = WarmupLinear(
            steps_per_epoch, self.epochs, cfg.DET_WARMUP_EPOCHS, cfg.DET_FINAL_LR_FRACTION
        )
        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def evaluate(self, model, loader, loss_fn, place=CPU):
        classes = self.cfg.CLASSES
        return evaluate_detector(model, loader, loss_fn, self.settings, classes, place=place)


def eval_settings(cfg, anchors):
    """Decode settings for mAP (low confidence: the whole PR curve)."""
    anchors = tuple(map(tuple, np.asarray(anchors, dtype=float).tolist()))
    return DetectSettings(
        anchors, cfg.IMG_SIZE, cfg.DET_EVAL_CONF, cfg.DET_EVAL_IOU, cfg.DET_MAX_DETECTIONS
    )


def display_settings(cfg, anchors):
    """Decode settings for drawn boxes and the board (seed 000: conf 0.25, NMS IoU 0.4)."""
    anchors = tuple(map(tuple, np.asarray(anchors, dtype=float).tolist()))
    return DetectSettings(
        anchors, cfg.IMG_SIZE, cfg.DET_DISPLAY_CONF, cfg.DET_DISPLAY_IOU, cfg.DET_MAX_DETECTIONS
    )


def detection_datasets(cfg, samples_by_split):
    """DetectionDataset per split; only train is augmented."""
    augmentation = BoxAugmentation.from_config(cfg) if cfg.AUGMENT else None
    return {
        split: DetectionDataset(
            samples, cfg.IMG_SIZE, augmentation if split == "train" else None, cfg.SEED
        )
        for split, samples in samples_by_split.items()
    }


def fitted_anchors(cfg, train_samples, count):
    """IoU k-means anchors at IMG_SIZE; prints the fit and its best possible recall."""
    fit = fit_anchors(
        train_samples, cfg.IMG_SIZE, count, cfg.DET_ANCHOR_SEED, cfg.DET_ANCHOR_THRESHOLD
    )
    print(fit)
    return fit


def attach_anchors(model, anchors):
    """Store the anchors on the model (a buffer: saved in every checkpoint, not in the graph)."""
    tensor = torch.as_tensor(np.asarray(anchors), dtype=torch.float32).reshape(-1, 2)
    if ANCHOR_BUFFER in dict(model.named_buffers(recurse=False)):
        getattr(model, ANCHOR_BUFFER).copy_(tensor)
    else:
        model.register_buffer(ANCHOR_BUFFER, tensor)
    return model


def model_anchors(model):
    return getattr(model, ANCHOR_BUFFER).numpy().copy()


def detection_loss(cfg, anchors):
    return YoloLoss(
        anchors, len(cfg.CLASSES), cfg.IMG_SIZE, cfg.DET_LOSS_GAINS, cfg.DET_ANCHOR_THRESHOLD
    )


def build_darknet_detector(cfg, bits=None):
    """The Darknet detector of config.DETECTOR_CFG: FP32, or Brevitas with `bits`."""
    from modules.models.darknet import build_detector
    from modules.models.quant_layers import QuantLayers

    torch.manual_seed(cfg.SEED)  # same initial weights for the same seed
    layers = QuantLayers(bits) if bits is not None else None
    model = build_detector(
        cfg.DETECTOR_CFG, layers, cfg.DETECTOR_WIDTH_MULT, cfg.DARKNET_FINN_REPLACEMENTS
    )
    if cfg.DARKNET_WEIGHTS_FILE:
        from modules.models.darknet_weights import load_darknet_weights

        load_darknet_weights(model, cfg.DARKNET_WEIGHTS_FILE)
    return model


def head_layout(model):
    """(anchors, classes) of a detector: its DetectorSpec, or plain attributes (test models)."""
    spec = getattr(model, "spec", None)
    if spec is not None:
        return spec.num_anchors, spec.classes
    return model.num_anchors, model.classes


def batch_images(dataset, indices):
    """Un-augmented images (N, H, W, 3 uint8) and their boxes, for grids."""
    loaded = [dataset.load(int(i)) for i in indices]
    return np.stack([square for square, _, _ in loaded]), [boxes for _, boxes, _ in loaded]


class DetectTask(Task):
    name, metric, metric_label = "detect", "map50", "test mAP@0.5"

    def __init__(self, model_builder=None):
        self.model_builder = model_builder or build_darknet_detector
        self.train_samples, self.anchor_fit = None, None

    def prepare_data(self, cfg, paths=None):
        splits = {split: build_split(cfg, split) for split in SPLITS}
        self.train_samples = splits["train"][0]
        datasets = detection_datasets(cfg, {s: samples for s, (samples, _) in splits.items()})
        data = {split: SplitData(datasets[split], splits[split][1]) for split in SPLITS}
        if paths is not None:
            write_skip_list(data, paths)
        return data

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
        equivalence, _ = equivalence_table(stages, images)
        save_table(paths, "02_qonnx_equivalence", equivalence)
        if equivalence.loc["qonnx head", "max_abs_diff"] > 1e-5:
            raise AssertionError(f"QONNX head differs from Brevitas:\n{equivalence}")
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


def _sizes(settings, truth):
    return [(settings.img_size, settings.img_size)] * len(truth)


def decoded_metrics(heads, truth, settings, classes):
    """COCO metrics of head tensors decoded by the host's `detect`."""
    return coco_metrics(truth, detect(heads, settings), _sizes(settings, truth), classes)


def head_map(heads, truth, settings, classes):
    return decoded_metrics(heads, truth, settings, classes).as_dict()


def identical_percent(a, b):
    """% of images whose tensors are exactly equal."""
    a, b = np.asarray(a), np.asarray(b)
    same = (a.reshape(len(a), -1) == b.reshape(len(b), -1)).all(axis=1)
    return 100.0 * float(same.mean()) if len(same) else float("nan")
