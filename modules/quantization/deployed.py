"""Which quantized model goes on to FINN: notebook 02 records it, notebooks 03-05 load it.

Seed 004's gate: when post-training quantization loses at most MAX_PTQ_DROP % of the FP32
metric, the PTQ model is deployed; otherwise the QAT model. Notebook 02 writes the choice with
its checkpoint, bit widths and QONNX file (`RunPaths.deployed_model`), so the later notebooks
never guess from config which one was kept.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from modules.models.quant_layers import BitWidths
from modules.quantization.ptq import load_corrected_state
from modules.training.checkpoints import load_checkpoint


@dataclass(frozen=True)
class DeployedModel:
    choice: str  # "qat" | "ptq"
    kind: str  # checkpoint kind, e.g. "brevitas-<signature>" or "ptq-<signature>"
    bits: BitWidths
    checkpoint: Path
    qonnx: Path  # the cleaned QONNX graph notebook 03 compiles
    reason: str

    def as_dict(self):
        values = asdict(self)
        values.update(checkpoint=str(self.checkpoint), qonnx=str(self.qonnx))
        return values

    def save(self, path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.as_dict(), indent=2))
        return Path(path)

    @classmethod
    def load(cls, path):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: notebook 02 records there which quantized model (QAT or "
                "PTQ) notebooks 03-05 use; run notebook 02 for this RUN_NAME first"
            )
        values = json.loads(path.read_text())
        values.update(
            bits=BitWidths(**values["bits"]),
            checkpoint=Path(values["checkpoint"]),
            qonnx=Path(values["qonnx"]),
        )
        return cls(**values)


def gate_reason(gate):
    """Why the model was chosen, in words (the gate's verdict, or why there was no gate)."""
    if gate is None:
        return "no PTQ gate (no FP32 checkpoint): the QAT model"
    return str(gate)


def load_deployed_model(task, cfg, paths):
    """(DeployedModel, its Brevitas model with the recorded weights, in eval mode)."""
    deployed = DeployedModel.load(paths.deployed_model)
    model = task.build_quantized(cfg, deployed.bits)
    state = load_checkpoint(deployed.checkpoint, expected_kind=deployed.kind)["model"]
    return deployed, load_corrected_state(model, state).eval()
