"""Notebook 02's steps: bit widths, FP32 initialisation, the bipolar head check, export, and
the QONNX-vs-Brevitas equivalence check."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from modules.board.decisions import agreement_percent, decide
from modules.models.quant_layers import BitWidths, build_quant_model
from modules.quantization.deployed import DeployedModel, gate_reason
from modules.quantization.equivalence import equivalence_table, onnx_stage, torch_stage
from modules.quantization.export import export_qonnx_model
from modules.quantization.ptq import load_corrected_state, ptq_bit_widths, ptq_kind
from modules.reporting.plots import plot_training_curves
from modules.reporting.report import save_table
from modules.run_paths import run_paths
from modules.stages import train_fp32
from modules.training.distributed import current_world, main_process_first
from modules.training.metrics import classification_metrics


def bit_widths(cfg):
    return BitWidths.from_config(cfg)


def initialise_from_fp32(cfg, model, paths):
    """Copy weights from this run's FP32 best checkpoint (config.QAT_INIT_FROM_FP32); returns a
    one-row summary of what matched. A missing checkpoint is an error, not a quiet random start."""
    source = paths.checkpoint("fp32")
    if cfg.LOAD_MODEL or not cfg.QAT_INIT_FROM_FP32:
        why = "resuming (LOAD_MODEL)" if cfg.LOAD_MODEL else "QAT_INIT_FROM_FP32 = False"
        return pd.Series({"initialised from": "random init", "why": why})
    if not source.is_file():
        raise FileNotFoundError(
            f"{source} not found: QAT starts from notebook 01's FP32 weights "
            f"(config.QAT_INIT_FROM_FP32). Run notebook 01 with RUN_NAME = {cfg.RUN_NAME!r} "
            "first, or set QAT_INIT_FROM_FP32 = False to train from random initialisation"
        )
    report = train_fp32.init_from_fp32(model, source, cfg.QAT_INIT_ALLOW_PARTIAL)
    return pd.Series(
        {
            "initialised from": str(source),
            "tensors copied": len(report["copied"]),
            "FP32 tensors not used": ", ".join(report["fp32_only"]) or "none",
            "quantizer tensors left at init": len(report["left_at_init"]),
        }
    )


def bipolar_model(cfg, model, bits=None):
    """The same weights with the bipolar output quantizer appended (for FINN deployment);
    `bits` of the model (config's when None)."""
    torch.manual_seed(cfg.SEED)
    bits = bits or bit_widths(cfg)
    head = build_quant_model(cfg.MODEL, len(cfg.CLASSES), cfg.WIDTH_MULT, bits, True)
    return load_corrected_state(head, model.state_dict()).eval()


@dataclass
class BipolarCheck:
    agreement: float  # % of test images whose [smoke, fire] decisions are identical
    metrics_with_head: dict
    summary: pd.DataFrame


def bipolar_check(cfg, model, data, bits=None):
    """Decisions of the bipolar head vs `logit >= 0` of the model without it, on the test set."""
    head = bipolar_model(cfg, model, bits)
    images, targets = stack_dataset(data["test"].dataset)
    logits = torch_stage(model)(images)
    signs = torch_stage(head)(images)
    if not np.isin(signs, (-1.0, 1.0)).all():
        raise AssertionError("the bipolar head produced values other than -1/+1")
    with_head, without = decide(signs), decide(logits)
    agreement = agreement_percent(with_head, without)
    metrics = classification_metrics(targets, with_head, cfg.CLASSES)
    summary = pd.DataFrame(
        {
            "logits >= 0": classification_metrics(targets, without, cfg.CLASSES),
            "bipolar head": metrics,
        }
    )
    summary.loc["decision agreement %"] = [100.0, agreement]
    return BipolarCheck(agreement, metrics, summary)


def stack_dataset(dataset, limit=None):
    """Un-augmented images (N,3,H,W float 0..255) and targets of a dataset."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    pairs = [dataset[i] for i in range(count)]
    images = torch.stack([p[0] for p in pairs]).numpy()
    targets = torch.stack([p[1] for p in pairs]).numpy()
    return images, targets


def export_all(cfg, model, paths, bits=None):
    """QONNX of the model with and without the bipolar head, stage-named in the onnx folder;
    `bits` of the model (config's when None)."""
    bits = bits or bit_widths(cfg)
    files = {}
    for name, net in (("logits", model), ("bipolar", bipolar_model(cfg, model, bits))):
        raw, clean = paths.qonnx(bits.tag, name, cleaned=False), paths.qonnx(bits.tag, name)
        export_qonnx_model(net, cfg.IMG_SIZE, raw, clean)
        files[f"qonnx_{name}"], files[f"qonnx_{name}_clean"] = raw, clean
    return files


def check_exports(cfg, model, dataset, exports, bits=None):
    """qonnx execution vs Brevitas on config.EQUIVALENCE_IMAGES test images."""
    images, _ = stack_dataset(dataset, cfg.EQUIVALENCE_IMAGES)
    stages = {
        "brevitas logits": torch_stage(model),
        "qonnx logits": onnx_stage(exports["qonnx_logits_clean"]),
        "brevitas bipolar": (torch_stage(bipolar_model(cfg, model, bits)), "qonnx logits"),
        "qonnx bipolar": onnx_stage(exports["qonnx_bipolar_clean"]),
    }
    table, _ = equivalence_table(stages, images)
    return table


def run_qat_training(cfg):
    """Notebook 02's steps in order, for `firesmoke train --stage qat` (and torchrun); needs
    cfg.BREVITAS_MODEL. Every rank trains; rank 0 alone evaluates, checks and exports."""
    if not cfg.BREVITAS_MODEL:
        raise ValueError("QAT trains the Brevitas model: set config.BREVITAS_MODEL = True")
    paths = run_paths(cfg)
    with main_process_first():
        paths.ensure()
    kind = train_fp32.model_kind(cfg)
    data = train_fp32.prepare_data(cfg)
    model = train_fp32.build_configured_model(cfg)
    init = initialise_from_fp32(cfg, model, paths)
    trainer = train_fp32.make_trainer(cfg, model, data, paths, kind=kind)
    history = trainer.fit(cfg.QAT_EPOCHS or cfg.EPOCHS)
    if not current_world().is_main:
        return None
    save_table(paths, "02_fp32_initialisation", init)
    plot_training_curves(history, cfg.CLASSES, paths.plot(f"{kind}_curves.png"))
    result, _ = train_fp32.evaluate_on_test(cfg, model, data, paths, kind, trainer.best_path)
    save_table(paths, "02_bipolar_head_check", bipolar_check(cfg, model, data).summary)
    exports = export_all(cfg, model, paths)
    equivalence = check_exports(cfg, model, data["test"].dataset, exports)
    save_table(paths, "02_qonnx_equivalence", equivalence)
    return train_fp32.training_summary(trainer, history, result)


def deploy_choice(task, cfg, paths, data, qat_exports, ptq=None):
    """The model notebooks 03-05 use (config.DEPLOY_MODEL): by seed 004's gate the PTQ model
    when its drop is within MAX_PTQ_DROP (then exported and checked here like the QAT model),
    else the QAT model; or the one DEPLOY_MODEL names. `ptq`: run_ptq's (model, gate,
    result), None when PTQ did not run. Saves and returns the DeployedModel."""
    gate = ptq[1] if ptq is not None else None
    if cfg.DEPLOY_MODEL == "ptq" and ptq is None:
        raise ValueError("config.DEPLOY_MODEL = 'ptq' but PTQ did not run (no FP32 checkpoint)")
    passes = gate is not None and gate.use_ptq
    # "sweep": 03-05 take notebook 06's pick; 02 still records the gate's
    wanted = {"gate": passes, "ptq": True, "qat": False, "sweep": passes}
    if wanted[cfg.DEPLOY_MODEL]:
        model, _, result = ptq
        bits = ptq_bit_widths(cfg)
        exports = task.export_quantized(cfg, model, paths, bits)
        task.verify_quantized(cfg, model, data, paths, result, exports, bits)
        choice, kind, qonnx = "ptq", ptq_kind(cfg), exports["deploy"]
    else:
        bits, kind = bit_widths(cfg), train_fp32.model_kind(cfg)
        choice, qonnx = "qat", qat_exports["deploy"]
    reason = gate_reason(gate) + f" (DEPLOY_MODEL = {cfg.DEPLOY_MODEL!r})"
    deployed = DeployedModel(choice, kind, bits, paths.checkpoint(kind), qonnx, reason)
    deployed.save(paths.deployed_model)
    return deployed
