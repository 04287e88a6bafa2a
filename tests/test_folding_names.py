"""Folding files of older FINN releases: entries matched to finn-plus layers by kind and order."""

import pytest
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from modules.dataflow.folding_names import FoldingMismatch, match_folding


def _graph():
    """MVAU_rtl_0 -> Thresholding_rtl_0 -> MVAU_hls_0: finn-plus names after specialization."""
    layers = [
        ("MVAU_rtl", "MVAU_rtl_0", "rtl"),
        ("Thresholding_rtl", "Thresholding_rtl_0", "rtl"),
        ("MVAU_hls", "MVAU_hls_0", "hls"),
    ]
    tensors = ["x", "a", "b", "y"]
    nodes = [
        helper.make_node(
            op,
            [tensors[i]],
            [tensors[i + 1]],
            name=name,
            domain=f"finn.custom_op.fpgadataflow.{backend}",
        )
        for i, (op, name, backend) in enumerate(layers)
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
    )
    return ModelWrapper(helper.make_model(graph))


OLD_FOLDING = {  # FINN v0.9's final_hw_config.json names
    "Defaults": {},
    "StreamingFIFO_0": {"depth": 484, "impl_style": "vivado"},
    "MatrixVectorActivation_0": {"PE": 4, "SIMD": 2, "mem_mode": "decoupled", "resType": "lut"},
    "Thresholding_Batch_0": {"PE": 2, "mem_mode": "const"},
    "MatrixVectorActivation_1": {"PE": 1, "SIMD": 8, "ram_style": "block"},
}


def test_older_names_map_to_finn_plus_layers_by_kind_and_order():
    model = _graph()
    config, notes = match_folding(OLD_FOLDING, model)
    assert config["MVAU_rtl_0"]["PE"] == 4
    assert config["MVAU_rtl_0"]["mem_mode"] == "internal_decoupled"
    assert config["MVAU_hls_0"] == {"PE": 1, "SIMD": 8, "ram_style": "block"}
    assert config["Thresholding_rtl_0"]["PE"] == 2
    assert "StreamingFIFO_0" not in config  # no FIFO before the builder inserts them
    assert any("MatrixVectorActivation_1 -> MVAU_hls_0" in note for note in notes)
    # ApplyConfig takes the mapped file: the attributes land on the layers
    from finn.transformation.general import ApplyConfig

    applied = model.transform(ApplyConfig(config))
    node = applied.get_node_from_name("MVAU_hls_0")
    assert getCustomOp(node).get_nodeattr("SIMD") == 8


def test_finn_plus_names_apply_as_they_are():
    config, notes = match_folding({"MVAU_hls_0": {"PE": 2}}, _graph())
    assert config["MVAU_hls_0"] == {"PE": 2}
    assert notes == []


def test_a_folding_file_of_which_nothing_applies_is_an_error():
    with pytest.raises(FoldingMismatch, match="none of its 2 entries"):
        match_folding({"StreamingFIFO_0": {"depth": 4}, "Foo_3": {"PE": 1}}, _graph(), "f.json")
