"""What runs where in a compiled design: the share of the model's multiply-accumulates (MACs)
that the accelerator does, and the compute nodes (Conv, MatMul, Gemm) left on the host.

FINN maps only quantized convolutions and matmuls to its MVAU/VVAU layers; a float one stays in
the host graph, where it runs on the ARM and the accelerator does nearly nothing. The accelerator's
MACs come from FINN's own per-layer counts (`get_op_and_param_counts`).
"""

import numpy as np
from qonnx.custom_op.registry import getCustomOp

HOST_COMPUTE = ("Conv", "ConvTranspose", "MatMul", "Gemm")
QUANTIZERS = ("Quant", "BipolarQuant", "Trunc", "MultiThreshold")


def host_macs(model, node):
    """MACs of one standard ONNX compute node, from the graph's tensor shapes."""
    out_shape = model.get_tensor_shape(node.output[0])
    if node.op_type in ("Conv", "ConvTranspose"):
        # weight (C_out, C_in / group, kh, kw): each output value sums C_in / group * kh * kw
        per_output = np.prod(model.get_tensor_shape(node.input[1])[1:])
    else:
        a_shape = model.get_tensor_shape(node.input[0])
        trans_a = any(a.name == "transA" and a.i for a in node.attribute)
        per_output = a_shape[-2] if trans_a else a_shape[-1]
    return int(np.prod(out_shape) * per_output)


def accelerator_macs(accelerator):
    """Sum of the MAC counts FINN reports for the accelerator's layers."""
    total = 0
    for node in accelerator.graph.node:
        counts = getCustomOp(node).get_op_and_param_counts()  # every partition node is HW
        total += sum(v for k, v in counts.items() if k.startswith("op_mac"))
    return int(total)


def placement(host_graph, accelerator):
    """{accelerator_mac_share, accelerator_macs, host_macs, host_compute_nodes: [{name,
    op_type, macs}]} of a partitioned design (`host_graph` holds the partition node)."""
    left = [
        {"name": node.name, "op_type": node.op_type, "macs": host_macs(host_graph, node)}
        for node in host_graph.graph.node
        if node.op_type in HOST_COMPUTE
    ]
    on_host = sum(entry["macs"] for entry in left)
    on_accelerator = accelerator_macs(accelerator)
    total = on_host + on_accelerator
    return {
        "accelerator_mac_share": round(on_accelerator / total, 4) if total else None,
        "accelerator_macs": on_accelerator,
        "host_macs": on_host,
        "host_compute_nodes": left,
    }


def likely_cause(source_counts):
    """Why convolutions or matmuls stayed on the host, from the node counts of the model as
    given (before any FINN step)."""
    if not any(source_counts.get(op, 0) for op in QUANTIZERS):
        return (
            "the model has no quantizers (a float export): FINN maps only quantized layers; "
            "quantize it (Brevitas QAT or PTQ) and export it with export_qonnx"
        )
    return (
        "their weights or inputs are not quantized to integers (a float layer between the "
        "quantizers), or FINN has no converter for the op in this form"
    )


def placement_error(where, cause):
    """The message of a design (`placement`'s dict) whose convolutions or matmuls stayed on
    the host, or None when they all reached the accelerator."""
    left = where["host_compute_nodes"]
    if not left:
        return None
    names = ", ".join(f"{n['name']} ({n['op_type']})" for n in left)
    share = where["accelerator_mac_share"]
    share_text = "n/a" if share is None else f"{100 * share:.1f} %"
    return (
        f"{len(left)} compute node(s) left on the host: {names}; the accelerator does "
        f"{share_text} of the MACs. Likely cause: {cause}"
    )
