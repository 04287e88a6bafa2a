"""The deployment package for the board and the accelerator's I/O description (io_spec).

`io_spec_from_model` reads what FINN's `step_make_driver` reads (first/last HW node of the
dataflow child: datatypes, normal/folded shapes; packed shapes from FINN's packing rule) plus
what the host does around the accelerator in the parent graph (the NCHW->NHWC Transpose and
the Mul/Add that turn its integer output back into the model's output). The same dict drives
both accelerator backends in `modules/board/accelerator.py`, and its `io_shape_dict` is in the
format of FINN's generated driver (finn-plus-driver's FINNDMAOverlay).
"""

import json
import math
import shutil
from pathlib import Path

import numpy as np

from modules import board as board_runtime
from modules.board.accelerator import EmulatedAccelerator, load_io_spec
from modules.board.preprocess import file_input
from modules.board.self_check import record_self_check
from modules.board.weights import load_external_weights
from modules.deployment import weight_files
from modules.vivado.build import copy_model

NCHW_TO_NHWC = [0, 2, 3, 1]

# FINN's generated driver packs with both reversals (driver pack_input / unpack_output)
PACKING = {
    "pack": "finn.util.data_packing.finnpy_to_packed_bytearray",
    "unpack": "finn.util.data_packing.packed_bytearray_to_finnpy",
    "reverse_inner": True,
    "reverse_endian": True,
    "steps_in": "host layout -> NHWC, reshape to shape_folded, pack the innermost dim to bytes",
    "steps_out": "unpack bytes to shape_folded, reshape to shape_normal",
}


# ------------------------------------------------------------------ io_spec


def _child_and_parent(model, parent):
    """(dataflow child, parent or None) from a partitioned parent or a child (+ its parent)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    partitions = model.get_nodes_by_op_type("StreamingDataflowPartition")
    if not partitions:
        return model, parent
    if len(partitions) != 1:
        raise ValueError(f"expected one StreamingDataflowPartition, found {len(partitions)}")
    return ModelWrapper(getCustomOp(partitions[0]).get_nodeattr("model")), model


def packed_shape(folded_shape, datatype):
    """FINN's packing: the innermost folded dim becomes bytes, padded to whole bytes."""
    from qonnx.core.datatype import DataType

    bits = folded_shape[-1] * DataType[datatype].bitwidth()
    return [*folded_shape[:-1], math.ceil(bits / 8)]


def _port(child, tensor, node, direction):
    from qonnx.custom_op.registry import getCustomOp

    op = getCustomOp(node)
    if direction == "in":
        index = list(node.input).index(tensor)
        folded, width = op.get_folded_input_shape(index), op.get_instream_width(index)
    else:
        index = list(node.output).index(tensor)
        folded, width = op.get_folded_output_shape(index), op.get_outstream_width(index)
    datatype = child.get_tensor_datatype(tensor).name
    folded = [int(d) for d in folded]
    return {
        "tensor": tensor,
        "hw_node": node.name,
        "finn_datatype": datatype,
        "shape_normal": [int(d) for d in child.get_tensor_shape(tensor)],
        "shape_folded": folded,
        "shape_packed": packed_shape(folded, datatype),
        "stream_width_bits": int(width),
    }


def _host_input(parent, port):
    """Layout the host hands over: NCHW when the parent only transposes to NHWC."""
    if parent is None:
        return {"host_layout": "NHWC", "host_shape": port["shape_normal"]}
    graph_input = parent.graph.input[0].name
    consumer = parent.find_consumer(graph_input)
    if consumer.op_type == "StreamingDataflowPartition":
        return {"host_layout": "NHWC", "host_shape": port["shape_normal"]}
    perm = next((list(a.ints) for a in consumer.attribute if a.name == "perm"), None)
    follower = parent.find_consumer(consumer.output[0])
    feeds_accelerator = follower is not None and follower.op_type == "StreamingDataflowPartition"
    if consumer.op_type != "Transpose" or perm != NCHW_TO_NHWC or not feeds_accelerator:
        raise ValueError(
            f"host-side input node {consumer.name} ({consumer.op_type}) is not the NCHW->NHWC "
            "Transpose the accelerator runtime supports; stream-line it into the accelerator"
        )
    return {"host_layout": "NCHW", "host_shape": list(parent.get_tensor_shape(graph_input))}


def _host_output_ops(parent):
    """The Mul/Add chain after the accelerator in the parent (its output dequantization)."""
    if parent is None:
        return []
    partition = parent.get_nodes_by_op_type("StreamingDataflowPartition")[0]
    ops, tensor = [], partition.output[0]
    while (node := parent.find_consumer(tensor)) is not None:
        ops.append(_host_output_op(parent, node, tensor))
        tensor = node.output[0]
    return ops


def _host_output_op(parent, node, tensor):
    if node.op_type == "Transpose":
        return {"op": "Transpose", "perm": [int(i) for i in node.attribute[0].ints]}
    constant = next((parent.get_initializer(i) for i in node.input if i != tensor), None)
    if node.op_type not in ("Mul", "Add") or constant is None:
        raise ValueError(
            f"host-side output node {node.name} ({node.op_type}) is not a Transpose or a "
            "constant Mul/Add; the accelerator runtime only applies those after the accelerator"
        )
    return {"op": node.op_type, "value": constant.flatten().tolist()}


def _io_shape_dict(inp, out):
    """The `io_shape_dict` of FINN's generated driver (settings.json)."""
    return {
        "idt": [f"DataType['{inp['finn_datatype']}']"],
        "odt": [f"DataType['{out['finn_datatype']}']"],
        "ishape_normal": [inp["shape_normal"]],
        "ishape_folded": [inp["shape_folded"]],
        "ishape_packed": [inp["shape_packed"]],
        "oshape_normal": [out["shape_normal"]],
        "oshape_folded": [out["shape_folded"]],
        "oshape_packed": [out["shape_packed"]],
        "idma_names": ["idma0"],  # FINN's Zynq build names the IODMAs idma<i> / odma<i>
        "odma_names": ["odma0"],
        "num_inputs": 1,
        "num_outputs": 1,
        "number_of_external_weights": 0,
        "external_weights_input_shapes": {},
    }


def io_spec_from_model(model, classes, parent=None, detect_spec=None, part=None):
    """I/O description of the accelerator.

    `model` is the dataflow child (folded: its PE/SIMD give the folded shapes) or a
    partitioned parent, whose partition then points at the child as it was partitioned,
    i.e. before folding. `parent` adds the host side to a child: the input Transpose and the
    output Mul/Add. Typical call: io_spec_from_model(folded_child, CLASSES, parent=parent).
    A detector passes `detect_spec` (its detect_spec.json, written beside io_spec.json): the
    output is then the head tensor, checked against the spec's anchors and its scale against
    the graph's own dequantizing Mul. A design whose MVAUs stream weights from DRAM plans its
    weight DMAs as FINN's Zynq build for `part` names them (`weight_files.dma_plan`).
    """
    child, parent = _child_and_parent(model, parent)
    if len(child.graph.input) != 1 or len(child.graph.output) != 1:
        raise ValueError("the accelerator runtime supports one input and one output stream")
    in_tensor, out_tensor = child.graph.input[0].name, child.graph.output[0].name
    inp = _port(child, in_tensor, child.find_consumer(in_tensor), "in")
    out = _port(child, out_tensor, child.find_producer(out_tensor), "out")
    inp.update(layout="NHWC" if len(inp["shape_normal"]) == 4 else "NC", **_host_input(parent, inp))
    out["host_ops"] = _host_output_ops(parent)
    spec = json.loads(Path(detect_spec).read_text()) if detect_spec is not None else None
    channels = len(classes) if spec is None else len(spec["anchors"]) * (5 + len(classes))
    if out["shape_normal"][-1] != channels:
        raise ValueError(
            f"accelerator output has {out['shape_normal'][-1]} channels but config.CLASSES has "
            f"{len(classes)} ({classes})"
            + ("" if spec is None else f" and the head {len(spec['anchors'])} anchors")
        )
    io_spec = {
        "classes": list(classes),
        "input": inp,
        "output": out,
        "packing": PACKING,
        "decision": _decision_rule(out["finn_datatype"]),
        "io_shape_dict": _io_shape_dict(inp, out),
    }
    if weight_files.external_weight_layers(child):
        _plan_weight_dmas(io_spec, child, part)
    if spec is not None:
        _check_head_scale(spec, out["host_ops"], detect_spec)
        io_spec["detect_spec"] = Path(detect_spec).name
        io_spec["decision"] = "boxes: detect_spec.json decode + NMS; class present iff a box"
    return io_spec


def _plan_weight_dmas(io_spec, child, part):
    if part is None:
        raise ValueError("a design with external weights needs the FPGA part to name its DMAs")
    plan = weight_files.dma_plan(child, part)
    io_spec["io_shape_dict"].update(weight_files.io_shape_entries(plan))
    io_spec["weight_dmas"] = plan["weights"]  # make_deployment_package writes their files


def _check_head_scale(spec, host_ops, spec_path):
    """The host dequantizes with the graph's Mul; detect_spec.json must say the same scale."""
    muls = [op["value"] for op in host_ops if op["op"] == "Mul"]
    scale = spec["head"]["scale"]
    if len(muls) != 1 or not np.allclose(muls[0], scale, rtol=1e-6):
        raise ValueError(
            f"{spec_path}: head scale {scale} does not match the graph's output Mul {muls}; "
            "re-run notebook 02 (export) and 03 for this RUN_NAME"
        )


def _decision_rule(datatype):
    if datatype == "BINARY":
        return "class present iff output == 1 (thresholds fire at logit >= 0)"
    if datatype == "BIPOLAR":
        return "class present iff output == +1 (sign of the logit)"
    return "logit = output after host_ops; class present iff sigmoid(logit) >= threshold"


def save_io_spec(io_spec, path):
    path = Path(path)
    path.write_text(json.dumps(io_spec, indent=2))
    return path


# ------------------------------------------------------------------ package

BOARD_RUNTIME = Path(board_runtime.__file__).resolve().parent  # modules/board: copied as is
BOARD_NOTEBOOK = BOARD_RUNTIME / "board_inference.ipynb"

RUN_BOARD_SCRIPT = """\
\"\"\"Fire/smoke accelerator on the PYNQ board (written by notebook 04): python run_board.py -h

Runs next to its firesmoke_board/ package; needs only requirements-board.txt.
\"\"\"

import sys
from pathlib import Path

from firesmoke_board.cli import main
from firesmoke_board.layout import DeployLayout

LAYOUT = DeployLayout.at(Path(__file__).resolve().parent, {names!r})

if __name__ == "__main__":
    sys.exit(main(LAYOUT))
"""


def board_requirements(cfg):
    """What the board runtime imports (numpy, OpenCV) plus FINN's driver for the DMA."""
    return (
        "# pip install -r requirements-board.txt on the PYNQ board (pynq is part of the image)\n"
        "numpy<2  # PYNQ images ship numpy 1.x; finn-plus-driver pins it too\n"
        "# PYNQ-Z1/Z2 images (armv7l) ship OpenCV; PyPI has no armv7l wheel to build against\n"
        'opencv-python-headless<4.12; platform_machine != "armv7l"  # 4.12+ needs numpy 2\n'
        f"finn-plus-driver=={cfg.FINN_PLUS_DRIVER_VERSION}\n"
    )


def _copy_bitfile(bitfile, hwh, target):
    """PYNQ loads NAME.hwh from beside NAME.bit, so the hwh takes the bitfile's stem."""
    target.mkdir(parents=True, exist_ok=True)
    bit_copy = target / Path(bitfile).name
    shutil.copy2(bitfile, bit_copy)
    if hwh is not None:
        shutil.copy2(hwh, bit_copy.with_suffix(".hwh"))


DRIVER_IO_KEYS = (
    "idma_names",
    "odma_names",
    "number_of_external_weights",
    "external_weights_input_shapes",
)


def _driver_io_names(driver_dir):
    """IODMA names and weight DMAs from the built driver's settings.json (the real instance
    names)."""
    settings = Path(driver_dir) / "settings.json"
    if not settings.is_file():
        return {}
    shapes = json.loads(settings.read_text())["driver_information"].get("io_shape_dict", {})
    return {key: shapes[key] for key in DRIVER_IO_KEYS if key in shapes}


def _external_weights(paths, model_path, io_spec, built):
    """The weight files of the DMAs io_spec plans (`weight_dmas`) in deploy/driver/
    runtime_weights/: a build's own, else written here as FINN's driver generation would;
    their records (file, bytes, sha256) go into io_spec["external_weights"]."""
    from qonnx.core.modelwrapper import ModelWrapper

    plan = {"weights": io_spec.pop("weight_dmas", [])}
    if not plan["weights"]:
        return io_spec
    target = paths.deploy_runtime_weights
    if built:
        records = weight_files.built_weight_files(plan, target)
    else:
        if target.exists():
            shutil.rmtree(target)  # no stale buffers of an earlier design
        records = weight_files.write_weight_files(ModelWrapper(str(model_path)), plan, target)
    io_spec["external_weights"] = records
    return io_spec


def copy_board_runtime(paths):
    """modules/board/*.py -> deploy/firesmoke_board/, plus run_board.py and the board notebook."""
    runtime = paths.board_runtime
    if runtime.exists():
        shutil.rmtree(runtime)  # no stale modules from an older runtime
    runtime.mkdir(parents=True)
    for source in sorted(BOARD_RUNTIME.glob("*.py")):
        shutil.copy2(source, runtime / source.name)
    paths.board_script.write_text(RUN_BOARD_SCRIPT.format(names=paths.board_layout_names()))
    shutil.copy2(BOARD_NOTEBOOK, paths.board_notebook)


def make_deployment_package(
    cfg, paths, model_path, io_spec, bitfile=None, hwh=None, driver_dir=None
):
    """RUN/deploy/: the board runtime (firesmoke_board/, run_board.py, board notebook),
    io_spec.json, requirements-board.txt, model/, and bitfile/ (+ .hwh) and driver/ when
    built. Self-contained: nothing on the board imports the repo. Returns the folder."""
    target = paths.deploy
    target.mkdir(parents=True, exist_ok=True)
    io_spec = json.loads(json.dumps(io_spec))  # own copy: the IODMA names may change below
    io_spec["label_class_ids"] = {str(k): v for k, v in cfg.DFIRE_CLASS_IDS.items()}
    if bitfile is not None:
        _copy_bitfile(bitfile, hwh, paths.deploy_bitfiles)
    if driver_dir is not None:
        shutil.copytree(driver_dir, paths.deploy_driver, dirs_exist_ok=True)
        io_spec["io_shape_dict"].update(_driver_io_names(driver_dir))
    io_spec = _external_weights(paths, model_path, io_spec, built=driver_dir is not None)
    copy_model(model_path, paths.deploy_model)
    save_io_spec(io_spec, paths.io_spec)
    paths.board_requirements.write_text(board_requirements(cfg))
    copy_board_runtime(paths)
    return target


def package_weight_streams(paths):
    """{layer: uint8 buffer} of the package's external weight files (checked), for an emulator
    that computes with exactly what the board's weight DMAs will stream."""
    layout = paths.board_layout()
    return load_external_weights(layout.runtime_weights, load_io_spec(layout.io_spec))


def write_self_check(paths, hw_graph_fn, image_paths):
    """Record the emulator (`hw_graph_fn`, the bit-exact HW graph; for external weights one
    that reads `package_weight_streams`) on `image_paths`, preprocessed as the package's
    accelerator takes them, for `run_board.py --self-check`. Returns the recording."""
    layout = paths.board_layout()
    io_spec = load_io_spec(layout.io_spec)
    inputs = np.stack([file_input(p, io_spec)[0] for p in image_paths])
    emulator = EmulatedAccelerator(io_spec, hw_graph_fn)
    if paths.self_check.exists():
        shutil.rmtree(paths.self_check)
    return record_self_check(emulator, list(image_paths), inputs, layout)
