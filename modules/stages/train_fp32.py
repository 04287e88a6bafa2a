"""Notebook 01's steps (data, model, training, test evaluation, ONNX export); 02, 03 and 05 reuse
the data and model steps."""

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from modules.board.decisions import decide
from modules.data.datasets import SPLITS, FireSmokeDataset, build_split
from modules.data.image_cache import CacheSettings
from modules.models.architecture import build_model
from modules.models.quant_layers import BitWidths, build_quant_model
from modules.quantization.equivalence import equivalence_table, onnx_stage, torch_stage
from modules.quantization.export import export_fp32_onnx
from modules.reporting.plots import (
    plot_confusion_matrices,
    plot_image_grid,
    plot_pr_curves,
    plot_training_curves,
)
from modules.reporting.report import save_table
from modules.run_paths import run_paths
from modules.training.checkpoints import atomic_write_text, load_checkpoint
from modules.training.device import loader_workers
from modules.training.distributed import World, current_world, main_process_first
from modules.training.loss import BCELoss
from modules.training.metrics import metrics_table
from modules.training.trainer import Trainer, evaluate, make_loader, placement


@dataclass
class SplitData:
    dataset: FireSmokeDataset
    report: object


def prepare_data(cfg, paths=None):
    """Datasets for train (augmented), val and test, each decoded once into the image cache
    (config.IMAGE_CACHE). The demo data is generated on first use. Under torchrun rank 0
    generates and caches first; the other ranks then read what it wrote. With `paths`, every
    skipped file is listed in the run's data_skips CSV."""
    data, cache = {}, CacheSettings.from_config(cfg)
    with main_process_first():
        for split in SPLITS:
            samples, report = build_split(cfg, split)
            augment = split == "train" and cfg.AUGMENT
            dataset = FireSmokeDataset(samples, cfg.IMG_SIZE, augment, cfg.SEED)
            data[split] = SplitData(dataset.use_cache(cache, f"{cfg.DATASET}_{split}"), report)
    if paths is not None and current_world().is_main:
        write_skip_list(data, paths)
    return data


def write_skip_list(data, paths):
    """Every skipped file of every split, with its reason, in the run's data_skips CSV."""
    skips = pd.concat([part.report.skip_list() for part in data.values()], ignore_index=True)
    atomic_write_text(skips.to_csv(index=False), paths.data_skips)


def build_fp32_model(cfg):
    torch.manual_seed(cfg.SEED)  # same initial weights for the same seed
    return build_model(cfg.MODEL, len(cfg.CLASSES), cfg.WIDTH_MULT)


def build_configured_model(cfg, bipolar_output=False):
    """config.BREVITAS_MODEL picks the FP32 or the quantized model (bit widths from config)."""
    if not cfg.BREVITAS_MODEL:
        return build_fp32_model(cfg)
    torch.manual_seed(cfg.SEED)
    bits = BitWidths.from_config(cfg)
    return build_quant_model(cfg.MODEL, len(cfg.CLASSES), cfg.WIDTH_MULT, bits, bipolar_output)


def model_kind(cfg):
    """Names what a checkpoint holds; resuming refuses a checkpoint of another kind."""
    if not cfg.BREVITAS_MODEL:
        return "fp32"
    return f"brevitas-{BitWidths.from_config(cfg).signature}"


def init_from_fp32(model, checkpoint_path, allow_partial=False):
    """Copy FP32 weights into the quantized model by parameter name; returns what matched and
    what did not (quantizer-only tensors stay at their initial values). FP32 tensors that find
    no tensor of their name and shape (another MODEL or WIDTH_MULT) are an error unless
    `allow_partial` (config.QAT_INIT_ALLOW_PARTIAL)."""
    fp32 = load_checkpoint(checkpoint_path, expected_kind="fp32")["model"]
    own = model.state_dict()
    copied = {k: v for k, v in fp32.items() if k in own and own[k].shape == v.shape}
    unused = sorted(set(fp32) - set(copied))
    if unused and not allow_partial:
        shown = ", ".join(
            f"{k} {tuple(fp32[k].shape)} vs {tuple(own[k].shape) if k in own else 'absent'}"
            for k in unused[:3]
        )
        raise ValueError(
            f"{checkpoint_path} does not fit this model: {len(unused)} of {len(fp32)} FP32 "
            f"tensors have no match ({shown}, ...); was it trained with another MODEL or "
            "WIDTH_MULT? Retrain FP32 with these settings, set QAT_INIT_FROM_FP32 = False, or "
            "QAT_INIT_ALLOW_PARTIAL = True to copy only the tensors that fit"
        )
    model.load_state_dict(copied, strict=False)
    return {
        "copied": sorted(copied),
        "fp32_only": unused,
        "left_at_init": sorted(set(own) - set(copied)),
    }


def make_trainer(cfg, model, data, paths, kind):
    loss_fn = BCELoss(cfg.CLASSES, cfg.SMOKE_PRECISION_WEIGHT)
    trainer = Trainer(model, loss_fn, data["train"].dataset, data["val"].dataset, cfg, paths, kind)
    if cfg.LOAD_MODEL:
        trainer.resume(cfg.LOAD_MODEL_FILE)
    return trainer


def evaluate_on_test(cfg, model, data, paths, kind, checkpoint_path=None):
    """Test metrics of `model` (loaded from `checkpoint_path` when given), with plots and a JSON
    of the metrics in the run folder. Returns (EvalResult, metrics DataFrame)."""
    if checkpoint_path is not None:
        model.load_state_dict(load_checkpoint(checkpoint_path, expected_kind=kind)["model"])
    place = placement(cfg, World())  # this process alone: rank 0 after a torchrun training
    loader = make_loader(data["test"].dataset, cfg.BATCH_SIZE, loader_workers(cfg.NUM_WORKERS))
    loss_fn = BCELoss(cfg.CLASSES, cfg.SMOKE_PRECISION_WEIGHT).to(place.device)
    model.to(place.device)
    try:
        result = evaluate(
            model, loader, loss_fn, cfg.CLASSES, cfg.DECISION_THRESHOLD, "test", place
        )
    finally:
        model.to("cpu")
    decisions = decide(result.logits, cfg.DECISION_THRESHOLD)
    plot_confusion_matrices(
        result.targets, decisions, cfg.CLASSES, paths.plot(f"{kind}_test_confusion.png")
    )
    plot_pr_curves(result.targets, result.logits, cfg.CLASSES, paths.plot(f"{kind}_test_pr.png"))
    paths.test_metrics(kind).write_text(json.dumps(result.metrics, indent=2))
    return result, metrics_table(result.metrics, cfg.CLASSES)


def sample_images(dataset, count, seed=0):
    """`count` evenly drawn images (HWC uint8 at model size) and their targets, for grids."""
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(len(dataset.samples), min(count, len(dataset.samples)), False))
    images = [np.array(dataset.image(i)) for i in indices]
    targets = np.stack([dataset.samples[i].target for i in indices])
    return indices, np.stack(images), targets


def prediction_grid(cfg, model, dataset, paths, kind, count=16):
    indices, images, targets = sample_images(dataset, count)
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        model.eval()
        logits = model(batch).numpy()
    predictions = decide(logits, cfg.DECISION_THRESHOLD)
    path = paths.plot(f"{kind}_test_predictions.png")
    return plot_image_grid(images, targets, cfg.CLASSES, predictions, path)


def export_fp32(cfg, model, dataset, paths):
    """Plain ONNX of the FP32 model, checked against PyTorch on EQUIVALENCE_IMAGES images."""
    path = export_fp32_onnx(model, cfg.IMG_SIZE, paths.fp32_onnx)
    count = min(cfg.EQUIVALENCE_IMAGES, len(dataset))
    images = torch.stack([dataset[i][0] for i in range(count)]).numpy()
    table, _ = equivalence_table({"pytorch": torch_stage(model), "onnx": onnx_stage(path)}, images)
    return path, table


def load_weights(model, checkpoint_path, kind):
    """Load a checkpoint's weights after checking it holds this kind of model."""
    model.load_state_dict(load_checkpoint(checkpoint_path, expected_kind=kind)["model"])
    return model.eval()


def load_fp32_if_present(cfg, checkpoint_path):
    """The FP32 model of notebook 01 (context in equivalence tables), or None."""
    if not checkpoint_path.is_file():
        return None
    return load_weights(build_fp32_model(cfg), checkpoint_path, "fp32")


def run_fp32_training(cfg):
    """Notebook 01's steps in order, for `firesmoke train --stage fp32` (and torchrun): every
    rank trains; rank 0 alone evaluates, plots and exports. Returns rank 0's summary."""
    paths = run_paths(cfg)
    with main_process_first():
        paths.ensure()
    data = prepare_data(cfg)
    model = build_fp32_model(cfg)
    trainer = make_trainer(cfg, model, data, paths, kind="fp32")
    history = trainer.fit()
    if not current_world().is_main:
        return None
    _, images, targets = sample_images(data["train"].dataset, 16)
    plot_image_grid(images, targets, cfg.CLASSES, path=paths.plot("fp32_train_samples.png"))
    plot_training_curves(history, cfg.CLASSES, paths.plot("fp32_curves.png"))
    result, _ = evaluate_on_test(cfg, model, data, paths, "fp32", trainer.best_path)
    prediction_grid(cfg, model, data["test"].dataset, paths, "fp32")
    _, onnx_check = export_fp32(cfg, model, data["test"].dataset, paths)
    save_table(paths, "01_fp32_onnx_check", onnx_check)
    return training_summary(trainer, history, result)


def training_summary(trainer, history, result):
    """What a command-line training prints: where the files are and the figures reached."""
    return {
        "kind": trainer.kind,
        "world_size": trainer.place.world.size,
        "device": str(trainer.place.device),
        "epochs": len(history),
        "best_val_mean_f1": float(history["val_mean_f1"].max()),
        "test_metrics": result.metrics,
        "best_checkpoint": str(trainer.best_path),
        "train_log": str(trainer.log_path),
    }
