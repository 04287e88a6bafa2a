"""Designs whose MVAUs stream their weights from DRAM (mem_mode "external"): the weight buffer
is byte for byte FINN's (InsertIODMA + to_external_tensor), the emulator computes with the
weights decoded from that stream, and every stage from Brevitas to the emulator stays
bit-exact on real networks (our MobileNetV2-mini: INT weights, VVAUs; CNV: XNOR MVAUs)."""

import dataclasses
import json
import re

import numpy as np
import pytest
from finn.transformation.fpgadataflow.insert_iodma import InsertIODMA
from finn.util.data_packing import to_external_tensor
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from modules.dataflow import flow as finn_flow
from modules.dataflow import stage_check
from modules.dataflow.external_weights import (
    check_dma_packable,
    external_weight_layers,
    set_external_weights,
    weight_stream,
    weights_from_stream,
)
from modules.hardware.emulator import Emulator

FLOWS = ["mobilenet_flow", "cnv_flow"]


def _copy(model):
    return ModelWrapper(model.model.__deepcopy__())


def _mvaus(model):
    return [n for n in model.graph.node if n.op_type.startswith("MVAU")]


def _streamable(model):
    """MVAUs whose stream word is whole bytes (what FINN's driver packer takes)."""
    names = []
    for node in _mvaus(model):
        try:
            check_dma_packable(model, node)
        except ValueError:
            continue
        names.append(node.name)
    return names


def _external_design(flow, names=None):
    folded = _copy(flow.folded)
    set_external_weights(folded, names if names is not None else _streamable(folded))
    return dataclasses.replace(flow, folded=folded)


@pytest.mark.parametrize("name", FLOWS)
def test_weight_stream_is_finns_dma_buffer(name, request):
    folded = _external_design(request.getfixturevalue(name)["flow"]).folded
    checked = 0
    for layer in external_weight_layers(folded):
        node = folded.get_node_from_name(layer)
        op = getCustomOp(node)
        weights = folded.get_initializer(node.input[1])
        if weights.size > 150_000:  # FINN's packer appends row by row: quadratic time
            continue
        mem = InsertIODMA().get_mem_init(weights, op.get_nodeattr("PE"), op.get_nodeattr("SIMD"))
        finn_bytes = to_external_tensor(mem, op.get_input_datatype(1))
        stream = weight_stream(folded, node)
        assert stream.dtype == np.uint8 and np.array_equal(stream, finn_bytes)
        assert np.array_equal(weights_from_stream(folded, node, stream), weights)
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("name", FLOWS)
def test_stages_bit_exact_with_external_weights(name, request, tmp_path):
    run = request.getfixturevalue(name)
    flow = _external_design(run["flow"])
    external = external_weight_layers(flow.folded)
    assert len(external) >= 2
    stages = stage_check.flow_stages(flow, run["brevitas"], str(tmp_path), emulator=Emulator)
    assert list(stages)[-2:] == ["folded", "emulated"]
    table, outputs = stage_check.stage_equivalence(stages, run["images"])
    stage_check.assert_identical(table)
    assert table.loc["emulated", "must_be_identical"]
    assert np.array_equal(outputs["emulated"], outputs["brevitas"])


def test_emulator_computes_with_the_streamed_bytes(mobilenet_flow, tmp_path):
    run = mobilenet_flow
    flow = _external_design(run["flow"])
    design = stage_check.with_child(flow.parent, flow.folded, tmp_path / "d.onnx")
    layer = external_weight_layers(flow.folded)[0]
    node = flow.folded.get_node_from_name(layer)
    stream = weight_stream(flow.folded, node)
    reference = Emulator(design)(run["images"])
    given = Emulator(design, weight_streams={layer: stream.copy()})(run["images"])
    assert np.array_equal(given, reference)
    flipped = stream.copy()
    flipped[: len(flipped) // 2] ^= 0xFF  # half the weights change sign or value
    changed = Emulator(design, weight_streams={layer: flipped})(run["images"])
    assert not np.array_equal(changed, reference)
    with pytest.raises(ValueError, match=f"{layer}: weight stream of 3 uint8"):
        Emulator(design, weight_streams={layer: stream[:3]})


def test_flow_sets_external_weights_from_folding_json(mobilenet_flow, tmp_path):
    flow = mobilenet_flow["flow"]
    layer = _streamable(flow.folded)[0]
    folding = finn_flow.extract_folding_config(flow.folded)
    folding[layer]["mem_mode"] = "external"
    folded, report = finn_flow.fold(flow.models["specialized"], folding_config=folding)
    assert external_weight_layers(folded) == [layer]
    assert any(layer in note for note in report.notes)


def test_non_mvau_asked_to_stream_is_named(mobilenet_flow):
    flow = mobilenet_flow["flow"]
    node = next(n for n in flow.folded.graph.node if n.op_type.startswith("Thresholding"))
    folding = finn_flow.extract_folding_config(flow.folded)
    folding[node.name]["mem_mode"] = "external"
    with pytest.raises(finn_flow.FinnFlowError, match=rf"{node.name} \({node.op_type}\)"):
        finn_flow.fold(flow.models["specialized"], folding_config=folding)
    with pytest.raises(finn_flow.FinnFlowError, match="not in the design: .'Conv_99'"):
        finn_flow.fold(flow.models["specialized"], external_weights=["Conv_99"])


def _compile(tmp_path, capsys, folding):
    from test_compile_cli import export_raw, float_input_net

    from modules import cli

    model = export_raw(float_input_net(), (1, 3, 16, 16), tmp_path / "model.onnx")
    (tmp_path / "folding.json").write_text(json.dumps(folding))
    argv = ["compile", str(model), "--out", str(tmp_path / "out"), "--target-fps", "1000"]
    code = cli.main([*argv, "--folding", str(tmp_path / "folding.json")])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, tmp_path / "out"


def test_compile_command_names_a_non_mvau_asked_to_stream(tmp_path, capsys):
    code, out, _ = _compile(tmp_path, capsys, {"Thresholding_0": {"mem_mode": "external"}})
    assert code == 1
    assert re.search(r"compile failed: .*EXTERNAL_WEIGHTS names Thresholding_\w+ \(Thresh", out)


def test_compile_and_emulate_a_design_with_streamed_weights(tmp_path, capsys):
    from modules import cli

    code, out, design = _compile(tmp_path, capsys, {"MVAU_1": {"mem_mode": "external"}})
    assert code == 0, out
    accelerator = ModelWrapper(str(design / "design_accelerator.onnx"))
    assert len(external_weight_layers(accelerator)) == 1
    x = np.random.default_rng(1).normal(size=(4, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    argv = ["emulate", str(design), "--inputs", str(tmp_path / "x.npy"), "--out"]
    assert cli.main([*argv, str(tmp_path / "y.npy")]) == 0
    reference = with_generic_child(design, tmp_path)
    assert np.array_equal(np.load(tmp_path / "y.npy").reshape(4, -1), reference(x).reshape(4, -1))


def with_generic_child(design, tmp_path):
    from modules.hardware.compile import load_design
    from modules.quantization.equivalence import onnx_stage

    accelerator = stage_check.despecialize(ModelWrapper(str(design / "design_accelerator.onnx")))
    return onnx_stage(stage_check.with_child(load_design(design), accelerator, tmp_path / "g.onnx"))
