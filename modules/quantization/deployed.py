"""Which quantized model goes on to FINN: notebook 02 records it, notebooks 03-05 load it.

Seed 004's gate: when post-training quantization loses at most MAX_PTQ_DROP % of the FP32
metric, the PTQ model is deployed; otherwise the QAT model. Notebook 02 writes the choice with
its checkpoint, bit widths and QONNX file (`RunPaths.deployed_model`), so the later notebooks
never guess from config which one was kept.
"""

import json
from dataclasses import asdict, dataclass, field
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
    # config values the model was built with, when they differ from the run's (a sweep trial's
    # WIDTH_MULT, bit widths): notebooks 03-05 apply them (`deployed_config`)
    config: dict = field(default_factory=dict)

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
                f"{path} is missing: it records which quantized model notebooks 03-05 use; "
                "run notebook 02 (notebook 06 for DEPLOY_MODEL = 'sweep') for this RUN_NAME first"
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


def deployed_record_path(cfg, paths):
    """Notebook 02's choice, or with DEPLOY_MODEL = "sweep" notebook 06's recommendation."""
    return paths.sweep_choice if cfg.DEPLOY_MODEL == "sweep" else paths.deployed_model


def deployed_config(cfg, paths):
    """The config values notebooks 03-05 apply to build the deployed model: the recommended
    sweep trial's (WIDTH_MULT, bit widths) with DEPLOY_MODEL = "sweep", else none."""
    if cfg.DEPLOY_MODEL != "sweep":
        return {}
    return DeployedModel.load(deployed_record_path(cfg, paths)).config


def load_deployed_model(task, cfg, paths):
    """(DeployedModel, its Brevitas model with the recorded weights, in eval mode)."""
    deployed = DeployedModel.load(deployed_record_path(cfg, paths))
    model = task.build_quantized(cfg, deployed.bits)
    state = load_checkpoint(deployed.checkpoint, expected_kind=deployed.kind)["model"]
    return deployed, load_corrected_state(model, state).eval()
