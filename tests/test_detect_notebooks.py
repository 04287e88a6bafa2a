"""Every notebook runs the detection task on the tiny profile with TASK=detect: train, quantize,
compile (HW-only, bit-exact), package and run the emulated accelerator."""

import json
import re

import pytest

from modules.pipeline import list_notebooks, run_notebook

DETECT_NOTEBOOKS = list_notebooks()
# 64: a 2x2 head grid at stride 32; FIT_IMG_SIZE: notebook 03 also fits the trained detector
# at another input size (demo-tinier's 416, here 96 to stay quick)
DETECT_OVERRIDES = {"TASK": "detect", "IMG_SIZE": 64, "FIT_IMG_SIZE": 96}


@pytest.mark.slow
@pytest.mark.parametrize("notebook", DETECT_NOTEBOOKS, ids=[nb.stem for nb in DETECT_NOTEBOOKS])
def test_notebook_runs_detection_on_tiny_profile(notebook, tiny_dirs, tmp_path_factory):
    out_dir = tmp_path_factory.getbasetemp() / "executed-detect"
    tiny_detect = {**tiny_dirs, **DETECT_OVERRIDES, "RUN_NAME": "tiny-detect"}
    executed = run_notebook(notebook, "tiny", tiny_detect, out_dir)
    cells = json.loads(executed.read_text())["cells"]
    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # nbformat stores multi-line text as a list of lines
    texts = [o.get("text", "") for o in cells[-1].get("outputs", [])]
    printed = "".join("".join(t) if isinstance(t, list) else t for t in texts)
    closing = printed.strip().splitlines()[-1] if printed.strip() else ""
    number = notebook.name[:2]
    figure = r"test mAP@0\.5 \S+" if number in ("01", "02") else r"\S.*"
    assert re.fullmatch(rf"{number} ok: {figure}", closing), closing
