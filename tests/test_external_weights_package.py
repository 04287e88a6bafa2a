"""A deployment package of a design whose MVAU streams its weights from DRAM: the weight file
in FINN's driver layout (runtime_weights/<dma>.npy, DMA names as FINN's Zynq build gives them),
the self-check recorded from and checked against that file, and a missing or changed file
named by the self-check and by the board backend."""

import json
import shutil
import types

import numpy as np
import pytest
from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition
from finn.transformation.fpgadataflow.insert_iodma import InsertIODMA
from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
from finn.util.data_packing import to_external_tensor
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp
from test_deploy import CLASSES, small_hw_model

from modules.board.accelerator import open_board
from modules.board.cli import main
from modules.board.self_check import ReplayDma, load_recording, run_self_check
from modules.data.demo_data import generate_demo_dataset
from modules.dataflow import flow as finn_flow
from modules.dataflow.external_weights import external_weight_layers, set_external_weights
from modules.dataflow.setup import ensure_finn
from modules.deployment import package as deploy
from modules.hardware.emulator import Emulator
from modules.run_paths import RunPaths
from modules.vivado import build

PART = "xc7z020clg400-1"
IMAGES = 4


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    ensure_finn()
    root = tmp_path_factory.mktemp("extw")
    parent = small_hw_model().transform(CreateDataflowPartition(partition_model_dir=str(root)))
    child = deploy._child_and_parent(parent, None)[0].transform(SpecializeLayers(PART))
    node = next(n for n in child.graph.node if n.op_type.startswith("MVAU"))
    # 8-bit weights: FINN's weight DMA moves whole bytes (3 x 2 INT2 weights are 12 bits)
    getCustomOp(node).set_nodeattr("weightDataType", "INT8")
    child.set_tensor_datatype(node.input[1], DataType["INT8"])
    layer = node.name
    set_external_weights(child, [layer])
    model = root / "child.onnx"
    child.save(str(model))
    cfg = types.SimpleNamespace(
        FINN_PLUS_DRIVER_VERSION="1.6.1", DFIRE_CLASS_IDS={0: "smoke", 1: "fire"}
    )
    paths = RunPaths(root / "run")
    io_spec = deploy.io_spec_from_model(child, CLASSES, parent=parent, part=PART)
    deploy.make_deployment_package(cfg, paths, model, io_spec)
    emulator = Emulator(child, weight_streams=deploy.package_weight_streams(paths))
    demo = generate_demo_dataset(root / "demo", {"test": IMAGES}, 48, seed=3)
    images = sorted((demo / "test" / "images").glob("*.jpg"))
    deploy.write_self_check(paths, emulator, images)
    return types.SimpleNamespace(paths=paths, child=child, layer=layer)


def _copy(package, tmp_path):
    copy = RunPaths(tmp_path / "copy")
    shutil.copytree(package.paths.deploy, copy.deploy)
    return copy


def test_weight_file_is_what_finns_driver_generation_writes(package):
    io_spec = deploy.load_io_spec(package.paths.io_spec)
    shapes = io_spec["io_shape_dict"]
    assert shapes["number_of_external_weights"] == 1
    (dma,) = shapes["external_weights_input_shapes"]
    assert shapes["idma_names"] != [dma] and shapes["idma_names"][0].startswith("idma")
    (record,) = io_spec["external_weights"]
    assert (record["dma"], record["layer"], record["file"]) == (dma, package.layer, f"{dma}.npy")
    node = package.child.get_node_from_name(package.layer)
    op = getCustomOp(node)
    weights = package.child.get_initializer(node.input[1])
    mem = InsertIODMA().get_mem_init(weights, op.get_nodeattr("PE"), op.get_nodeattr("SIMD"))
    expected = to_external_tensor(mem, op.get_input_datatype(1))
    written = np.load(package.paths.deploy_runtime_weights / record["file"])
    assert np.array_equal(written, expected)
    assert external_weight_layers(package.child) == [package.layer]


def test_self_check_passes_with_the_weight_file(package, capsys):
    results = run_self_check(package.paths.board_layout())
    assert len(results) == IMAGES and all(r.ok for r in results)
    assert main(package.paths.board_layout(), ["--self-check"]) == 0
    outputs = load_recording(package.paths.self_check_recording)["outputs"]
    assert len(np.unique(outputs.reshape(IMAGES, -1), axis=0)) >= 1


@pytest.mark.parametrize("damage", ["missing", "changed"])
def test_self_check_names_a_missing_or_changed_weight_file(package, tmp_path, capsys, damage):
    copy = _copy(package, tmp_path)
    (weight_file,) = copy.deploy_runtime_weights.glob("*.npy")
    if damage == "missing":
        weight_file.unlink()
    else:
        np.save(weight_file, np.load(weight_file) ^ 1)
    assert main(copy.board_layout(), ["--self-check"]) == 1
    err = capsys.readouterr().err
    assert str(weight_file) in err and "Traceback" not in err
    recording = load_recording(copy.self_check_recording)
    dma = ReplayDma(recording["packed_in"], recording["packed_out"])
    with pytest.raises((FileNotFoundError, ValueError), match=weight_file.name):
        open_board(copy.board_layout(), dma=dma)  # before FINN's driver sees the folder


def test_emulator_with_the_package_weights_matches_the_graph(package):
    streams = deploy.package_weight_streams(package.paths)
    x = np.random.default_rng(0).integers(0, 256, (5, 4, 4, 3)).astype(np.float32)
    from_file = Emulator(package.child, weight_streams=streams)(x)
    from_graph = Emulator(package.child)(x)
    assert np.array_equal(from_file, from_graph)


def test_build_check_refuses_a_folding_json_that_drops_external_weights(package, tmp_path):
    model = tmp_path / "folded.onnx"
    package.child.save(str(model))
    folding = finn_flow.save_folding_config(package.child, tmp_path / "folding.json")
    assert build.check_streamed_layers(model, folding) == [package.layer]
    edited = json.loads(folding.read_text())
    edited[package.layer]["mem_mode"] = "internal_decoupled"
    folding.write_text(json.dumps(edited))
    with pytest.raises(
        ValueError, match=f"folding.json: sets another mem_mode for {package.layer}"
    ):
        build.check_streamed_layers(model, folding)
