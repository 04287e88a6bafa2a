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
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
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
