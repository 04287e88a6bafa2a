"""Which compute layers of a folded design stream their weights from DRAM.

FINN's MVAU and VVAU take `mem_mode = "external"`: the weights arrive as a second input stream
(fed on the board by a weight DMA that re-reads them for every output pixel) instead of from an
on-chip memory. No other layer has weights that could move off-chip.
"""

from qonnx.custom_op.registry import getCustomOp

STREAMABLE = ("MVAU", "VVAU")  # op types (with or without _hls/_rtl) that take external weights
EXTERNAL = "external"


def can_stream_weights(node):
    return node.op_type.removesuffix("_hls").removesuffix("_rtl") in STREAMABLE


def set_external_weights(model, layer_names):
    """Set mem_mode "external" on the named layers; a name that is not in the graph or names a
    layer without streamable weights is an error naming it (and its op type)."""
    nodes = {node.name: node for node in model.graph.node}
    missing = [name for name in layer_names if name not in nodes]
    if missing:
        raise ValueError(f"EXTERNAL_WEIGHTS names layers not in the design: {missing}")
    wrong = [f"{n} ({nodes[n].op_type})" for n in layer_names if not can_stream_weights(nodes[n])]
    if wrong:
        raise ValueError(
            f"only {' / '.join(STREAMABLE)} layers can stream their weights from DRAM; "
            f"EXTERNAL_WEIGHTS names {', '.join(wrong)}"
        )
    for name in layer_names:
        getCustomOp(nodes[name]).set_nodeattr("mem_mode", EXTERNAL)
    return model


def external_weight_layers(model):
    """Names of the layers whose weights stream from DRAM, in graph order."""
    return [
        node.name
        for node in model.graph.node
        if can_stream_weights(node) and getCustomOp(node).get_nodeattr("mem_mode") == EXTERNAL
    ]
