"""The set-up files stay in step: conda envs, pinned requirements, Makefile, CI, notebooks."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pip_lines(yml):
    lines = (ROOT / yml).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    return [line.strip()[2:].strip() for line in lines[start + 1 :] if line.strip().startswith("-")]


def _requirements(path):
    """Resolved 'name==version' lines of a requirements file, following -r includes."""
    pins = {}
    for line in (ROOT / path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            pins.update(_requirements(Path(path).parent / line[3:]))
        elif line:
            name, _, version = line.partition("==")
            assert version, f"{path}: {line!r} is not pinned with =="
            pins[re.sub(r"\[.*\]", "", name).lower()] = version
    return pins


def _python_version(yml):
    match = re.search(r"^\s*- python=(\S+)", (ROOT / yml).read_text(), re.M)
    return match.group(1)


def test_conda_envs_install_the_same_files_as_make():
    makefile = (ROOT / "Makefile").read_text()
    assert _pip_lines("environment_fp32.yml") == [
        "-r requirements/fp32.txt", "-r requirements/dev.txt", "-e .",
    ]  # fmt: skip
    assert _pip_lines("environment_brevitas.yml") == [
        "-r requirements/brevitas.txt", "-r requirements/dev.txt", "-e .",
    ]  # fmt: skip
    assert "-r requirements/brevitas.txt -r requirements/dev.txt" in makefile
    assert "--no-deps -r requirements/finn.txt" in makefile
    assert (
        "pip install --no-deps -r requirements/finn.txt"
        in (ROOT / "environment_brevitas.yml").read_text()
    )


def test_both_envs_use_the_python_of_make():
    assert _python_version("environment_fp32.yml") == "3.11"
    assert _python_version("environment_brevitas.yml") == "3.11"
    assert "PYTHON ?= python3.11" in (ROOT / "Makefile").read_text()


def test_brevitas_env_extends_fp32_env_without_changing_its_pins():
    fp32, brevitas = (
        _requirements("requirements/fp32.txt"),
        _requirements("requirements/brevitas.txt"),
    )
    assert {k: brevitas[k] for k in fp32} == fp32
    assert {"brevitas", "qonnx"} <= set(brevitas) - set(fp32)
    assert "torch" in fp32 and "finn-plus" not in brevitas  # finn-plus goes in --no-deps
    assert _requirements("requirements/finn.txt") == {"finn-plus": "1.6.1"}


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make run" in readme


def test_notebooks_are_committed_without_outputs():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"], f"{path.name} has outputs: strip them"
                assert cell["execution_count"] is None, f"{path.name} has execution counts"


def test_notebooks_hold_no_sys_path_edits():
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        assert "sys.path" not in path.read_text(), path.name
