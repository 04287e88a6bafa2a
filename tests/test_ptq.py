"""Post-training quantization (modules/quantization/ptq.py) on the Darknet detector."""

import math
import types

import numpy as np
import pytest
import torch

import config
from modules.models.architecture import build_model
from modules.models.darknet import build_detector
from modules.models.quant_layers import QuantLayers, build_quant_model
from modules.quantization.ptq import (
    PtqGate,
    bias_correction_roots,
    calibrate,
    calibration_images,
    ptq_bit_widths,
    ptq_kind,
    run_ptq,
)
from modules.run_paths import run_paths
from modules.tasks.detect import DetectTask, model_anchors
from modules.training.checkpoints import load_checkpoint, save_checkpoint


def relative_error(a, b):
    return float((a - b).abs().mean() / b.abs().mean())


@pytest.fixture(scope="module")
def fp32_detector():
    torch.manual_seed(0)
    model = build_detector("dfire-lpyolo")
    images = torch.rand(12, 3, 64, 64) * 255
    with torch.no_grad():
        model.train()(images)  # BN running statistics of these images, as after training
    return model.eval(), images


def test_calibration_and_bias_correction_bring_ptq_close_to_fp32(fp32_detector):
    fp32, images = fp32_detector
    cfg = types.SimpleNamespace(**config.snapshot())
    model = build_detector("dfire-lpyolo", QuantLayers(ptq_bit_widths(cfg)))
    model.load_state_dict(fp32.state_dict(), strict=False)
    model.eval()
    held_out = images[8:]
    with torch.no_grad():
        reference = fp32(held_out)
        before = relative_error(model(held_out), reference)
        calibrate(model, images[:8], batch_size=4)
        after = relative_error(model(held_out), reference)
    assert after < 0.1 and after < before / 3, (before, after)


def test_calibration_needs_images(fp32_detector):
    with pytest.raises(ValueError, match="CALIBRATION_IMAGES"):
        calibrate(fp32_detector[0], torch.zeros(0, 3, 64, 64))


def test_ptq_bit_widths_replace_only_hidden_layers():
    cfg = types.SimpleNamespace(**{**config.snapshot(), "PTQ_WEIGHT_BIT_WIDTH": 6})
    widths = ptq_bit_widths(cfg)
    assert (widths.weight, widths.act) == (6, cfg.PTQ_ACT_BIT_WIDTH)
    assert widths.first_weight == cfg.FIRST_LAYER_WEIGHT_BIT_WIDTH


@pytest.mark.parametrize(
    ("fp32", "ptq", "use_ptq", "drop"),
    [
        (0.8, 0.78, True, 2.5),
        (0.8, 0.761, True, 4.875),
        (0.8, 0.7, False, 12.5),
        (0.0, 0.0, False, None),
    ],
)
def test_gate_follows_max_drop(fp32, ptq, use_ptq, drop):
    gate = PtqGate("map50", fp32, ptq, max_drop_percent=5.0)
    assert gate.use_ptq is use_ptq
    assert gate.as_dict()["gate_verdict"] == ("ptq" if use_ptq else "qat")
    if drop is None:
        assert math.isnan(gate.drop_percent)
    else:
        assert gate.drop_percent == pytest.approx(drop)
    assert ("use the PTQ model" in str(gate)) is use_ptq
    if not use_ptq and drop is not None:
        assert f"by {drop - 5.0:.2f} points" in str(gate)


def test_run_ptq_on_the_detection_task(tiny_dirs):
    """FP32 checkpoint -> PTQ model calibrated on val images, its test mAP, checkpoint, gate."""
    try:
        values = config.apply("tiny", TASK="detect", IMG_SIZE=64, RUN_NAME="ptq", **tiny_dirs)
    finally:
        config.apply()
    cfg = types.SimpleNamespace(**values)
    paths = run_paths(cfg).ensure()
    task = DetectTask()
    data = task.prepare_data(cfg)
    fp32 = task.build_model(cfg)
    images = calibration_images(data["train"].dataset, 16)
    with torch.no_grad():
        fp32.train()(images)  # BN statistics of real images, as after training
    fp32.eval()
    optimizer = torch.optim.SGD(fp32.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    args = (fp32, optimizer, scheduler, 0, {}, vars(cfg), "fp32")
    save_checkpoint(paths.checkpoint("fp32"), *args)
    fp32_result, _ = task.evaluate_on_test(cfg, fp32, data, paths, "fp32")
    model, gate, result = run_ptq(task, cfg, data, paths)
    kind = ptq_kind(cfg)
    assert load_checkpoint(paths.checkpoint(kind), expected_kind=kind)
    assert paths.test_metrics(kind).is_file() and "map50" in result.metrics
    assert gate.fp32 == fp32_result.metrics["map50"] and gate.metric == "map50"
    np.testing.assert_allclose(model_anchors(model), model_anchors(fp32))
    val = calibration_images(data["val"].dataset, 8)
    with torch.no_grad():
        assert relative_error(model(val), fp32(val)) < 0.15


def test_bias_correction_runs_on_the_classifier_without_bipolar_head():
    """The classifier's model-level `output_quant` is an nn.Identity, which Brevitas' bias
    correction cannot enter: calibration still corrects every layer below it."""
    cfg = types.SimpleNamespace(**config.snapshot())
    torch.manual_seed(0)
    fp32 = build_model(cfg.MODEL, 2, 0.5).eval()
    images = torch.rand(8, 3, 32, 32) * 255
    with torch.no_grad():
        fp32.train()(images)
    fp32.eval()
    model = build_quant_model(cfg.MODEL, 2, 0.5, ptq_bit_widths(cfg))
    model.load_state_dict(fp32.state_dict(), strict=False)
    roots = bias_correction_roots(model)
    assert model not in roots and len(roots) > 1
    biases = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("bias")}
    calibrate(model.eval(), images, batch_size=4)
    changed = [
        n for n, p in model.named_parameters() if n in biases and not torch.equal(p, biases[n])
    ]
    assert changed, "bias correction changed no bias"
