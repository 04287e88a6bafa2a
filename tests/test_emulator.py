"""The batched emulator reproduces qonnx execute_onnx exactly on every image, for the generic
HW graph, the parent with its (folded) accelerator, and the CNV path (XNOR MVAUs with
embedded thresholds, max pool, label select)."""

import numpy as np
import pytest
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model
from test_finn_flow import cnv_flow, mobilenet_flow

from modules.dataflow import stage_check as hw_verify
from modules.hardware.emulator import Emulator
from modules.quantization.equivalence import onnx_stage


def test_emulator_equals_execute_onnx_on_the_hw_graph():
    run = mobilenet_flow()
    hw_layers = run["flow"].models["hw_layers"]
    reference = onnx_stage(hw_layers)(run["images"])
    emulated = Emulator(hw_layers, batch_size=3)(run["images"])  # several batches
    assert np.array_equal(emulated.reshape(reference.shape), reference)


def test_emulator_runs_the_parent_with_the_folded_accelerator(tmp_path):
    run = mobilenet_flow()
    flow = run["flow"]
    executed = hw_verify.with_child(
        flow.parent, hw_verify.despecialize(flow.folded), tmp_path / "c.onnx"
    )
    reference = onnx_stage(executed)(run["images"])
    specialized = hw_verify.with_child(flow.parent, flow.folded, tmp_path / "s.onnx")
    for graph in (executed, specialized):  # _hls/_rtl layers emulate as their generic op
        emulated = Emulator(graph)(run["images"])
        assert np.array_equal(emulated.reshape(reference.shape), reference)


def test_emulator_equals_execute_onnx_on_cnv():
    run = cnv_flow()
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
