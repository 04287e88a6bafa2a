"""The batched emulator reproduces qonnx execute_onnx exactly on every image, for the generic
HW graph, the parent with its (folded) accelerator, and the CNV path (XNOR MVAUs with
embedded thresholds, max pool, label select)."""

import numpy as np
import pytest
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from modules.dataflow import stage_check
from modules.hardware.emulator import Emulator, InputRangeError, Thresholds, exact_dtype
from modules.quantization.equivalence import onnx_stage


def test_emulator_equals_execute_onnx_on_the_hw_graph(mobilenet_flow):
    run = mobilenet_flow
    hw_layers = run["flow"].models["hw_layers"]
    reference = onnx_stage(hw_layers)(run["images"])
    emulated = Emulator(hw_layers, batch_size=3)(run["images"])  # several batches
    assert np.array_equal(emulated.reshape(reference.shape), reference)


def test_emulator_runs_the_parent_with_the_folded_accelerator(tmp_path, mobilenet_flow):
    run = mobilenet_flow
    flow = run["flow"]
    executed = stage_check.with_child(
        flow.parent, stage_check.despecialize(flow.folded), tmp_path / "c.onnx"
    )
    reference = onnx_stage(executed)(run["images"])
    specialized = stage_check.with_child(flow.parent, flow.folded, tmp_path / "s.onnx")
    for graph in (executed, specialized):  # _hls/_rtl layers emulate as their generic op
        emulated = Emulator(graph)(run["images"])
        assert np.array_equal(emulated.reshape(reference.shape), reference)


def test_emulator_equals_execute_onnx_on_cnv(cnv_flow):
    run = cnv_flow
    hw_layers = run["flow"].models["hw_layers"]
    reference = onnx_stage(hw_layers)(run["images"])
    emulated = Emulator(hw_layers)(run["images"])
    assert np.array_equal(emulated.reshape(reference.shape), reference)


def test_unsupported_op_is_named():
    node = helper.make_node("Softmax", ["x"], ["y"], name="Softmax_7")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", 1, [1, 4])],
        [helper.make_tensor_value_info("y", 1, [1, 4])],
    )
    with pytest.raises(NotImplementedError, match="Softmax .*Softmax_7"):
        Emulator(ModelWrapper(qonnx_make_model(graph)))


def _single_node_graph(node, in_shape, out_shape, in_dtype, initializers=()):
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(node.input[0], 1, in_shape)],
        [helper.make_tensor_value_info(node.output[0], 1, out_shape)],
    )
    model = ModelWrapper(qonnx_make_model(graph))
    for name, value in initializers:
        model.set_initializer(name, value)
    model.set_tensor_datatype(node.input[0], DataType[in_dtype])
    return model


def test_inputs_outside_the_input_datatype_are_refused():
    node = helper.make_node("Mul", ["x", "two"], ["y"], name="Double")
    model = _single_node_graph(node, [1, 4], [1, 4], "UINT8", [("two", np.float32(2.0))])
    emulator = Emulator(model)
    assert np.array_equal(emulator(np.array([[0, 1, 254, 255]])), [[0, 2, 508, 510]])
    with pytest.raises(InputRangeError, match=r"UINT8 \(integers 0..255\).*-1.0..256.0, 2 of 8"):
        emulator(np.array([[0, 1, 2, 3], [-1, 256, 4, 5]]))
    with pytest.raises(InputRangeError, match="0.5"):
        emulator(np.array([[0.5, 1, 2, 3]]))


@pytest.mark.parametrize(
    "bound, dtype", [(2**24 - 1, np.float32), (2**24, np.float64), (2**53, np.int64)]
)
def test_accumulator_dtype_is_exact_for_the_bound(bound, dtype):
    assert exact_dtype(bound) == dtype


@pytest.mark.parametrize("in_dtype", ["INT8", "INT24"])
def test_mvau_accumulates_exactly_beyond_float32(in_dtype):
    """INT24 inputs (exact in float32 containers) times INT8 weights over 64 rows sum past
    2**24, where float32 accumulation rounds: the result is still the exact int64 matmul (up
    to the float32 container of the result)."""
    rows, columns = 64, 3
    rng = np.random.default_rng(0)
    top = DataType[in_dtype].max()
    x = rng.integers(top // 2, top, (5, rows)).astype(np.float64)
    weights = rng.integers(-128, 128, (rows, columns)).astype(np.float32)
    node = helper.make_node(
        "MVAU",
        ["x", "w"],
        ["y"],
        domain="finn.custom_op.fpgadataflow",
        name="MVAU_0",
        MW=rows,
        MH=columns,
        SIMD=1,
        PE=1,
        inputDataType=in_dtype,
        weightDataType="INT8",
        outputDataType="INT64",
        noActivation=1,
    )
    model = _single_node_graph(node, [1, rows], [1, columns], in_dtype, [("w", weights)])
    emulated = Emulator(model).run_batch(x)
    exact = x.astype(np.int64) @ weights.astype(np.int64)
    assert np.array_equal(emulated, exact.astype(np.float32))


@pytest.mark.parametrize("span", [100, 300_000, 2**25])  # float32 table, uint8 table, no table
def test_thresholds_count_like_direct_comparison(span):
    rng = np.random.default_rng(0)
    thresholds = np.sort(rng.integers(-span // 2, span // 2, (4, 15)), axis=1).astype(np.float32)
    x = rng.integers(-span, span, (6, 5, 4)).astype(np.float32)
    x[0, 0] = thresholds[:, 3]  # equal to a threshold counts it
    expected = (x[..., None] >= thresholds).sum(axis=-1)
    assert np.array_equal(Thresholds(thresholds, integer_input=True)(x), expected)
