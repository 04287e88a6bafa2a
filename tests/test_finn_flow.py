"""FINN flow at 32x32 on our MobileNetV2-mini and on brevitas_examples' CNV: every executable
stage bit-exact to Brevitas, stage files and counts, the non-HW-node error, folding JSON.

Streamlining takes about a minute per model, so each flow runs once per session (the
`mobilenet_flow` / `cnv_flow` fixtures of conftest.py, shared with the emulator and estimate
tests).
"""

import numpy as np
import pytest
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import qonnx_make_model

from modules.dataflow import flow as finn_flow
from modules.dataflow import stage_check
from modules.dataflow.setup import ensure_finn
from modules.quantization.export_fixes import ReduceMeanToGlobalAveragePool


def test_finn_setup_is_idempotent():
    first = ensure_finn()
    assert first.is_dir() and ensure_finn() == first


def test_every_stage_saved_with_counts(mobilenet_flow):
    run = mobilenet_flow
    flow = run["flow"]
    for stage in finn_flow.STAGES:
        assert finn_flow.stage_path(run["out"], stage).is_file(), stage
    assert [r.stage for r in flow.reports][:4] == ["qonnx", "finn_onnx", "tidy", "streamlined"]
    streamlined = next(r for r in flow.reports if r.stage == "streamlined")
    assert streamlined.before.get("Mul", 0) > 0 and streamlined.after.get("Mul", 0) == 0
    assert "Mul" in streamlined.changes().index
    assert all(finn_flow.is_hw_node(n) for n in flow.child.graph.node)
    assert finn_flow.node_counts(flow.parent) == {
        "Transpose": 1,
        "StreamingDataflowPartition": 1,
        "Mul": 1,
        "Add": 1,
    }
    hw = finn_flow.node_counts(flow.child)
    for op in ("VVAU", "ElementwiseAdd", "DuplicateStreams", "GlobalAccPool", "MVAU"):
        assert hw.get(op, 0) > 0, op
    assert flow.counts_table().shape[0] == len(flow.reports)


def test_mobilenet_bit_exact_from_brevitas_to_folded(mobilenet_flow):
    run = mobilenet_flow
    stages = stage_check.flow_stages(run["flow"], run["brevitas"], run["out"])
    table, outputs = stage_check.stage_equivalence(stages, run["images"])
    stage_check.assert_identical(table)
    assert table["must_be_identical"].sum() == len(stages) - 1
    assert set(np.unique(outputs["folded"])) <= {-1.0, 1.0}
    assert len(np.unique(outputs["brevitas"], axis=0)) > 1  # decisions vary between images


def test_cnv_bit_exact_through_the_same_flow(cnv_flow):
    run = cnv_flow
    counts = finn_flow.node_counts(run["flow"].child)
    assert counts.get("MVAU", 0) > 0 and counts.get("LabelSelect", 0) == 1
    stages = stage_check.flow_stages(run["flow"], run["brevitas"], run["out"])
    table, _ = stage_check.stage_equivalence(stages, run["images"])
    stage_check.assert_identical(table)


def test_first_divergence_names_a_changed_tensor(mobilenet_flow):
    flow = mobilenet_flow["flow"]
    broken = ModelWrapper(flow.child.model.__deepcopy__())
    threshold = broken.get_nodes_by_op_type("Thresholding")[3]
    values = broken.get_initializer(threshold.input[1])
    broken.set_initializer(threshold.input[1], values + 1)
    image = mobilenet_flow["images"][0]
    found = stage_check.first_divergence(flow.models["hw_layers"], broken, image)
    assert found["node"] == threshold.name and found["tensor"] == threshold.output[0]


def _leftover_mul(model):
    """A copy of `model` with a float Mul inserted behind its first MVAU."""
    model = ModelWrapper(model.model.__deepcopy__())
    mvau = model.get_nodes_by_op_type("MVAU")[0]
    scaled = model.make_new_valueinfo_name()
    scale = model.make_new_valueinfo_name()
    model.set_initializer(scale, np.asarray(0.5, dtype=np.float32))
    for consumer in model.find_consumers(mvau.output[0]):
        consumer.input[list(consumer.input).index(mvau.output[0])] = scaled
    stray = helper.make_node("Mul", [mvau.output[0], scale], [scaled], name="Stray")
    model.graph.node.insert(list(model.graph.node).index(mvau) + 1, stray)
    return model.transform(InferShapes()), mvau


def test_non_hw_node_between_hw_layers_is_named(mobilenet_flow):
    hw_layers = mobilenet_flow["flow"].models["hw_layers"]
    broken, mvau = _leftover_mul(hw_layers)
    with pytest.raises(finn_flow.FinnFlowError) as error:
        finn_flow.partition(broken)
    message = str(error.value)
    assert "Stray (Mul)" in message and f"{mvau.name} (MVAU)" in message
    assert "MoveMulPastFork" in message and "Thresholding" in message
    finn_flow.check_hw_only(hw_layers)  # the real graph passes


def test_folding_json_round_trip(tmp_path, mobilenet_flow):
    flow = mobilenet_flow["flow"]
    path = finn_flow.save_folding_config(flow.folded, tmp_path / "folding.json")
    specialized = flow.models["specialized"]
    refolded, report = finn_flow.fold(specialized, tmp_path, folding_config=path)
    assert "folding config applied" in report.notes[0]
    expected = finn_flow.extract_folding_config(flow.folded)
    assert any(attrs.get("PE", 1) > 1 for attrs in expected.values())
    for node in refolded.graph.node:
        for name in ("PE", "SIMD"):
            if name in expected[node.name]:
                assert getCustomOp(node).get_nodeattr(name) == expected[node.name][name]


def _graph_from_input(nodes, initializers, shape=(1, 3, 4, 4), opset=None):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", 1, list(shape))],
        [helper.make_tensor_value_info(nodes[-1].output[0], 1, None)],
    )
    kwargs = {"opset_imports": [helper.make_opsetid("", opset)]} if opset else {}
    model = ModelWrapper(qonnx_make_model(graph, **kwargs))
    for name, value in initializers.items():
        typed = value if isinstance(value, np.ndarray) else np.asarray(value, dtype=np.float32)
        model.set_initializer(name, typed)
    return model.transform(InferShapes())


def _quant_on_input(scale, signed=1):
    quant = helper.make_node(
        "Quant",
        ["x", "scale", "zero", "bits"],
        ["y"],
        domain="qonnx.custom_op.general",
        signed=signed,
        narrow=0,
        rounding_mode="ROUND",
    )
    return _graph_from_input([quant], {"scale": scale, "zero": 0.0, "bits": 8.0})


def test_input_datatype_is_read_from_the_graph(mobilenet_flow):
    pixels = _graph_from_input(
        [helper.make_node("Mul", ["x", "s"], ["y"])], {"s": 1 / 255}
    )  # pixels scaled in the graph
    assert finn_flow.graph_input_datatype(pixels) == "UINT8"
    divided = _graph_from_input([helper.make_node("Div", ["x", "d"], ["y"])], {"d": 255.0})
    assert finn_flow.graph_input_datatype(divided) == "UINT8"
    assert finn_flow.graph_input_datatype(_quant_on_input(1.0)) == "INT8"
    assert finn_flow.graph_input_datatype(_quant_on_input(1.0, signed=0)) == "UINT8"
    assert finn_flow.graph_input_datatype(_quant_on_input(2.0**-7)) == "FLOAT32"  # CNV-style
    annotated = _quant_on_input(2.0**-7)
    annotated.set_tensor_datatype("x", DataType["INT4"])
    assert finn_flow.graph_input_datatype(annotated) == "INT4"
    assert mobilenet_flow["flow"].input_dtype == "UINT8"  # ScaleInput: Mul(1/255) first


@pytest.mark.parametrize("opset", [13, 18])
def test_spatial_reduce_mean_becomes_global_average_pool(opset):
    if opset >= 18:  # axes as an input
        node = helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=1)
        model = _graph_from_input([node], {"axes": np.asarray([2, 3])}, opset=opset)
    else:  # axes as an attribute
        node = helper.make_node("ReduceMean", ["x"], ["y"], axes=[-2, -1], keepdims=1)
        model = _graph_from_input([node], {}, opset=opset)
    fixed = model.transform(ReduceMeanToGlobalAveragePool())
    assert finn_flow.node_counts(fixed) == {"GlobalAveragePool": 1}
    assert fixed.get_tensor_shape("y") == [1, 3, 1, 1]
    channel_mean = _graph_from_input(
        [helper.make_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=1)], {}, opset=13
    )
    assert finn_flow.node_counts(channel_mean.transform(ReduceMeanToGlobalAveragePool())) == {
        "ReduceMean": 1
    }
