"""`firesmoke train` on one process and under torchrun (2 gloo ranks on the CPU), tiny profile.

Stated tolerance between 1 and 2 processes with the same global batch: the ranks see the
same images per step and average their gradients, but on the CPU torch has no SyncBatchNorm,
so each rank normalises its half batch; per-epoch losses agree to within 0.05 (absolute).
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EPOCHS = 2
LOSS_TOLERANCE = 0.05


def train(tiny_dirs, runs_dir, nproc=1, stage="fp32", **overrides):
    command = [str(BIN / "firesmoke"), "train", "--profile", "tiny", "--stage", stage, "--json"]
    settings = {**tiny_dirs, "RUNS_DIR": str(runs_dir), "EPOCHS": EPOCHS, **overrides}
    command += ["--set", *(f"{key}={value}" for key, value in settings.items())]
    if nproc > 1:
        launcher = [str(BIN / "torchrun"), "--standalone", f"--nproc_per_node={nproc}"]
        command = [*launcher, "--no-python", *command]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    errors = [line for line in done.stderr.splitlines() if "Error" in line]  # every rank's
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:] + "\n".join(errors)
    return done.stdout


def summaries(stdout):
    """Every JSON summary printed (one expected: rank 0's)."""
    starts = [i for i, line in enumerate(stdout.splitlines()) if line == "{"]
    lines = stdout.splitlines()
    return [json.loads("\n".join(lines[i : lines.index("}", i) + 1])) for i in starts]


def run_files(runs_dir):
    return sorted(str(p.relative_to(runs_dir)) for p in Path(runs_dir).rglob("*") if p.is_file())


def log(runs_dir):
    return pd.read_csv(Path(runs_dir) / "tiny" / "logs" / "fp32_log.csv")


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process_and_resume(tiny_dirs, tmp_path):
    single, double, resumed = tmp_path / "one", tmp_path / "two", tmp_path / "resumed"
    out_single = train(tiny_dirs, single)
    out_double = train(tiny_dirs, double, nproc=2)

    (summary,) = summaries(out_double)  # rank 1 prints no summary
    assert summary["world_size"] == 2 and summary["epochs"] == EPOCHS
    assert out_double.count("(weights identical on 2 ranks)") == EPOCHS
    assert run_files(double) == run_files(single)  # one set of outputs, no temp files
    single_log, double_log = log(single), log(double)
    assert list(double_log["epoch"]) == list(range(1, EPOCHS + 1))
    for column in ("train_loss", "val_loss"):
        gap = (single_log[column] - double_log[column]).abs().max()
        assert gap < LOSS_TOLERANCE, (column, single_log[column], double_log[column])
    assert summaries(out_single)[0]["world_size"] == 1

    # killed after epoch 1, resumed with LOAD_MODEL under torchrun: ends as the uninterrupted run
    train(tiny_dirs, resumed, nproc=2, EPOCHS=1)
    out_resumed = train(tiny_dirs, resumed, nproc=2, LOAD_MODEL=True)
    assert out_resumed.count("resumed fp32") == 1
    pd.testing.assert_frame_equal(log(resumed), double_log, rtol=1e-6)
    weights = [
        torch.load(d / "tiny" / "weights" / "fp32_last.pt", weights_only=True)["model"]
        for d in (double, resumed)
    ]
    for name, tensor in weights[0].items():
        torch.testing.assert_close(weights[1][name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def one_process_val_map(cfg_values, checkpoint):
    """mAP@0.5 of a checkpoint on the val split, evaluated by this one process."""
    import config
    from modules.data.boxes import collate_boxes
    from modules.tasks.detect import DetectTask, model_anchors
    from modules.tasks.detect.settings import eval_settings
    from modules.tasks.detect.training import detection_loss, evaluate_detector
    from modules.training.checkpoints import load_weights
    from modules.training.trainer import make_loader

    try:
        cfg = SimpleNamespace(**config.apply("tiny", **cfg_values))
    finally:
        config.apply()
    task = DetectTask()
    data = task.prepare_data(cfg)
    model = load_weights(task.build_model(cfg), checkpoint, "fp32")
    anchors = model_anchors(model)
    loader = make_loader(data["val"].dataset, cfg.BATCH_SIZE, 0, collate_fn=collate_boxes)
    settings = eval_settings(cfg, anchors)
    result = evaluate_detector(model, loader, detection_loss(cfg, anchors), settings, cfg.CLASSES)
    return result.metrics["map50"]


@pytest.mark.slow
def test_detector_trains_on_two_gloo_ranks_then_notebook_03_compiles_it(tiny_dirs, tmp_path):
    from modules.pipeline import NOTEBOOK_DIR, run_notebook

    runs = tmp_path / "detect"
    detect = {"TASK": "detect", "IMG_SIZE": 64, "RUN_NAME": "tiny-detect"}
    out_fp32 = train(tiny_dirs, runs, nproc=2, **detect)
    out_qat = train(tiny_dirs, runs, nproc=2, stage="qat", **detect)

    (fp32,), (qat,) = summaries(out_fp32), summaries(out_qat)  # rank 0 alone reports
    assert fp32["task"] == qat["task"] == "detect" and fp32["world_size"] == 2
    assert qat["deployed"]["choice"] in ("qat", "ptq")
    run = runs / "tiny-detect"
    files = run_files(run)
    assert not [f for f in files if f.endswith(".tmp")]
    for needed in ("weights/fp32_best.pt", "logs/02_ptq_gate.csv", "onnx/02_deployed_model.json",
                   "deploy/detect_spec.json", "logs/fp32_log.csv"):  # fmt: skip
        assert needed in files, needed

    # the val mAP logged under DDP (every rank's detections in one COCOeval) is the mAP one
    # process computes on the whole val split with the same weights
    logged = pd.read_csv(run / "logs" / "fp32_log.csv")["val_map50"].iloc[-1]
    values = {**tiny_dirs, "RUNS_DIR": str(runs), "EPOCHS": EPOCHS, **detect}
    assert one_process_val_map(values, run / "weights" / "fp32_last.pt") == pytest.approx(
        logged, abs=1e-9
    )

    notebook = NOTEBOOK_DIR / "03_finn_transform.ipynb"
    executed = run_notebook(notebook, "tiny", values, tmp_path / "executed")
    assert "03 ok" in executed.read_text()
