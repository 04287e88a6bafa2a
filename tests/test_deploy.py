import json
import types

import numpy as np
import pytest
from finn.core.onnx_exec import execute_onnx
from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition
from finn.util.data_packing import finnpy_to_packed_bytearray
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import gen_finn_dt_tensor, qonnx_make_model

from modules.board.accelerator import EmulatedAccelerator
from modules.dataflow.setup import ensure_finn
from modules.deployment import package as deploy
from modules.run_paths import RunPaths

CLASSES = ["smoke", "fire"]
HW = {"domain": "finn.custom_op.fpgadataflow", "backend": "fpgadataflow"}


def _tensor(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def small_hw_model():
    """Our graph's shape in miniature, from generic FINN HW nodes (they execute in Python):
    NCHW->NHWC Transpose, UINT8 thresholds, pooling, an MVAU with BINARY output, and the
    host-side Mul(2)/Add(-1) that turns it bipolar."""
    nodes = [
        helper.make_node("Transpose", ["image"], ["nhwc"], name="Transpose_0", perm=[0, 2, 3, 1]),
        helper.make_node(
            "Thresholding", ["nhwc", "t0"], ["act"], name="Thresholding_0", NumChannels=3, PE=3,
            numSteps=3, inputDataType="UINT8", weightDataType="UINT8", outputDataType="UINT2",
            numInputVectors=[1, 4, 4], **HW,
        ),
        helper.make_node(
            "GlobalAccPool", ["act"], ["pooled"], name="GlobalAccPool_0", NumChannels=3, PE=1,
            inputDataType="UINT2", numInputVectors=[1, 4, 4], **HW,
        ),
        helper.make_node(
            "MVAU", ["pooled", "w", "t1"], ["bits"], name="MVAU_0", MW=3, MH=2, SIMD=3, PE=1,
            inputDataType="UINT6", weightDataType="INT2", outputDataType="BINARY",
            accDataType="INT16", ActVal=0, binaryXnorMode=0, noActivation=0,
            numInputVectors=[1, 1, 1], mem_mode="internal_decoupled", **HW,
        ),
        helper.make_node("Mul", ["bits", "two"], ["scaled"], name="Mul_0"),
        helper.make_node("Add", ["scaled", "minus_one"], ["logits"], name="Add_0"),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "small_hw", [_tensor("image", [1, 3, 4, 4])], [_tensor("logits", [1, 1, 1, 2])]
    )
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_tensor_datatype("image", DataType["UINT8"])
    model.set_initializer("t0", np.array([[64, 128, 192]] * 3, np.float32))
    model.set_initializer("w", np.array([[1, -1], [1, 1], [-1, 1]], np.float32))
    model.set_tensor_datatype("w", DataType["INT2"])
    model.set_initializer("t1", np.array([[24], [24]], np.float32))  # pooled sums are ~24
    model.set_initializer("two", np.array(2, np.float32))
    model.set_initializer("minus_one", np.array(-1, np.float32))
    return model.transform(InferShapes()).transform(InferDataTypes())


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    ensure_finn()
    partitions = tmp_path_factory.mktemp("partitions")
    return small_hw_model().transform(CreateDataflowPartition(partition_model_dir=str(partitions)))


def test_io_spec_from_parent(parent):
    spec = deploy.io_spec_from_model(parent, CLASSES)
    inp, out = spec["input"], spec["output"]
    assert inp["finn_datatype"] == "UINT8" and inp["hw_node"] == "Thresholding_0"
    assert inp["shape_normal"] == [1, 4, 4, 3] and inp["shape_folded"] == [1, 4, 4, 1, 3]
    assert inp["host_layout"] == "NCHW" and inp["host_shape"] == [1, 3, 4, 4]
    assert inp["stream_width_bits"] == 24
    assert out["finn_datatype"] == "BINARY" and out["hw_node"] == "MVAU_0"
    assert out["shape_normal"] == [1, 1, 1, 2] and out["shape_folded"] == [1, 1, 1, 2, 1]
    assert out["host_ops"] == [{"op": "Mul", "value": [2.0]}, {"op": "Add", "value": [-1.0]}]
    for port in (inp, out):  # packed shapes as FINN's packing produces them
        dt = DataType[port["finn_datatype"]]
        packed = finnpy_to_packed_bytearray(gen_finn_dt_tensor(dt, port["shape_folded"]), dt)
        assert port["shape_packed"] == list(packed.shape)
    shapes = spec["io_shape_dict"]
    assert shapes["idt"] == ["DataType['UINT8']"] and shapes["odt"] == ["DataType['BINARY']"]
    assert shapes["ishape_folded"] == [inp["shape_folded"]]
    assert shapes["oshape_packed"] == [out["shape_packed"]]
    assert spec["packing"]["reverse_inner"] and spec["packing"]["reverse_endian"]
    assert spec["classes"] == CLASSES
    json.dumps(spec)  # plain JSON values only


def test_io_spec_from_child_alone_and_with_its_parent(parent):
    child = deploy._child_and_parent(parent, None)[0]
    spec = deploy.io_spec_from_model(child, CLASSES)
    assert spec["input"]["host_layout"] == "NHWC" and spec["output"]["host_ops"] == []
    refolded = ModelWrapper(child.model.__deepcopy__())
    getCustomOp(refolded.get_node_from_name("Thresholding_0")).set_nodeattr("PE", 1)
    spec = deploy.io_spec_from_model(refolded, CLASSES, parent=parent)
    assert spec["input"]["shape_folded"] == [1, 4, 4, 3, 1]  # the given child's folding
    assert spec["input"]["host_layout"] == "NCHW" and len(spec["output"]["host_ops"]) == 2
    with pytest.raises(ValueError, match="config.CLASSES"):
        deploy.io_spec_from_model(child, ["smoke", "fire", "fog"])


def test_emulated_accelerator_equals_the_parent_graph(parent):
    """Packing around the child + host ops give exactly what the partitioned graph gives."""
    child = deploy._child_and_parent(parent, None)[0]
    in_name, out_name = child.graph.input[0].name, child.graph.output[0].name
    emulator = EmulatedAccelerator(
        deploy.io_spec_from_model(parent, CLASSES),
        lambda x: execute_onnx(child, {in_name: x})[out_name],
    )
    images = np.random.default_rng(1).integers(0, 256, size=(8, 3, 4, 4)).astype(np.float32)
    expected = np.concatenate(
        [execute_onnx(parent, {"image": img[None]})["logits"].reshape(1, 2) for img in images]
    )
    outputs = emulator.run(images)
    assert np.array_equal(emulator.model_outputs(outputs).reshape(8, 2), expected)
    assert np.array_equal(emulator.decisions(outputs), expected > 0)
    assert len(np.unique(expected, axis=0)) > 1  # the images do not all decide the same


@pytest.fixture
def package_inputs(tmp_path, parent):
    model = tmp_path / "in" / "folded.onnx"
    model.parent.mkdir()
    model.write_bytes(b"onnx")
    model.with_name("folded.onnx.data").write_bytes(b"weights")
    cfg = types.SimpleNamespace(
        DEPLOY_DIR_NAME="deploy", FINN_PLUS_DRIVER_VERSION="1.6.1", DFIRE_CLASS_IDS={0: "smoke"}
    )
    paths = RunPaths(tmp_path / "run")
    return cfg, paths, model, deploy.io_spec_from_model(parent, CLASSES)


def test_package_with_bitfile_and_driver(package_inputs, tmp_path):
    cfg, paths, model, spec = package_inputs
    built = tmp_path / "output"
    (built / "bitfile").mkdir(parents=True)
    (built / "bitfile" / "finn-accel.bit").write_bytes(b"bit")
    (built / "bitfile" / "top.hwh").write_text("<hwh/>")
    (built / "driver").mkdir()
    driver_info = {"io_shape_dict": {"idma_names": ["idma_x"], "odma_names": ["odma_y"]}}
    (built / "driver" / "settings.json").write_text(json.dumps({"driver_information": driver_info}))
    bitfile, hwh = built / "bitfile" / "finn-accel.bit", built / "bitfile" / "top.hwh"
    folder = deploy.make_deployment_package(cfg, paths, model, spec, bitfile, hwh, built / "driver")
    assert folder == paths.root / "deploy"
    assert (folder / "bitfile" / "finn-accel.bit").read_bytes() == b"bit"
    assert (folder / "bitfile" / "finn-accel.hwh").is_file()  # PYNQ wants NAME.hwh by NAME.bit
    assert (folder / "driver" / "settings.json").is_file()
    assert (folder / "model" / "folded.onnx.data").read_bytes() == b"weights"
    saved = json.loads((folder / "io_spec.json").read_text())
    assert saved["io_shape_dict"]["idma_names"] == ["idma_x"]  # the built driver's names win
    assert saved["input"] == spec["input"]
    assert saved["label_class_ids"] == {"0": "smoke"}
    requirements = (folder / "requirements-board.txt").read_text()
    assert "finn-plus-driver==1.6.1" in requirements and "numpy<2" in requirements
    assert "opencv-python-headless" in requirements


def test_package_without_bitstream_is_the_runtime_and_no_repo_notebook(package_inputs):
    cfg, paths, model, spec = package_inputs
    folder = deploy.make_deployment_package(cfg, paths, model, spec)
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "board_inference.ipynb", "firesmoke_board", "io_spec.json", "model",
        "requirements-board.txt", "run_board.py",
    ]  # fmt: skip
    runtime = sorted(p.name for p in (folder / "firesmoke_board").iterdir())
    assert {"accelerator.py", "packing.py", "preprocess.py", "decisions.py"} <= set(runtime)
    assert runtime == sorted(p.name for p in deploy.BOARD_RUNTIME.glob("*.py"))
    assert not any("05_" in name for name in names)  # notebook 05 needs the repo: not shipped
    saved = json.loads((folder / "io_spec.json").read_text())
    assert saved["io_shape_dict"]["idma_names"] == ["idma0"]
    script = (folder / "run_board.py").read_text()
    assert "'recording': 'self_check/recording.npz'" in script
