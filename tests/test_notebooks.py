"""Every notebook executes, in order, on the tiny profile and passes its own final checks."""

import json
import re

import pytest

from modules.pipeline import list_notebooks, run_notebook

NOTEBOOKS = list_notebooks()


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_on_tiny_profile(notebook, tiny_dirs, tmp_path_factory):
    out_dir = tmp_path_factory.getbasetemp() / "executed"
    executed = run_notebook(notebook, "tiny", dict(tiny_dirs), out_dir)
    cells = json.loads(executed.read_text())["cells"]
    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # nbformat stores multi-line text as a list of lines
    texts = [o.get("text", "") for o in cells[-1].get("outputs", [])]
    printed = "".join("".join(t) if isinstance(t, list) else t for t in texts)
    closing = printed.strip().splitlines()[-1] if printed.strip() else ""
    # each notebook's last cell prints exactly "NN ok: <figure>" after its assertions
    assert re.fullmatch(rf"{notebook.name[:2]} ok: \S.*", closing), closing
