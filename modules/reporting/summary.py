"""RUN/report.json: the run's headline figures in one machine-readable file (both tasks).

    {"task": "classify" | "detect", "metric": "mean_f1" | "map50",
     "headline": {"fp32": x, "quantized": y, "hardware": z},  # quantized: the deployed model
     "deployed_model": kind, "qat": x, "ptq": x,
     "stages_identical": true | false, "fps_estimate": n, "fits": true | false,
     "wall_s": {"01": s, ...}}

Everything is read from the files the notebooks already write (test metrics JSON, 03's tables,
handoff.json); a stage that has not run gives null.
"""

import json
import math

import pandas as pd

METRICS = {"classify": "mean_f1", "detect": "map50"}


def _json(path):
    return json.loads(path.read_text()) if path.is_file() else None


def _number(value):
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def test_metric(paths, pattern, metric):
    """The metric from the newest logs/<pattern>_test_metrics.json, or None."""
    found = paths.logs.glob(paths.test_metrics(pattern).name)  # the name RunPaths gives
    files = sorted(found, key=lambda p: p.stat().st_mtime)
    return _number(_json(files[-1]).get(metric)) if files else None


def table_value(paths, name, row):
    """One value of a Series saved with save_table (logs/<name>.csv), or None."""
    path = paths.table(name)
    if not path.is_file():
        return None
    series = pd.read_csv(path, index_col=0).iloc[:, 0]
    return _number(series.get(row))


def stages_identical(paths):
    path = paths.table("03_stage_equivalence")
    if not path.is_file():
        return None
    table = pd.read_csv(path, index_col=0)
    must = table[table["must_be_identical"].astype(bool)]
    # as rounding_ties.matches: identical, or every difference a flip at a rounding tie
    ties = must.get("explained_by_ties", pd.Series(False, index=must.index)).astype(str) == "True"
    return bool(((must["identical_outputs_%"] >= 100.0) | ties).all())


def run_summary(paths, task, wall_s):
    metric = METRICS[task]
    handoff = _json(paths.handoff) or {}
    deployed = _json(paths.deployed_model) or {}  # 02's choice: the model 03-05 compile
    return {
        "task": task,
        "metric": metric,
        "headline": {
            "fp32": test_metric(paths, "fp32", metric),
            "quantized": test_metric(paths, deployed.get("kind", "brevitas-*"), metric),
            "hardware": table_value(paths, "03_hardware_metrics", metric),
        },
        "deployed_model": deployed.get("kind"),
        "qat": test_metric(paths, "brevitas-*", metric),
        "ptq": test_metric(paths, "ptq-*", metric),
        "stages_identical": stages_identical(paths),
        "fps_estimate": _number(handoff.get("fps")),
        "fits": handoff.get("fits"),
        "wall_s": {stage: round(float(s), 1) for stage, s in sorted(wall_s.items())},
    }


def write_run_summary(paths, task, wall_s):
    """Write RUN/report.json beside report.md; returns its path."""
    paths.summary.write_text(json.dumps(run_summary(paths, task, wall_s), indent=2))
    return paths.summary
