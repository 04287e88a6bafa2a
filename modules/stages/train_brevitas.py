"""Notebook 02's sequence for either task: bit widths, FP32 initialisation, PTQ and its gate,
QAT, test evaluation, export, the export checks and the deployed-model record for 03-05, over
the task interface. `firesmoke train --stage qat` runs the same steps; notebook 06's QAT
trials run its QAT steps (train_qat, evaluate_and_export)."""

import pandas as pd

from modules.models.quant_layers import BitWidths
from modules.quantization.deployed import DeployedModel, gate_reason
from modules.quantization.ptq import ptq_bit_widths, ptq_kind, run_ptq
from modules.reporting.report import save_table
from modules.run_paths import run_paths
from modules.stages.train_fp32 import model_kind, prepare_data, training_summary
from modules.tasks.registry import task_for
from modules.training.checkpoints import init_from_fp32
from modules.training.distributed import current_world, leave_process_group, main_process_first


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
    report = init_from_fp32(model, source, cfg.QAT_INIT_ALLOW_PARTIAL)
    return pd.Series(
        {
            "initialised from": str(source),
            "tensors copied": len(report["copied"]),
            "FP32 tensors not used": ", ".join(report["fp32_only"]) or "none",
            "quantizer tensors left at init": len(report["left_at_init"]),
        }
    )


def ptq_if_possible(task, cfg, data, paths):
    """PTQ of notebook 01's FP32 checkpoint with seed 004's gate, saved as 02_ptq_gate; None
    when there is no FP32 checkpoint (then QAT is deployed)."""
    if not paths.checkpoint("fp32").is_file():
        print(f"PTQ skipped: no {paths.checkpoint('fp32')} (run notebook 01 first)")
        return None
    ptq = run_ptq(task, cfg, data, paths)  # (model, gate, test result)
    save_table(paths, "02_ptq_gate", pd.Series(ptq[1].as_dict()))
    return ptq


def run_qat_training(cfg):
    """Notebook 02's steps in order, for `firesmoke train --stage qat` (and torchrun); needs
    cfg.BREVITAS_MODEL. Every rank trains; rank 0 alone runs PTQ, evaluates, exports, checks
    and writes the deployed-model record that notebook 03 reads."""
    if not cfg.BREVITAS_MODEL:
        raise ValueError("QAT trains the Brevitas model: set config.BREVITAS_MODEL = True")
    task, paths, kind = task_for(cfg), run_paths(cfg), model_kind(cfg)
    with main_process_first():
        paths.ensure()
    data = prepare_data(task, cfg, paths)
    model, trainer, history = train_qat(task, cfg, data, paths)
    if not leave_process_group().is_main:  # rank 0 alone evaluates and writes
        return None
    ptq = ptq_if_possible(task, cfg, data, paths)  # independent of QAT: its own seeded model
    task.plot_curves(cfg, history, paths.plot(f"{kind}_curves.png"))
    result, exports = evaluate_and_export(task, cfg, model, data, paths, trainer)
    deployed = deploy_choice(task, cfg, paths, data, exports, ptq)
    return {**training_summary(task, trainer, history, result), "deployed": deployed.as_dict()}


def train_qat(task, cfg, data, paths):
    """The Brevitas model initialised from the FP32 weights (its summary saved as
    02_fp32_initialisation) and trained for QAT_EPOCHS. Returns (model, trainer, history)."""
    model = task.build_model(cfg)
    init = initialise_from_fp32(cfg, model, paths)
    epochs = cfg.QAT_EPOCHS or cfg.EPOCHS
    trainer = task.make_trainer(cfg, model, data, paths, model_kind(cfg), epochs)
    history = trainer.fit(epochs)
    if current_world().is_main:
        save_table(paths, "02_fp32_initialisation", init)
    return model, trainer, history


def evaluate_and_export(task, cfg, model, data, paths, trainer):
    """The trained QAT model's best checkpoint on the test split, exported and checked against
    its exports. Returns (test result, exports)."""
    kind = model_kind(cfg)
    result, _ = task.evaluate_on_test(cfg, model, data, paths, kind, trainer.best_path)
    exports = task.export_quantized(cfg, model, paths)
    task.verify_quantized(cfg, model, data, paths, result, exports)
    return result, exports


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
        bits, kind = bit_widths(cfg), model_kind(cfg)
        choice, qonnx = "qat", qat_exports["deploy"]
    reason = gate_reason(gate) + f" (DEPLOY_MODEL = {cfg.DEPLOY_MODEL!r})"
    deployed = DeployedModel(choice, kind, bits, paths.checkpoint(kind), qonnx, reason)
    deployed.save(paths.deployed_model)
    return deployed
