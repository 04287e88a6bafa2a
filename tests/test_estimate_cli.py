"""`firesmoke estimate`: FINN build ONNX files of older FINN op names, partitions, errors."""

import json

import onnx
import pytest
from onnx import TensorProto, helper

from modules import cli
from modules.hardware.compile import TOTALS

DOMAIN = "finn.custom_op.fpgadataflow"
MVAU_ATTRS = {
    "PE": 4,
    "SIMD": 16,
    "MW": 64,
    "MH": 64,
    "inputDataType": "BINARY",
    "weightDataType": "BINARY",
    "outputDataType": "BINARY",
    "binaryXnorMode": 1,
    "mem_mode": "decoupled",
}


def _node(op_type, name, inputs, outputs, **attrs):
    return helper.make_node(op_type, inputs, outputs, name=name, domain=DOMAIN, **attrs)


def _save(nodes, path, first="x", last="y"):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(first, TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, [1, 64])],
    )
    onnx.save(helper.make_model(graph), str(path))
    return path


def _legacy_chain(path, extra=()):
    """Thresholding_Batch -> StreamingFIFO -> MatrixVectorActivation -> LabelSelect_Batch, as
    FINN v0.9 names them (the TFC build's layers)."""
    nodes = [
        _node(
            "Thresholding_Batch",
            "Thresholding_Batch_0",
            ["x"],
            ["a"],
            PE=8,
            NumChannels=64,
            numSteps=1,
            inputDataType="UINT8",
            weightDataType="UINT8",
            outputDataType="BINARY",
            mem_mode="const",
        ),
        _node(
            "StreamingFIFO",
            "StreamingFIFO_0",
            ["a"],
            ["b"],
            depth=32,
            folded_shape=[1, 4, 16],
            dataType="BINARY",
            impl_style="rtl",
        ),
        _node("MatrixVectorActivation", "MatrixVectorActivation_0", ["b"], ["c"], **MVAU_ATTRS),
        *extra,
        _node(
            "LabelSelect_Batch",
            "LabelSelect_Batch_0",
            ["c"],
            ["y"],
            PE=1,
            Labels=64,
            K=1,
            inputDataType="INT8",
        ),
    ]
    return _save(nodes, path)


def _run(capsys, *args):
    code = cli.main(["estimate", *map(str, args)])
    return code, capsys.readouterr().out


def test_legacy_ops_in_partitions_are_costed_with_their_rules(tmp_path, capsys):
    (tmp_path / "kernel_partitions").mkdir()
    child = _legacy_chain(tmp_path / "kernel_partitions" / "partition_1.onnx")
    # the parent names its child by the build machine's path; the file sits beside it here
    stored = f"/build/machine/intermediate_models/kernel_partitions/{child.name}"
    parent = _save(
        [
            _node(
                "StreamingDataflowPartition",
                "StreamingDataflowPartition_1",
                ["x"],
                ["y"],
                model=stored,
            )
        ],
        tmp_path / "step_create_dataflow_partition.onnx",
    )
    code, out = _run(capsys, parent, "--json")
    report = json.loads(out)
    assert code == 0
    assert set(TOTALS) <= set(report["totals"])
    names = [b["block"] for b in report["blocks"]]
    assert names[:4] == [
        "Thresholding_Batch_0",
        "StreamingFIFO_0",
        "MatrixVectorActivation_0",
        "LabelSelect_Batch_0",
    ]
    mvau = report["blocks"][2]
    # 64 x 64 XNOR weights at PE 4, SIMD 16: 64 words of 64 bits; FINN v0.9's resType lut
    assert mvau["DSP"] == 0
    assert "64b x 64" in mvau["rule"]
    assert {"input_IODMA", "output_IODMA", "shell"} <= set(names)
    for resource in TOTALS:
        assert report["totals"][resource] == pytest.approx(
            sum(b[resource] for b in report["blocks"])
        )
        assert resource in report["holdout_error_pct"]


def test_an_op_type_without_a_rule_is_listed_and_the_exit_code_says_so(tmp_path, capsys):
    odd = _node("Lookup_hls", "Lookup_0", ["c"], ["c2"])
    path = _legacy_chain(tmp_path / "m.onnx", extra=[odd])
    code, out = _run(capsys, path)
    assert code == 2
    assert "NOT COSTED: Lookup_0 (Lookup_hls)" in out


def test_bad_inputs_get_errors_that_name_the_fix(tmp_path, capsys):
    plain = helper.make_node("Relu", ["x"], ["y"], name="relu")
    path = _save([plain], tmp_path / "qonnx.onnx")
    with pytest.raises(SystemExit, match="firesmoke compile"):
        _run(capsys, path)
    chain = _legacy_chain(tmp_path / "m.onnx")
    with pytest.raises(SystemExit, match="known devices.*xc7z020"):
        _run(capsys, chain, "--part", "xc9z999")
    broken = dict(MVAU_ATTRS)
    del broken["MW"]
    node = _node("MatrixVectorActivation", "MatrixVectorActivation_7", ["x"], ["y"], **broken)
    with pytest.raises(SystemExit, match="MatrixVectorActivation_7.*'MW'"):
        _run(capsys, _save([node], tmp_path / "broken.onnx"))
