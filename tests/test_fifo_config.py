"""Stage 03's FIFO depths reach the bitstream build: FINN's own builder steps, run on the
folded design as the build runs them (only the HLS/RTL code generation, which needs Vivado,
left out), apply our fifo_config.json to every FIFO they insert."""

import copy
import json

import pytest
from qonnx.custom_op.registry import getCustomOp

from modules.dataflow import flow as finn_flow
from modules.hardware import fifo_sizing
from modules.hardware.fifo_config import FIFO_OP, builder_fifo_config
from modules.vivado import build

PART = "xc7z020clg400-1"


def _builder_fifos(folded, tmp_path, fifo_config, monkeypatch):
    """FIFO name -> (depth, ram_style) after FINN's builder steps from the folding config to
    step_set_fifo_depths, reading `fifo_config` the way a build folder hands it over."""
    import finn.xsi

    # the steps module names Vivado's simulator only in a type annotation; without Vivado
    # its lazy import raises, so give it a placeholder
    monkeypatch.setitem(vars(finn.xsi), "SimEngine", object)
    from finn.builder import build_dataflow_steps as steps
    from finn.builder.build_dataflow_config import DataflowBuildConfig

    def skip_codegen(model, cfg, parent_node=None):
        return model

    monkeypatch.setattr(steps, "step_hw_codegen", skip_codegen)
    monkeypatch.setattr(steps, "step_hw_ipgen", skip_codegen)
    folding = finn_flow.save_folding_config(folded, tmp_path / "folding.json")
    config_file = tmp_path / "fifo_config.json"
    config_file.write_text(json.dumps(fifo_config))
    settings = build.BuildSettings(board="Pynq-Z2", part=PART, clock_mhz=100.0)
    fields = build.build_config(settings, "model.onnx", folding, tmp_path / "out", config_file)
    cfg = DataflowBuildConfig.from_dict(fields)
    model = copy.deepcopy(folded)
    for name in fields["steps"][: fields["steps"].index("step_generate_hardware")]:
        if name in ("step_generate_estimate_reports", "step_assign_ddr_weight_offsets"):
            continue  # reports and DDR offsets: they neither add nor rename nodes
        model = steps.build_dataflow_step_lookup[name](model, cfg)
    model = steps.step_set_fifo_depths(model, cfg)
    return {
        node.name: (getCustomOp(node).get_nodeattr("depth"), getCustomOp(node).get_ram_style())
        for node in model.get_nodes_by_op_type(FIFO_OP)
    }


@pytest.mark.parametrize("method", fifo_sizing.METHODS)
def test_builder_applies_the_estimated_fifo_depths(mobilenet_flow, tmp_path, monkeypatch, method):
    folded = mobilenet_flow["flow"].folded
    config = builder_fifo_config(folded, PART, method)
    built = _builder_fifos(folded, tmp_path, config, monkeypatch)
    assert set(built) == set(config["fifo_depths"])  # same FIFOs, named as the builder names
    assert {name: depth for name, (depth, _) in built.items()} == config["fifo_depths"]
    deep = [name for name, depth in config["fifo_depths"].items() if depth > 2]
    assert deep, "the residual design has skip FIFOs deeper than FINN's minimum"
    # the part has no URAM: what fifo.sv would put there goes to block RAM, in both
    assert all(style != "ultra" for _, style in built.values())


def test_build_config_uses_stage03_fifo_depths(tmp_path):
    settings = build.BuildSettings(board="Pynq-Z2", part=PART, clock_mhz=100.0)
    with_depths = build.build_config(settings, "m.onnx", "f.json", "out", "fifo_config.json")
    assert with_depths["auto_fifo_depths"] is False
    assert with_depths["fifo_config_file"] == "fifo_config.json"
    assert "auto_fifo_depths" not in build.build_config(settings, "m.onnx", "f.json", "out")


def test_build_folder_names_a_missing_fifo_config(tmp_path):
    model, folding = tmp_path / "m.onnx", tmp_path / "f.json"
    model.write_bytes(b"onnx")
    folding.write_text("{}")
    settings = build.BuildSettings(board="Pynq-Z2", part=PART, clock_mhz=100.0)
    with pytest.raises(FileNotFoundError, match="gone.json"):
        build.write_build_folder(settings, model, folding, tmp_path / "b", tmp_path / "gone.json")
