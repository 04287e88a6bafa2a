"""Config errors reach a CLI user as one line naming the key (exit 2), not a traceback, and
DEVICE = "cuda" on a machine without CUDA is refused before any data is prepared."""

import pytest
import torch

import config
from modules import cli


def run_cli(argv, capsys):
    try:
        code = cli.main(argv)
    finally:
        config.apply()
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.startswith("firesmoke")]


@pytest.mark.parametrize(
    ("argv", "key"),
    [
        (["train", "--stage", "fp32", "--set", "EPOCHS=-1"], "EPOCHS"),
        (["train", "--stage", "fp32", "--set", "EPOCH=3"], "EPOCH"),
        (["compile", "model.onnx", "--out", "o", "--set", "CLOCK_MHZ=fast"], "CLOCK_MHZ"),
        (["run", "--set", "IMAGE_CACHE=ram"], "IMAGE_CACHE"),
        (["train", "--stage", "fp32", "--set", "EPOCHS"], "EPOCHS"),
    ],
)
def test_config_errors_are_one_line_naming_the_key(argv, key, capsys):
    code, err = run_cli(argv, capsys)
    assert code == 2
    assert len(err) == 1 and key in err[0] and err[0].startswith(f"firesmoke {argv[0]}: ")


@pytest.mark.parametrize("device", ["cuda", "cuda:99"])
def test_cuda_without_cuda_is_refused_before_data_is_prepared(device, tmp_path, capsys):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    demo = tmp_path / "demo"
    argv = ["train", "--profile", "tiny", "--stage", "fp32", "--set", f"DEVICE={device!r}"]
    code, err = run_cli([*argv, f"DEMO_DIR={str(demo)!r}", f"RUNS_DIR={str(tmp_path)!r}"], capsys)
    assert code == 2 and len(err) == 1
    assert f"DEVICE = {device!r}" in err[0] and "CUDA device(s)" in err[0]
    assert not demo.exists() and list(tmp_path.iterdir()) == []
