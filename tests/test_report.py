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


def test_detector_report_names_the_detector_and_the_deployed_model(tiny_cfg, tmp_path):
    from modules.models.quant_layers import BitWidths
    from modules.quantization.deployed import DeployedModel

    values = {**vars(tiny_cfg), "RUNS_DIR": str(tmp_path), "RUN_NAME": "d", "TASK": "detect"}
    cfg = types.SimpleNamespace(**values)
    paths = run_paths(cfg).ensure()
    paths.detect_spec.parent.mkdir(parents=True, exist_ok=True)
    paths.detect_spec.write_text('{"anchors": [[10.0, 14.0], [23.0, 27.0]]}')
    reason = "PTQ within MAX_PTQ_DROP (DEPLOY_MODEL = 'qat')"
    DeployedModel("qat", "brevitas-w4a4", BitWidths(), paths.checkpoint("x"), paths.onnx / "h.onnx",
                  reason).save(paths.deployed_model)  # fmt: skip
    save_table(paths, "02_ptq_gate", pd.Series({"gate_verdict": "ptq"}))
    text = write_run_report(paths, cfg).read_text()
    head = text.split("## 01")[0]
    assert cfg.MODEL not in head and f"detector cfg `{cfg.DETECTOR_CFG}`" in head
    assert "anchors (px) 10x14, 23x27" in head
    assert "**QAT** `brevitas-w4a4`" in head and reason in head
