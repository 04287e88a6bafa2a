"""RUN/report.json (modules/reporting/summary.py) from the files the notebooks write."""

import json

import pandas as pd

from modules.reporting.report import save_table
from modules.reporting.summary import write_run_summary
from modules.run_paths import RunPaths


def test_summary_of_a_run_that_has_not_started_is_all_null(tmp_path):
    paths = RunPaths(tmp_path / "run").ensure()
    summary = json.loads(write_run_summary(paths, "detect", {}).read_text())
    assert summary == {
        "task": "detect",
        "metric": "map50",
        "headline": {"fp32": None, "quantized": None, "hardware": None},
        "deployed_model": None,
        "qat": None,
        "ptq": None,
        "stages_identical": None,
        "fps_estimate": None,
        "fits": None,
        "wall_s": {},
    }


def test_summary_collects_every_stage(tmp_path):
    paths = RunPaths(tmp_path / "run").ensure()
    paths.test_metrics("fp32").write_text(json.dumps({"mean_f1": 0.9, "smoke_f1": 0.8}))
    paths.test_metrics("brevitas-w4a4").write_text(json.dumps({"mean_f1": 0.87}))
    save_table(paths, "03_hardware_metrics", pd.Series({"mean_f1": 0.86, "x": 1.0}))
    stages = pd.DataFrame(
        {"identical_outputs_%": [100.0, 97.0], "must_be_identical": [True, False]},
        index=["qonnx", "fp32"],
    )
    save_table(paths, "03_stage_equivalence", stages)
    paths.handoff.write_text(json.dumps({"fps": 1234.5, "fits": True}))
    path = write_run_summary(paths, "classify", {"03": 12.34, "01": 5})
    assert path == tmp_path / "run" / "report.json"
    summary = json.loads(path.read_text())
    assert summary["headline"] == {"fp32": 0.9, "quantized": 0.87, "hardware": 0.86}
    assert summary["stages_identical"] is True
    assert (summary["fps_estimate"], summary["fits"]) == (1234.5, True)
    assert summary["wall_s"] == {"01": 5.0, "03": 12.3}
    stages.loc["qonnx", "identical_outputs_%"] = 99.0
    save_table(paths, "03_stage_equivalence", stages)
    assert (
        json.loads(write_run_summary(paths, "classify", {}).read_text())["stages_identical"]
        is False
    )


def test_quantized_headline_is_the_model_02_deployed(tmp_path):
    paths = RunPaths(tmp_path / "run").ensure()
    paths.test_metrics("brevitas-w4a4").write_text(json.dumps({"map50": 0.55}))
    paths.test_metrics("ptq-w8a8").write_text(json.dumps({"map50": 0.61}))
    paths.deployed_model.write_text(json.dumps({"kind": "ptq-w8a8"}))
    summary = json.loads(write_run_summary(paths, "detect", {}).read_text())
    assert summary["headline"]["quantized"] == 0.61 and summary["deployed_model"] == "ptq-w8a8"
    assert (summary["qat"], summary["ptq"]) == (0.55, 0.61)
