"""`firesmoke run` passes --set values to the notebooks as literals: a tuple arrives as a
tuple, and a value crafted to break out of papermill's quoting runs nothing."""

import json

import nbformat
import pytest

from modules.commands._shared import parse_overrides
from modules.notebook_parameters import LiteralTranslator
from modules.pipeline import run_notebook


def probe_notebook(path, record):
    """A notebook with a parameters cell that writes what it received to `record`."""
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("PROFILE = None\nOVERRIDES = {}\nHEADLESS = False")
    parameters.metadata["tags"] = ["parameters"]
    report = nbformat.v4.new_code_cell(
        "import json\n"
        f"with open({str(record)!r}, 'w') as f:\n"
        "    json.dump({k: [type(v).__name__, repr(v)] for k, v in OVERRIDES.items()}, f)"
    )
    notebook.cells = [parameters, report]
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python"}
    nbformat.write(notebook, str(path))
    return path


def test_a_tuple_with_code_in_it_arrives_as_the_literal_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    payload = f'" + __import__("os").system("touch {marker}") + "'
    overrides = parse_overrides(
        [f"NAMES=({payload!r}, 2)", "SIZES=[1, (2, 3)]", 'LABEL=a"b', "TUPLE=(1.5,)"]
    )
    assert overrides["NAMES"] == (payload, 2)  # --set read it as a literal tuple
    notebook = probe_notebook(tmp_path / "probe.ipynb", tmp_path / "got.json")
    run_notebook(notebook, "demo", overrides, tmp_path / "out")
    assert not marker.exists()
    got = json.loads((tmp_path / "got.json").read_text())
    assert got["NAMES"] == ["tuple", repr((payload, 2))]
    assert got["SIZES"] == ["list", "[1, (2, 3)]"]
    assert got["LABEL"] == ["str", repr('a"b')]
    assert got["TUPLE"] == ["tuple", "(1.5,)"]


def test_a_value_that_is_not_a_literal_is_refused():
    with pytest.raises(ValueError, match="not a plain Python literal"):
        LiteralTranslator.translate(object())
    assert LiteralTranslator.translate(float("nan")) == "float('nan')"
