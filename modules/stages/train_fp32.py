"""Notebook 01's sequence for either task (data -> model -> train -> evaluate -> export), over the
task interface (modules/tasks/). `firesmoke train --stage fp32` runs the same steps."""

import pandas as pd
import torch

from modules.models.quant_layers import BitWidths
from modules.quantization.equivalence import equivalence_table, onnx_stage, torch_stage
from modules.quantization.export import export_fp32_onnx
from modules.reporting.report import save_table
from modules.run_paths import run_paths
from modules.tasks.registry import task_for
from modules.training.checkpoints import atomic_write_text
from modules.training.distributed import current_world, leave_process_group, main_process_first


def prepare_data(task, cfg, paths=None):
    """The task's train, val and test splits. Under torchrun rank 0 generates the demo data and
    fills the image cache first; the other ranks then read what it wrote. With `paths`, every
    skipped file is listed in the run's data_skips CSV."""
    with main_process_first():
        data = task.prepare_data(cfg)
    if paths is not None and current_world().is_main:
        write_skip_list(data, paths)
    return data


def write_skip_list(data, paths):
    """Every skipped file of every split, with its reason, in the run's data_skips CSV."""
    skips = pd.concat([part.report.skip_list() for part in data.values()], ignore_index=True)
    atomic_write_text(skips.to_csv(index=False), paths.data_skips)


def model_kind(cfg):
    """Names what a checkpoint holds; resuming refuses a checkpoint of another kind."""
    if not cfg.BREVITAS_MODEL:
        return "fp32"
    return f"brevitas-{BitWidths.from_config(cfg).signature}"


def export_fp32(cfg, model, dataset, paths):
    """Plain ONNX of the FP32 model, checked against PyTorch on EQUIVALENCE_IMAGES images."""
    path = export_fp32_onnx(model, cfg.IMG_SIZE, paths.fp32_onnx)
    count = min(cfg.EQUIVALENCE_IMAGES, len(dataset))
    images = torch.stack([dataset[i][0] for i in range(count)]).numpy()
    table, _ = equivalence_table({"pytorch": torch_stage(model), "onnx": onnx_stage(path)}, images)
    return path, table


def run_fp32_training(cfg):
    """Notebook 01's steps in order, for `firesmoke train --stage fp32` (and torchrun): every
    rank trains; rank 0 alone evaluates, plots and exports. Returns rank 0's summary."""
    task, paths = task_for(cfg), run_paths(cfg)
    with main_process_first():
        paths.ensure()
    data = prepare_data(task, cfg, paths)
    model = task.build_model(cfg)
    trainer = task.make_trainer(cfg, model, data, paths, kind="fp32")
    history = trainer.fit()
    if not leave_process_group().is_main:  # rank 0 alone evaluates and writes
        return None
    task.sample_grid(cfg, data, paths, "fp32")
    task.plot_curves(cfg, history, paths.plot("fp32_curves.png"))
    result, _ = task.evaluate_on_test(cfg, model, data, paths, "fp32", trainer.best_path)
    task.prediction_grid(cfg, model, data["test"].dataset, paths, "fp32")
    _, onnx_check = export_fp32(cfg, model, data["test"].dataset, paths)
    save_table(paths, "01_fp32_onnx_check", onnx_check)
    return training_summary(task, trainer, history, result)


def training_summary(task, trainer, history, result):
    """What a command-line training prints: where the files are and the figures reached."""
    return {
        "task": task.name,
        "kind": trainer.kind,
        "world_size": trainer.place.world.size,
        "device": str(trainer.place.device),
        "epochs": len(history),
        "metric": task.metric,
        f"best_val_{task.metric}": float(history[f"val_{task.metric}"].max()),
        "test_metrics": result.metrics,
        "best_checkpoint": str(trainer.best_path),
        "train_log": str(trainer.log_path),
    }
