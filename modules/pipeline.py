"""Runs the numbered notebooks in order, headless, saving executed copies in the run folder.

    firesmoke run --profile demo [--only 01 02] [--set EPOCHS=3 IMG_SIZE=64]

Each notebook receives PROFILE and OVERRIDES as papermill parameters (written as literals,
modules/notebook_parameters.py) and applies them to config.
"""

import argparse
import time
from pathlib import Path

import papermill

import config
from modules.notebook_parameters import use_literal_parameters
from modules.reporting.report import write_run_report
from modules.reporting.summary import write_run_summary
from modules.run_paths import run_paths

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
KERNEL = "python3"


def list_notebooks(only=None):
    notebooks = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if only:
        notebooks = [nb for nb in notebooks if nb.name[:2] in only]
    return notebooks


def run_notebook(notebook, profile, overrides, out_dir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / notebook.name
    started = time.perf_counter()
    print(f"--> {notebook.name} (profile {profile}) -> {output}", flush=True)
    use_literal_parameters(KERNEL)
    papermill.execute_notebook(
        str(notebook),
        str(output),
        parameters={"PROFILE": profile, "OVERRIDES": overrides, "HEADLESS": True},
        cwd=str(REPO_ROOT),
        kernel_name=KERNEL,
        progress_bar=False,
        log_output=False,
    )
    print(f"    {notebook.name} done in {time.perf_counter() - started:.0f} s", flush=True)
    return output


def run_pipeline(profile, overrides=None, only=None):
    """Execute the notebooks, then write the run report (RUN/report.md)."""
    overrides = overrides or {}
    cfg = _namespace(config.apply(profile, **overrides))
    config.apply()
    paths = run_paths(cfg)
    outputs, wall_s = [], {}
    for notebook in list_notebooks(only):
        started = time.perf_counter()
        outputs.append(run_notebook(notebook, profile, overrides, paths.notebooks))
        wall_s[notebook.name[:2]] = time.perf_counter() - started
    print(f"run report: {write_run_report(paths, cfg)}")
    print(f"run figures: {write_run_summary(paths, cfg.TASK, wall_s)}")
    return outputs


def _namespace(values):
    return argparse.Namespace(**values)
