"""`run_board.py --self-check` on a deployment package of a tiny FINN design: in this
environment, and (slow) in a fresh virtual environment with only the board requirements."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import types

import cv2
import numpy as np
import pytest
from finn.core.onnx_exec import execute_onnx
from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition
from test_deploy import CLASSES, small_hw_model

from modules.board import cli
from modules.board.accelerator import EmulatedAccelerator, load_io_spec
from modules.board.cli import main
from modules.board.inference import describe
from modules.board.self_check import FIELDS, load_recording, run_self_check
from modules.data.demo_data import generate_demo_dataset
from modules.dataflow.setup import ensure_finn
from modules.deployment import package as deploy
from modules.run_paths import RunPaths

IMAGES = 6


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    """The tiny HW design (`hw_graph_fn`), its package (`paths`: deploy/ with a self-check
    recording of six demo images) and those labelled demo images (`demo`)."""
    ensure_finn()
    root = tmp_path_factory.mktemp("board")
    parent = small_hw_model().transform(CreateDataflowPartition(partition_model_dir=str(root)))
    child = deploy._child_and_parent(parent, None)[0]
    model = root / "child.onnx"
    child.save(str(model))
    cfg = types.SimpleNamespace(
        FINN_PLUS_DRIVER_VERSION="1.6.1", DFIRE_CLASS_IDS={0: "smoke", 1: "fire"}
    )
    paths = RunPaths(root / "run")
    deploy.make_deployment_package(
        cfg, paths, model, deploy.io_spec_from_model(child, CLASSES, parent=parent)
    )
    demo = generate_demo_dataset(root / "demo", {"test": IMAGES}, 48, seed=2)
    in_name, out_name = child.graph.input[0].name, child.graph.output[0].name

    def hw_graph_fn(x):
        return execute_onnx(child, {in_name: x})[out_name]

    deploy.write_self_check(paths, hw_graph_fn, sorted((demo / "test" / "images").glob("*.jpg")))
    return types.SimpleNamespace(paths=paths, demo=demo / "test", hw_graph_fn=hw_graph_fn)


@pytest.fixture(scope="module")
def package(design):
    return design.paths


def corrupted_copy(paths, tmp_path):
    """A copy of the package whose recording has image 0's output bytes inverted."""
    copy = RunPaths(tmp_path / "copy")
    shutil.copytree(paths.deploy, copy.deploy)
    recording = load_recording(copy.self_check_recording)
    recording["packed_out"][0] = ~recording["packed_out"][0]
    np.savez(copy.self_check_recording, **recording)
    return copy


def test_recording_holds_the_emulator_run(package):
    recording = load_recording(package.self_check_recording)
    assert len(recording["names"]) == IMAGES
    assert recording["inputs"].shape == (IMAGES, 3, 4, 4) and recording["inputs"].max() > 1
    assert recording["decisions"].shape == (IMAGES, 2)
    assert all((package.self_check_images / name).is_file() for name in recording["names"])


def test_self_check_passes_in_process(package, capsys):
    results = run_self_check(package.board_layout())
    assert len(results) == IMAGES and all(r.ok for r in results)
    assert main(package.board_layout(), ["--self-check"]) == 0
    assert (
        capsys.readouterr().out.splitlines()[-1] == f"self-check: {IMAGES}/{IMAGES} decisions equal"
    )


def test_self_check_finds_each_kind_of_difference(package, tmp_path, capsys):
    copy = corrupted_copy(package, tmp_path)
    images = sorted(copy.self_check_images.iterdir())
    images[1].write_bytes(b"not a jpeg")
    flipped = images[2].with_name("flipped.png")
    cv2.imwrite(str(flipped), cv2.imread(str(images[2]))[::-1])
    flipped.replace(images[2])  # same name, other pixels
    results = run_self_check(copy.board_layout())
    problems = [r.problems for r in results]
    assert "unpacked outputs differ from the recording" in problems[0]
    assert "cannot read image" in problems[1][0]
    assert "preprocessed input differs from the recorded tensor" in problems[2]
    assert all(r.ok for r in results[3:])
    assert main(copy.board_layout(), ["--self-check"]) == 1
    assert (
        capsys.readouterr().out.splitlines()[-1]
        == f"self-check: {IMAGES - 3}/{IMAGES} decisions equal"
    )


def test_images_mode_without_a_board_says_why(package, capsys):
    assert main(package.board_layout(), ["--images", str(package.self_check_images)]) == 1
    assert "pynq is not installed" in capsys.readouterr().err


def test_images_mode_prints_decisions_speed_and_metrics(design, package, monkeypatch, capsys):
    """--images with the emulator standing in for the FPGA, on labelled demo images."""
    layout = package.board_layout()
    emulator = EmulatedAccelerator(load_io_spec(layout.io_spec), design.hw_graph_fn)
    monkeypatch.setattr(cli, "open_board", lambda _: emulator)
    assert main(layout, ["--images", str(design.demo), "--batch-size", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    recording = load_recording(layout.recording)
    expected = [describe(d, CLASSES) for d in recording["decisions"]]
    assert [line.split(": ")[1] for line in lines[:IMAGES]] == expected
    summary = rf"{IMAGES} images processed in \S+ s \(\S+ images/s\), 0 files left out"
    assert re.fullmatch(summary, lines[IMAGES])
    assert re.fullmatch(rf"{IMAGES} labelled images: smoke F1 .* mean F1 \S+", lines[IMAGES + 1])


def emulated_board(design, package, monkeypatch):
    layout = package.board_layout()
    emulator = EmulatedAccelerator(load_io_spec(layout.io_spec), design.hw_graph_fn)
    monkeypatch.setattr(cli, "open_board", lambda _: emulator)
    return layout


def test_images_mode_lists_what_it_cannot_read_and_goes_on(design, package, tmp_path,
                                                          monkeypatch, capsys):  # fmt: skip
    folder = tmp_path / "mixed"
    shutil.copytree(design.demo, folder)
    images = folder / "images"
    (images / "notes.md").write_text("not an image")
    (images / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (images / "empty.png").write_bytes(b"")
    layout = emulated_board(design, package, monkeypatch)
    assert main(layout, ["--images", str(folder)]) == 0
    captured = capsys.readouterr()
    left_out = sorted(line.split(":")[0] for line in captured.err.splitlines()
                      if line.startswith("left out"))  # fmt: skip
    assert left_out == ["left out broken.jpg", "left out empty.png", "left out notes.md"]
    assert "notes.md: not an image file (.md)" in captured.err
    assert "broken.jpg: cannot read image" in captured.err
    assert re.search(rf"^{IMAGES} images processed in .*, 3 files left out$", captured.out, re.M)
    assert re.search(rf"^{IMAGES} labelled images: ", captured.out, re.M)


def test_images_mode_says_when_every_label_is_bad(design, package, tmp_path, monkeypatch,
                                                  capsys):  # fmt: skip
    folder = tmp_path / "badlabels"
    shutil.copytree(design.demo, folder)
    for label in (folder / "labels").glob("*.txt"):
        label.write_text("1 0.5 0.5 abc 0.2\n")
    layout = emulated_board(design, package, monkeypatch)
    assert main(layout, ["--images", str(folder)]) == 1
    captured = capsys.readouterr()
    assert f"every label file ({IMAGES}) was skipped: ['non-numeric field']" in captured.out
    assert captured.err.count("not used: non-numeric field") == IMAGES


def damaged(package, tmp_path, damage):
    copy = RunPaths(tmp_path / "copy")
    shutil.copytree(package.deploy, copy.deploy)
    damage(copy.self_check_recording)
    return copy


DAMAGE = {
    "empty file": lambda path: path.write_bytes(b""),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "corrupt": lambda path: path.write_bytes(
        path.read_bytes()[:200] + b"\0" * 400 + path.read_bytes()[600:]
    ),  # fmt: skip
    "text": lambda path: path.write_text("names,inputs\n"),
    "no images": lambda path: np.savez(path, **{k: np.zeros((0, 2)) for k in FIELDS}),
    "fields cut": lambda path: np.savez(
        path, **(dict(np.load(path)) | {"decisions": np.load(path)["decisions"][:2]})
    ),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_self_check_fails_on_a_damaged_recording_naming_it(package, tmp_path, capsys, damage):
    copy = damaged(package, tmp_path, DAMAGE[damage])
    assert main(copy.board_layout(), ["--self-check"]) == 1
    err = capsys.readouterr().err
    assert str(copy.self_check_recording) in err and "Traceback" not in err
    assert "decisions equal" not in err


def test_board_notebook_runs_to_the_board_without_one(package):
    """The board notebook's cells, run as a script in deploy/: the self-check passes, then the
    FPGA cell stops because there is no board."""
    notebook = json.loads(package.board_notebook.read_text())
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    result = run_board_python(sys.executable, ["-c", code], package.deploy)
    assert f"self-check: {IMAGES}/{IMAGES} decisions equal" in result.stdout
    assert result.returncode == 1 and "pynq is not installed" in result.stderr


# ------------------------------------------------------------------ the board's environment


@pytest.fixture(scope="session")
def board_python(tmp_path_factory):
    """python of a fresh venv with only the board runtime's packages, made once per session.

    finn-plus-driver installs here too (about 20 s) but stays out: it pulls in qonnx and onnx,
    which would hide an accidental import of them in the runtime; the self-check does not
    touch the DMA it provides."""
    venv = tmp_path_factory.mktemp("board-venv")
    start = time.perf_counter()
    subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    requirements = deploy.board_requirements(types.SimpleNamespace(FINN_PLUS_DRIVER_VERSION="0"))
    board_only = [
        line for line in requirements.splitlines() if not line.startswith("finn-plus-driver")
    ]
    (venv / "requirements.txt").write_text("\n".join(board_only) + "\n")
    install = [str(python), "-m", "pip", "install", "-q", "-r", str(venv / "requirements.txt")]
    subprocess.run(install, check=True)
    print(f"board venv set up in {time.perf_counter() - start:.1f} s")
    return python


def run_board_python(python, args, cwd):
    """`python args` as on the board: no PYTHONPATH to the repo, started outside it."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    command = [str(python), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def run_board(python, paths):
    # from the run folder, not the package folder: the script finds its files itself
    return run_board_python(python, [str(paths.board_script), "--self-check"], paths.root)


@pytest.mark.slow
def test_self_check_in_the_board_environment(board_python, package, tmp_path):
    numpy = run_board_python(
        board_python, ["-c", "import numpy; print(numpy.__version__)"], tmp_path
    )
    assert numpy.stdout.startswith("1."), numpy  # numpy<2, as on PYNQ images
    for absent in ("torch", "qonnx", "finn", "config", "modules"):
        probe = run_board_python(board_python, ["-c", f"import {absent}"], tmp_path)
        assert probe.returncode != 0, f"{absent} is importable in the board venv"
    result = run_board(board_python, package)
    print(result.stdout, result.stderr)
    assert result.returncode == 0
    assert result.stdout.splitlines() == [f"self-check: {IMAGES}/{IMAGES} decisions equal"]
    corrupted = run_board(board_python, corrupted_copy(package, tmp_path))
    assert corrupted.returncode == 1
    assert corrupted.stdout.splitlines()[-1] == f"self-check: {IMAGES - 1}/{IMAGES} decisions equal"
