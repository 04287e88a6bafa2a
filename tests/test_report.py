import types

import matplotlib.pyplot as plt
import pandas as pd

from modules.reporting.report import save_table, write_run_report
from modules.run_paths import run_paths


def test_report_collects_tables_and_plots_and_marks_missing_stages(tiny_cfg, tmp_path):
    cfg = types.SimpleNamespace(**{**vars(tiny_cfg), "RUNS_DIR": str(tmp_path), "RUN_NAME": "r"})
    paths = run_paths(cfg).ensure()
    (paths.logs / "fp32_test_metrics.json").write_text('{"mean_f1": 0.8125}')
    save_table(paths, "02_qonnx_equivalence", pd.DataFrame({"max_abs_diff": [0.0]}, ["qonnx"]))
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    fig.savefig(paths.plots / "fp32_curves.png")
    text = write_run_report(paths, cfg).read_text()
    assert "0.8125" in text and "qonnx" in text
    assert "![fp32_curves](plots/fp32_curves.png)" in text
    section_03 = text.split("## 03")[1].split("## 04")[0]
    assert "has not run" in section_03
