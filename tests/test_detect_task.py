"""The detection task through the shared Trainer (modules/tasks/detect.py), tiny profile."""

import types

import numpy as np
import pytest
import torch
from standin_detector import StandIn

import config
from modules.run_paths import run_paths
from modules.tasks.classify import ClassifyTask
from modules.tasks.detect import DetectTask, WarmupLinear, detector_optimizer, model_anchors
from modules.tasks.registry import task_for
from modules.training.checkpoints import load_checkpoint


@pytest.fixture
def detect_cfg(tiny_dirs):
    try:
        values = config.apply("tiny", TASK="detect", IMG_SIZE=64, **tiny_dirs)
    finally:
        config.apply()
    return types.SimpleNamespace(**values)


def test_task_for_follows_config_task(detect_cfg, tiny_cfg):
    assert isinstance(task_for(detect_cfg), DetectTask)
    assert isinstance(task_for(tiny_cfg), ClassifyTask)
    with pytest.raises(ValueError, match="config.TASK"):
        task_for(types.SimpleNamespace(TASK="segment"))


def test_warmup_then_linear_decay():
    factor = WarmupLinear(steps_per_epoch=10, epochs=5, warmup_epochs=1, final=0.01)
    values = [factor(step) for step in range(50)]
    assert values[0] == pytest.approx(0.1 * (1 - 0.0))
    assert np.all(np.diff(values[:10]) > 0) and np.all(np.diff(values[10:]) < 0)
    assert values[-1] == pytest.approx((1 - 49 / 50) * 0.99 + 0.01)


@pytest.mark.parametrize("name, kind", [("sgd", torch.optim.SGD), ("Adam", torch.optim.Adam)])
def test_detector_optimizer_decays_conv_weights_only(name, kind):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    optimizer = detector_optimizer(model, name, 0.01, 0.9, 5e-4)
    assert isinstance(optimizer, kind)
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 5e-4 and plain["weight_decay"] == 0
    assert [p.shape for p in decayed["params"]] == [model[0].weight.shape]
    with pytest.raises(ValueError, match="DET_OPTIMIZER"):
        detector_optimizer(model, "rmsprop", 0.01, 0.9, 5e-4)


def test_detector_trains_through_the_trainer(detect_cfg):
    task = DetectTask(model_builder=lambda cfg, bits: StandIn(3, len(cfg.CLASSES)))
    paths = run_paths(detect_cfg).ensure()
    data = task.prepare_data(detect_cfg)
    torch.manual_seed(0)
    model = task.build_model(detect_cfg)
    np.testing.assert_allclose(model_anchors(model), task.anchor_fit.anchors)
    trainer = task.make_trainer(detect_cfg, model, data, paths, "fp32")
    history = trainer.fit()
    assert list(history["epoch"]) == [1, 2]
    assert {"val_map50", "val_map50_95", "val_ap50_smoke", "val_ap50_fire"} <= set(history)
    assert history["val_map50"].between(0, 1).all()
    # warm-up: the LR is still below its target after 2 short epochs
    assert 0 < history["lr"].iloc[-1] < detect_cfg.DET_LEARNING_RATE
    saved = load_checkpoint(trainer.best_path, expected_kind="fp32")
    np.testing.assert_allclose(saved["model"]["anchors"].numpy(), task.anchor_fit.anchors)
    result, table = task.evaluate_on_test(detect_cfg, model, data, paths, "fp32", trainer.best_path)
    assert len(result.detections) == len(data["test"].dataset) == len(result.truths)
    assert 0 <= result.metrics["map50"] <= 1 and "map50" in table.index
    assert paths.test_metrics("fp32").is_file() and paths.plot("fp32_test_pr.png").is_file()
    task.prediction_grid(detect_cfg, model, data["test"].dataset, paths, "fp32")
    task.sample_grid(detect_cfg, data, paths, "fp32")
    task.plot_curves(detect_cfg, history, paths.plot("fp32_curves.png"))
    for name in ("fp32_test_predictions.png", "fp32_train_samples.png", "fp32_curves.png"):
        assert paths.plot(name).is_file()


def test_class_count_mismatch_is_a_clear_error(detect_cfg):
    task = DetectTask(model_builder=lambda cfg, bits: StandIn(3, 5))
    task.prepare_data(detect_cfg)
    with pytest.raises(ValueError, match="config.DETECTOR_CFG"):
        task.build_model(detect_cfg)
