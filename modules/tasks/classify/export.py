"""The classifier's deployment head and exports: the bipolar output quantizer (+1 iff logit >= 0)
checked against the logits, QONNX with and without it, and qonnx execution vs Brevitas."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from modules.board.decisions import agreement_percent, decide
from modules.models.quant_layers import BitWidths
from modules.quantization import rounding_ties
from modules.quantization.equivalence import equivalence_table, onnx_stage, torch_stage
from modules.quantization.export import export_qonnx_model
from modules.tasks.classify.data import stack_dataset
from modules.tasks.classify.model import bipolar_model
from modules.training.metrics import classification_metrics


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


def export_all(cfg, model, paths, bits=None):
    """QONNX of the model with and without the bipolar head, stage-named in the onnx folder;
    `bits` of the model (config's when None)."""
    bits = bits or BitWidths.from_config(cfg)
    files = {}
    for name, net in (("logits", model), ("bipolar", bipolar_model(cfg, model, bits))):
        raw, clean = paths.qonnx(bits.tag, name, cleaned=False), paths.qonnx(bits.tag, name)
        export_qonnx_model(net, cfg.IMG_SIZE, raw, clean)
        files[f"qonnx_{name}"], files[f"qonnx_{name}_clean"] = raw, clean
    return files


def check_exports(cfg, model, dataset, exports, bits=None):
    """qonnx execution vs Brevitas on config.EQUIVALENCE_IMAGES test images; where the bipolar
    graph differs, `rounding_ties.explain_stage` checks each difference is a rounding tie."""
    images, _ = stack_dataset(dataset, cfg.EQUIVALENCE_IMAGES)
    head = bipolar_model(cfg, model, bits)
    stages = {
        "brevitas logits": torch_stage(model),
        "qonnx logits": onnx_stage(exports["qonnx_logits_clean"]),
        "brevitas bipolar": (torch_stage(head), "qonnx logits"),
        "qonnx bipolar": onnx_stage(exports["qonnx_bipolar_clean"]),
    }
    table, outputs = equivalence_table(stages, images)
    rounding_ties.explain_stage(table, outputs, "qonnx bipolar", "brevitas bipolar", head,
                                exports["qonnx_bipolar_clean"], images)  # fmt: skip
    return table
