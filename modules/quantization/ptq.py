"""Post-training quantization with Brevitas, and seed 004's gate on its accuracy drop.

PTQ takes the quantized model with the FP32 weights loaded, sets the activation scales from
statistics over a few calibration images (`calibration_mode`), then corrects each layer's bias
for the mean error quantization adds (`bias_correction_mode`). It needs no training, but it
cannot make low-bit (e.g. W1) weights work: the gate then sends the pipeline on with QAT.
"""

import contextlib
import dataclasses
import json
import math
from dataclasses import dataclass

import torch
from brevitas.graph.calibrate import bias_correction_mode, calibration_mode

from modules.models.quant_layers import BitWidths
from modules.training.checkpoints import init_from_fp32, save_checkpoint


def ptq_bit_widths(cfg):
    """config's bit widths with the hidden layers at PTQ_WEIGHT/ACT_BIT_WIDTH."""
    widths = dataclasses.replace(
        BitWidths.from_config(cfg), weight=cfg.PTQ_WEIGHT_BIT_WIDTH, act=cfg.PTQ_ACT_BIT_WIDTH
    )
    widths.validate()
    return widths


def batches(images, batch_size):
    return [images[i : i + batch_size] for i in range(0, len(images), batch_size)]


@torch.no_grad()
def calibrate(model, images, batch_size=8):
    """Activation scales, then bias correction, over `images` (N, 3, H, W) 0..255; in place."""
    if len(images) == 0:
        raise ValueError("PTQ calibration needs images (config.CALIBRATION_IMAGES >= 1)")
    model.eval()
    with calibration_mode(model):
        for batch in batches(images, batch_size):
            model(batch)
    with contextlib.ExitStack() as stack:
        for root in bias_correction_roots(model):
            stack.enter_context(bias_correction_mode(root))
        for batch in batches(images, batch_size):
            model(batch)
    return model


def _clashes(module):
    output_quant = getattr(module, "output_quant", None)
    return output_quant is not None and not hasattr(output_quant, "is_quant_enabled")


def bias_correction_roots(module):
    """The largest submodules Brevitas' bias correction can enter: it takes every attribute
    named `output_quant` for a quantizer, which a plain nn.Identity under that name (the
    classifier without its bipolar head) is not. Its per-layer hooks work the same per root."""
    if not any(_clashes(m) for m in module.modules()):
        return [module]
    return [root for child in module.children() for root in bias_correction_roots(child)]


def load_corrected_state(model, state):
    """Load a state dict into a freshly built model, giving its bias-free layers the biases
    that Brevitas' bias correction registered on the calibrated model (a PTQ checkpoint has
    them, a new model does not). Returns the model."""
    for name, module in model.named_modules():
        key = f"{name}.bias" if name else "bias"
        if key in state and getattr(module, "bias", False) is None:
            module.register_parameter("bias", torch.nn.Parameter(torch.zeros_like(state[key])))
    model.load_state_dict(state)
    return model


def calibration_images(dataset, count):
    """The first `count` un-augmented images of a dataset as one (N, 3, H, W) tensor."""
    count = min(count, len(dataset))
    return torch.stack([dataset[i][0] for i in range(count)])


@dataclass
class PtqGate:
    metric: str
    fp32: float
    ptq: float
    max_drop_percent: float

    @property
    def drop_percent(self):
        """Drop relative to FP32, in percent (nan when FP32 scores 0: nothing to compare)."""
        if not self.fp32 > 0 or math.isnan(self.ptq):
            return float("nan")
        return 100.0 * (self.fp32 - self.ptq) / self.fp32

    @property
    def choice(self):
        return "ptq" if self.use_ptq else "qat"

    def as_dict(self):
        return {"metric": self.metric, "fp32": self.fp32, "ptq": self.ptq,
                "drop_percent": self.drop_percent, "max_drop_percent": self.max_drop_percent,
                "gate_verdict": self.choice}  # fmt: skip

    @property
    def use_ptq(self):
        return self.drop_percent <= self.max_drop_percent  # nan compares False: QAT

    def __str__(self):
        head = f"PTQ {self.metric} {self.ptq:.4f} vs FP32 {self.fp32:.4f}"
        if self.use_ptq:
            return (f"{head}: drop {self.drop_percent:.2f} % <= MAX_PTQ_DROP "
                    f"{self.max_drop_percent} %: use the PTQ model")  # fmt: skip
        return (f"{head}: drop {self.drop_percent:.2f} % exceeds MAX_PTQ_DROP "
                f"{self.max_drop_percent} % by {self.drop_percent - self.max_drop_percent:.2f}"
                " points: use the QAT model")  # fmt: skip


def ptq_kind(cfg):
    """Checkpoint kind of the PTQ model, e.g. "ptq-<bit widths signature>"."""
    return f"ptq-{ptq_bit_widths(cfg).signature}"


def fp32_test_metric(paths, metric):
    path = paths.test_metrics("fp32")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run notebook 01 for this RUN_NAME first")
    return float(json.loads(path.read_text())[metric])


def run_ptq(task, cfg, data, paths):
    """PTQ of the run's FP32 checkpoint: calibrate on CALIBRATION_IMAGES validation images,
    measure the test metric, save the model as checkpoint `ptq_kind(cfg)` and apply the gate.

    Returns (model, gate, test result)."""
    source = paths.checkpoint("fp32")
    model = task.build_ptq_model(cfg)
    init_from_fp32(model, source)  # raises naming the file when notebook 01 has not run
    calibrate(model, calibration_images(data["val"].dataset, cfg.CALIBRATION_IMAGES))
    kind = ptq_kind(cfg)
    result, _ = task.evaluate_on_test(cfg, model, data, paths, kind)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # the checkpoint format wants one
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    metrics = {"history": [], "last": result.metrics}
    snapshot = cfg.snapshot() if hasattr(cfg, "snapshot") else vars(cfg)
    save_checkpoint(paths.checkpoint(kind), model, optimizer, scheduler, 0, metrics, snapshot, kind)
    gate = PtqGate(task.metric, fp32_test_metric(paths, task.metric),
                   result.metrics[task.metric], cfg.MAX_PTQ_DROP)  # fmt: skip
    print(gate)
    return model, gate, result
