import json
import subprocess
import types
from pathlib import Path

import pandas as pd
import pytest
import yaml

from modules.vivado import build as bitstream
from modules.vivado import reports


def _fake_tool(root, name):
    binary = Path(root) / "bin" / name
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    return binary


# ------------------------------------------------------------------ toolchain


def test_toolchain_missing_names_every_piece():
    status = bitstream.toolchain_status({"PATH": ""})
    assert not status.ready
    assert "XILINX_VIVADO" in status.message and "XILINX_HLS" in status.message
    assert "vivado" in status.message and "vitis_hls" in status.message


def test_toolchain_found_through_environment(tmp_path):
    _fake_tool(tmp_path / "Vivado", "vivado")
    _fake_tool(tmp_path / "Vitis_HLS", "vitis_hls")
    env = {
        "PATH": "",
        "XILINX_VIVADO": str(tmp_path / "Vivado"),
        "XILINX_HLS": str(tmp_path / "Vitis_HLS"),
    }
    status = bitstream.toolchain_status(env)
    assert status.ready, status.message
    assert status.vivado.endswith("vivado") and status.vitis_hls.endswith("vitis_hls")


def test_toolchain_reads_os_environ(tmp_path, monkeypatch):
    _fake_tool(tmp_path / "Vivado", "vivado")
    _fake_tool(tmp_path / "Vitis", "vitis-run")  # Vivado > 2024.2 runs HLS through vitis-run
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv("XILINX_VIVADO", str(tmp_path / "Vivado"))
    monkeypatch.setenv("XILINX_VITIS", str(tmp_path / "Vitis"))
    monkeypatch.delenv("XILINX_HLS", raising=False)
    assert bitstream.toolchain_status().ready
    monkeypatch.delenv("XILINX_VIVADO")
    status = bitstream.toolchain_status()
    assert not status.ready and "XILINX_VIVADO" in status.message


# ------------------------------------------------------------------ build config and folder


@pytest.fixture
def cfg(tiny_cfg):
    return types.SimpleNamespace(**{**vars(tiny_cfg), "CLOCK_MHZ": 125.0})


@pytest.fixture
def stage03(tmp_path):
    """Stand-ins for the stage-03 hand-over: a model with external data and a folding JSON."""
    model = tmp_path / "stage03" / "folded.onnx"
    model.parent.mkdir()
    model.write_bytes(b"onnx")
    model.with_name("folded.onnx.data").write_bytes(b"weights")
    folding = tmp_path / "stage03" / "folding.json"
    folding.write_text(json.dumps({"Defaults": {}, "MVAU_rtl_0": {"PE": 2, "SIMD": 3}}))
    return model, folding


def test_build_config_fields(cfg, stage03):
    from finn.builder.build_dataflow_config import (
        DataflowBuildConfig,
        default_build_dataflow_steps,
    )

    model, folding = stage03
    fields = bitstream.build_config(bitstream.build_settings(cfg), model, folding, "out")
    assert fields["synth_clk_period_ns"] == pytest.approx(8.0)
    assert fields["folding_config_file"] == str(folding)
    assert fields["board"] == cfg.BOARD and fields["shell_flow_type"] == "vivado_zynq"
    assert fields["fpga_part"] == "xc7z020clg400-1"
    assert {"bitfile", "pynq_driver", "deployment_package", "estimate_reports"} <= set(
        fields["generate_outputs"]
    )
    steps = fields["steps"]
    assert steps[0] == "step_apply_folding_config" and steps[-1] == "step_deployment_package"
    start = default_build_dataflow_steps.index(steps[0])
    assert steps == default_build_dataflow_steps[start : start + len(steps)]
    assert DataflowBuildConfig.from_dict(fields).synth_clk_period_ns == pytest.approx(8.0)


def test_build_config_without_bitfile_and_bad_board(cfg, stage03):
    model, folding = stage03
    no_bit = bitstream.build_settings(
        types.SimpleNamespace(**{**vars(cfg), "GENERATE_BITFILE": False})
    )
    outputs = bitstream.build_config(no_bit, model, folding, "out")["generate_outputs"]
    assert "bitfile" not in outputs and "stitched_ip" in outputs
    bad = {
        "config.BOARD": {"BOARD": "Zed"},
        "config.BOARD_PARTS": {"BOARD_PARTS": {cfg.BOARD: "xc7z010clg400-1"}},
        "config.CLOCK_MHZ": {"CLOCK_MHZ": 0},
    }
    for key, change in bad.items():
        with pytest.raises(ValueError, match=key):
            bitstream.build_settings(types.SimpleNamespace(**{**vars(cfg), **change}))


def test_build_folder_content(cfg, stage03, tmp_path):
    from finn.builder.build_dataflow_config import DataflowBuildConfig

    model, folding = stage03
    folder = bitstream.write_build_folder(
        bitstream.build_settings(cfg), model, folding, tmp_path / "build"
    )
    assert folder.model.read_bytes() == b"onnx"
    assert (folder.root / "folded.onnx.data").read_bytes() == b"weights"
    assert json.loads(folder.folding.read_text()) == json.loads(folding.read_text())
    fields = json.loads(folder.config_json.read_text())
    assert yaml.safe_load(folder.config_yaml.read_text()) == fields
    # FINN resolves the relative folding path against the config file, i.e. to our copy
    for config_file in (folder.config_json, folder.config_yaml):
        dfbc = DataflowBuildConfig.construct_from(config_file)
        assert dfbc.folding_config_file == folder.folding.absolute()
    script = folder.script.read_text()
    assert 'build_dataflow_cfg("folded.onnx", cfg)' in script
    assert "finn build --batch build_config.yaml folded.onnx" in script
    assert folder.script.stat().st_mode & 0o111
    subprocess.run(["bash", "-n", str(folder.script)], check=True)


def test_build_folder_names_missing_inputs(cfg, stage03, tmp_path):
    model, folding = stage03
    with pytest.raises(FileNotFoundError, match="nothere.onnx"):
        bitstream.write_build_folder(
            bitstream.build_settings(cfg), tmp_path / "nothere.onnx", folding, tmp_path / "b"
        )
    with pytest.raises(FileNotFoundError, match="nofold.json"):
        bitstream.write_build_folder(
            bitstream.build_settings(cfg), model, tmp_path / "nofold.json", tmp_path / "b"
        )


def test_run_build_without_vivado_is_skipped(cfg, stage03, tmp_path):
    model, folding = stage03
    folder = bitstream.write_build_folder(
        bitstream.build_settings(cfg), model, folding, tmp_path / "build"
    )
    result = bitstream.run_build(folder, status=bitstream.toolchain_status({"PATH": ""}))
    assert result.status == "skipped" and not result.built
    assert "XILINX_VIVADO" in result.reason and str(folder.script) in result.reason


# ------------------------------------------------------------------ Vivado report parsers

UTILIZATION_REPORT = """\
Copyright 1986-2022 Xilinx, Inc. All Rights Reserved.
-------------------------------------------------------------------------------------------
| Tool Version : Vivado v.2022.2 (lin64) Build 3671981 Fri Oct 14 04:59:54 MDT 2022
| Command      : report_utilization -file ooc_utilization.rpt
| Design       : finn_design_wrapper
| Device       : xc7z020clg400-1
| Design State : Routed
-------------------------------------------------------------------------------------------

Utilization Design Information

1. Slice Logic
--------------

+----------------------------+-------+-------+------------+-----------+-------+
|          Site Type         |  Used | Fixed | Prohibited | Available | Util% |
+----------------------------+-------+-------+------------+-----------+-------+
| Slice LUTs                 | 14592 |     0 |          0 |     53200 | 27.43 |
|   LUT as Logic             | 12706 |     0 |          0 |     53200 | 23.88 |
|   LUT as Memory            |  1886 |     0 |          0 |     17400 | 10.84 |
| Slice Registers            | 19234 |     0 |          0 |    106400 | 18.08 |
|   Register as Flip Flop    | 19234 |     0 |          0 |    106400 | 18.08 |
| F7 Muxes                   |    97 |     0 |          0 |     26600 |  0.36 |
+----------------------------+-------+-------+------------+-----------+-------+

3. Memory
---------

+-------------------+------+-------+------------+-----------+-------+
|     Site Type     | Used | Fixed | Prohibited | Available | Util% |
+-------------------+------+-------+------------+-----------+-------+
| Block RAM Tile    | 34.5 |     0 |          0 |       140 | 24.64 |
|   RAMB36/FIFO*    |   30 |     0 |          0 |       140 | 21.43 |
|   RAMB18          |    9 |     0 |          0 |       280 |  3.21 |
+-------------------+------+-------+------------+-----------+-------+

4. DSP
------

+----------------+------+-------+------------+-----------+-------+
|    Site Type   | Used | Fixed | Prohibited | Available | Util% |
+----------------+------+-------+------------+-----------+-------+
| DSPs           |   68 |     0 |          0 |       220 | 30.91 |
|   DSP48E1 only |   68 |       |            |           |       |
+----------------+------+-------+------------+-----------+-------+
"""

# synthesized (not routed) designs star the LUT row; older Vivado has no "Prohibited" column
SYNTH_UTILIZATION_REPORT = """\
+-------------------------+------+-------+-----------+-------+
|        Site Type        | Used | Fixed | Available | Util% |
+-------------------------+------+-------+-----------+-------+
| Slice LUTs*             |  812 |     0 |     53200 |  1.53 |
| Slice Registers         |  990 |     0 |    106400 |  0.93 |
| Block RAM Tile          |    0 |     0 |       140 |  0.00 |
| DSPs                    |    2 |     0 |       220 |  0.91 |
+-------------------------+------+-------+-----------+-------+
"""


def _timing_report(wns, tns, failing, verdict):
    return f"""\
Timing Report

------------------------------------------------------------------------------------------------
| Design Timing Summary
| ---------------------
------------------------------------------------------------------------------------------------

    WNS(ns)      TNS(ns)  TNS Failing Endpoints  TNS Total Endpoints      WHS(ns)      THS(ns)  THS Failing Endpoints  THS Total Endpoints     WPWS(ns)     TPWS(ns)  TPWS Failing Endpoints  TPWS Total Endpoints
    -------      -------  ---------------------  -------------------      -------      -------  ---------------------  -------------------     --------     --------  ----------------------  --------------------
    {wns:7.3f}      {tns:7.3f}  {failing:21d}                35412        0.021        0.000                      0                35412        3.750        0.000                       0                 15937


{verdict}


------------------------------------------------------------------------------------------------
| Clock Summary
"""  # noqa: E501


def test_parse_utilization_report(tmp_path):
    path = tmp_path / "ooc_utilization.rpt"
    path.write_text(UTILIZATION_REPORT)
    util = reports.parse_utilization_report(path)
    assert util["LUT"] == {"used": 14592, "available": 53200, "util_pct": 27.43}
    assert util["FF"]["used"] == 19234
    assert util["BRAM_36K"] == {"used": 34.5, "available": 140, "util_pct": 24.64}
    assert util["DSP"]["used"] == 68 and util["DSP"]["available"] == 220
    path.write_text(SYNTH_UTILIZATION_REPORT)
    util = reports.parse_utilization_report(path)
    assert util["LUT"]["used"] == 812 and util["DSP"]["util_pct"] == 0.91


def test_parse_timing_report_met_and_failing(tmp_path):
    path = tmp_path / "timing.rpt"
    path.write_text(_timing_report(1.234, 0.0, 0, "All user specified timing constraints are met."))
    timing = reports.parse_timing_report(path)
    assert timing == {
        "wns_ns": 1.234,
        "tns_ns": 0.0,
        "whs_ns": 0.021,
        "ths_ns": 0.0,
        "failing_endpoints": 0,
        "met": True,
    }
    assert reports.achievable_mhz(timing, 10.0) == pytest.approx(1000 / 8.766)
    path.write_text(_timing_report(-0.412, -23.5, 57, "Timing constraints are not met."))
    timing = reports.parse_timing_report(path)
    assert not timing["met"] and timing["wns_ns"] == -0.412 and timing["failing_endpoints"] == 57


def test_malformed_reports_name_the_file(tmp_path):
    path = tmp_path / "garbage.rpt"
    path.write_text("this is not a Vivado report\n| a | b |\n")
    with pytest.raises(ValueError, match="garbage.rpt.*report_utilization"):
        reports.parse_utilization_report(path)
    with pytest.raises(ValueError, match="garbage.rpt.*report_timing_summary"):
        reports.parse_timing_report(path)
    truncated = tmp_path / "truncated.rpt"
    truncated.write_text(_timing_report(1.0, 0.0, 0, "").split("Clock Summary")[0][:-400])
    with pytest.raises(ValueError, match="truncated.rpt"):
        reports.parse_timing_report(truncated)


def test_synthesis_vs_estimates(tmp_path):
    path = tmp_path / "ooc_utilization.rpt"
    path.write_text(UTILIZATION_REPORT)
    totals = pd.DataFrame(
        {
            "used": [21000.0, 26000.0, 36.0, 68.0],
            "accelerator only": [16600.0, 20600.0, 36.0, 68.0],
            "FINN per-layer": [9000.0, None, 19.0, 34.0],
        },
        index=pd.Index(["LUT", "FF", "BRAM36", "DSP"], name="resource"),
    )
    report = reports.parse_utilization_report(path)
    table = reports.synthesis_vs_estimates(report, totals)
    assert list(table.index) == ["LUT", "FF", "BRAM36", "DSP"]
    assert table.loc["BRAM36", "synthesis"] == 34.5 and table.loc["BRAM36", "available"] == 140
    assert table.loc["LUT", "model"] == 16600  # out of context: the accelerator alone
    assert table.loc["DSP", "synthesis / model"] == 1.0
    assert table.loc["DSP", "synthesis / FINN per-layer"] == 2.0
    assert table["FINN per-layer"].isna().loc["FF"]  # FINN does not estimate flip-flops
    full = reports.synthesis_vs_estimates(report, totals, scope="full")
    assert full.loc["LUT", "model"] == 21000


def test_collect_build_outputs(tmp_path):
    out = tmp_path / "output"
    (out / "bitfile").mkdir(parents=True)
    (out / "bitfile" / "finn-accel.bit").write_bytes(b"bit")
    (out / "bitfile" / "finn-accel.hwh").write_text("<hwh/>")
    (out / "driver").mkdir()
    project = tmp_path / "vivado_stitch_proj"
    project.mkdir()
    (project / "ooc_utilization.rpt").write_text(UTILIZATION_REPORT)
    report = out / "report"
    report.mkdir()
    (report / "ooc_synth_and_timing.json").write_text(
        json.dumps({"vivado_proj_folder": str(project)})
    )
    (report / "post_route_timing.rpt").write_text(
        _timing_report(0.5, 0.0, 0, "All user specified timing constraints are met.")
    )
    result = bitstream.collect_build_outputs(out)
    assert result.built and result.bitfile.name == "finn-accel.bit"
    assert result.hwh.name == "finn-accel.hwh" and result.driver_dir == out / "driver"
    utilization, timing = reports.read_build_reports(result.report_dir)
    assert utilization["LUT"]["used"] == 14592 and timing["met"]
    assert not bitstream.collect_build_outputs(tmp_path / "empty").built
