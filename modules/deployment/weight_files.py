"""External (DRAM) weights in the deployment package, in the layout FINN's driver loads.

FINN's Zynq build (`ZynqBuild`: InsertIODMA(insert_extmemw=True), InsertDWC, SpecializeLayers,
Floorplan, CreateDataflowPartition) gives every external-weight MVAU a weight DMA of its own
partition, and `MakeZYNQProject` names the DMAs that read from memory idma0, idma1, ... in
partition order: the input DMA is not necessarily idma0 then. finn-plus-driver's
`load_external_weights` reads `runtime_weights/<dma>.npy` (uint8, the DMA buffer), takes the
count from `number_of_external_weights` and the re-reads per frame from
`external_weights_input_shapes[<dma>]` (the layer's output shape: H x W for NHWC). Here the
same transformations run on a copy of the folded design (pure Python, no Vivado), so the
package names the DMAs as the build will; a finished build's own driver files replace them.
"""

import hashlib
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from modules.dataflow.external_weights import (
    check_dma_packable,
    external_weight_layers,
    streamed_layer,
    weight_stream,
)

ZYNQ_AXI_PORT_WIDTH = 64  # ZynqBuild's default axi_port_width


def _zynq_partitions(folded, part):
    """The folded design as ZynqBuild partitions it (one partition per DMA)."""
    from finn.transformation.fpgadataflow.create_dataflow_partition import (
        CreateDataflowPartition,
    )
    from finn.transformation.fpgadataflow.floorplan import Floorplan
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.insert_iodma import InsertIODMA
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames

    from modules.dataflow.setup import ensure_finn

    ensure_finn()
    model = ModelWrapper(folded.model.__deepcopy__())
    for transformation in (
        InsertIODMA(ZYNQ_AXI_PORT_WIDTH),
        InsertDWC(),
        SpecializeLayers(part),
        Floorplan(),
        CreateDataflowPartition(),
    ):
        model = model.transform(transformation)
        model = model.transform(GiveUniqueNodeNames()).transform(GiveReadableTensorNames())
    return model


def dma_plan(folded, part):
    """{"input_dma": name, "weights": [{"dma", "layer", "input_shape"}]} for a folded design
    whose MVAUs stream weights, as FINN's Zynq build and driver name them."""
    for name in external_weight_layers(folded):  # name a layer FINN's DMA cannot feed
        check_dma_packable(folded, streamed_layer(folded, name))
    parent = _zynq_partitions(folded, part)
    plan, index = {"input_dma": None, "weights": []}, 0
    for node in parent.get_nodes_by_op_type("StreamingDataflowPartition"):
        if node.input and parent.find_producer(node.input[0]) is not None:
            continue  # only partitions fed from memory are named idma<i>
        dma_name, index = f"idma{index}", index + 1
        child = ModelWrapper(getCustomOp(node).get_nodeattr("model"))
        dma = getCustomOp(child.graph.node[0])
        if dma.get_nodeattr("burstMode") != "wrap":
            plan["input_dma"] = dma_name
            continue
        target = ModelWrapper(
            getCustomOp(parent.find_consumer(node.output[0])).get_nodeattr("model")
        )
        layer = target.find_consumer(child.graph.node[0].output[0])
        plan["weights"].append(
            {
                "dma": dma_name,
                "layer": layer.name,
                "input_shape": target.get_tensor_shape(layer.output[0]),
            }
        )
    return plan


def _record(path, dma, layer):
    data = np.load(path)
    return {
        "dma": dma,
        "layer": layer,
        "file": path.name,
        "bytes": int(data.size),
        "sha256": hashlib.sha256(np.ascontiguousarray(data, dtype=np.uint8).tobytes()).hexdigest(),
    }


def write_weight_files(folded, plan, weights_dir):
    """`runtime_weights/<dma>.npy` for every weight DMA of `plan` (FINN's MakePYNQDriver
    writes the same files); returns their records (dma, layer, file, bytes, sha256)."""
    weights_dir = Path(weights_dir)
    weights_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for entry in plan["weights"]:
        path = weights_dir / f"{entry['dma']}.npy"
        node = folded.get_node_from_name(entry["layer"])
        np.save(path, weight_stream(folded, node))
        records.append(_record(path, entry["dma"], entry["layer"]))
    return records


def built_weight_files(plan, weights_dir):
    """Records of the weight files a finished FINN build wrote (its driver's runtime_weights/);
    a file the plan expects but the build did not write is an error naming it."""
    weights_dir = Path(weights_dir)
    records = []
    for entry in plan["weights"]:
        path = weights_dir / f"{entry['dma']}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the build wrote no weights for {entry['layer']}")
        records.append(_record(path, entry["dma"], entry["layer"]))
    return records


def io_shape_entries(plan):
    """The io_shape_dict keys of FINN's driver settings that describe the weight DMAs."""
    return {
        "idma_names": [plan["input_dma"]],
        "number_of_external_weights": len(plan["weights"]),
        "external_weights_input_shapes": {
            e["dma"]: [int(d) for d in e["input_shape"]] for e in plan["weights"]
        },
    }
