"""The run report: one Markdown file with the figures and plots of every stage.

Notebooks save their tables with `save_table` (CSV in the run's logs folder); `write_run_report`
collects whatever the run produced, stage by stage, into RUN/report.md.
"""

import json
from pathlib import Path

import pandas as pd

# (section title, table names in logs/ (CSV or JSON stem patterns), plot patterns in plots/)
SECTIONS = [
    ("01 · FP32 training", ["fp32_test_metrics", "01_*"], ["fp32_*.png"]),
    ("02 · Brevitas QAT and QONNX export", ["brevitas-*_test_metrics", "02_*"], ["brevitas-*.png"]),
    ("03 · FINN dataflow graph and estimates", ["03_*"], ["03_*.png"]),
    ("04 · Bitstream", ["04_*"], ["04_*.png"]),
    ("05 · Accelerator inference", ["05_*"], ["05_*.png"]),
    ("06 · Design space (Optuna sweep)", ["06_*"], ["06_*.png"]),
]


def save_table(paths, name, table):
    """Save a DataFrame (or Series / dict) as logs/<name>.csv for the run report."""
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(pd.Series(table))
    path = paths.table(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path)
    return path


def _table_markdown(path):
    if path.suffix == ".json":
        frame = pd.Series(json.loads(path.read_text()), name="value").to_frame()
    else:
        frame = pd.read_csv(path, index_col=0)
    return frame.to_markdown(floatfmt=".4g")


def _section(paths, title, table_patterns, plot_patterns):
    lines = [f"## {title}", ""]
    logs = Path(paths.logs)
    tables = [p for pattern in table_patterns for p in sorted(logs.glob(f"{pattern}.*"))]
    tables = [p for p in tables if p.suffix in (".csv", ".json")]
    plots = [p for pattern in plot_patterns for p in sorted(Path(paths.plots).glob(pattern))]
    if not tables and not plots:
        return lines + ["_This stage has not run in this run folder._", ""]
    for table in tables:
        lines += [f"**{table.stem}**", "", _table_markdown(table), ""]
    for plot in plots:
        lines += [f"![{plot.stem}]({plot.relative_to(paths.root).as_posix()})", ""]
    return lines


def model_statement(paths, cfg):
    """What the run trained: the classifier's architecture, or the detector's cfg and anchors."""
    if cfg.TASK == "detect":
        spec = _read_json(paths.detect_spec)
        anchors = spec.get("anchors") if spec else None
        shown = ", ".join(f"{w:.0f}x{h:.0f}" for w, h in anchors) if anchors else "not exported yet"
        return (
            f"detector cfg `{cfg.DETECTOR_CFG}` at width {cfg.DETECTOR_WIDTH_MULT}, "
            f"{cfg.IMG_SIZE}x{cfg.IMG_SIZE} letterboxed input, anchors (px) {shown}"
        )
    return f"classifier `{cfg.MODEL}` at width {cfg.WIDTH_MULT}, {cfg.IMG_SIZE}px input"


def deployed_statement(paths):
    """Which quantized model notebooks 03-05 use, and why (02's deployed-model record)."""
    deployed = _read_json(paths.deployed_model)
    if not deployed:
        return "Deployed model: not chosen yet (notebook 02 has not run)."
    return (f"Deployed model (03-05): **{deployed['choice'].upper()}** `{deployed['kind']}`: "
            f"{deployed['reason']}")  # fmt: skip


def _read_json(path):
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def write_run_report(paths, cfg, title="Run report"):
    lines = [f"# {title}: `{paths.root}`", ""]
    lines += [
        f"Task `{cfg.TASK}`: {model_statement(paths, cfg)}; dataset `{cfg.DATASET}`, "
        f"{cfg.EPOCHS} FP32 epochs, W{cfg.WEIGHT_BIT_WIDTH}A{cfg.ACT_BIT_WIDTH} QAT.",
        "",
        deployed_statement(paths),
        "",
    ]
    for section in SECTIONS:
        lines += _section(paths, *section)
    path = paths.report
    path.write_text("\n".join(lines))
    return path
