"""Which compute layers of a folded design stream their weights from DRAM.

FINN's MVAU and VVAU take `mem_mode = "external"`: the weights arrive as a second input stream
(fed on the board by a weight DMA that re-reads them for every output pixel) instead of from an
on-chip memory. No other layer has weights that could move off-chip.
"""

import numpy as np
from qonnx.custom_op.registry import getCustomOp

from modules.board.packing import datatype, pack, packed_bytes, unpack

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


# ------------------------------------------------------------------ the weight stream
#
# On the board a weight DMA (FINN's InsertIODMA(insert_extmemw=True), burst mode "wrap") reads
# one buffer per external layer and streams it to the layer once per output pixel. The buffer
# is FINN's `InsertIODMA.get_mem_init` matrix (one row of PE x SIMD weights per stream word)
# packed by `finn.util.data_packing.to_external_tensor`: weight (pe, simd) at bits
# (pe * SIMD + simd) * w of a little-endian word, words padded to whole bytes. That is the
# board runtime's `pack` of each word, which packs a 9-Mbit layer in milliseconds where FINN's
# per-row Python loops and hex strings take minutes (tests check that the bytes agree).


def streamed_layer(model, name):
    """The node `name`, checked: an MVAU (FINN's weight DMA packs only 2-D weight matrices;
    a VVAU's depthwise weights have no DMA layout in finn-plus 1.6.1) with mem_mode external."""
    node = model.get_node_from_name(name)
    if node is None:
        raise ValueError(f"no layer {name!r} in the design")
    if node.op_type.removesuffix("_hls").removesuffix("_rtl") != "MVAU":
        raise ValueError(
            f"{name} ({node.op_type}): FINN's weight DMA (InsertIODMA) streams only MVAU weight "
            "matrices; keep this layer's weights on chip"
        )
    if getCustomOp(node).get_nodeattr("mem_mode") != EXTERNAL:
        raise ValueError(f"{name} ({node.op_type}) does not stream its weights (mem_mode)")
    return node


def stream_geometry(model, node):
    """(MW, MH, PE, SIMD, weight datatype name) of an MVAU's weight stream."""
    op = getCustomOp(node)
    mw, mh, pe, simd = (int(op.get_nodeattr(k)) for k in ("MW", "MH", "PE", "SIMD"))
    return mw, mh, pe, simd, op.get_input_datatype(1).name


def check_dma_packable(model, node):
    """Raise, naming the layer, unless FINN's weight DMA and driver can carry its weights:
    InsertIODMA needs the whole matrix in whole bytes, the driver's packer
    (to_external_tensor) stream words that round to whole bytes at a 4-bit step."""
    mw, mh, pe, simd, wdt = stream_geometry(model, node)
    bits = getCustomOp(node).get_input_datatype(1).bitwidth()
    if mw * mh * bits % 8:
        raise ValueError(
            f"{node.name}: {mw} x {mh} weights of {bits} bit are not whole bytes; "
            "FINN's weight DMA moves bytes: keep this layer's weights on chip"
        )
    width = pe * simd * bits
    if -(-width // 4) * 4 % 8:
        raise ValueError(
            f"{node.name}: a weight stream word of PE {pe} x SIMD {simd} x {bits} bit "
            f"= {width} bits; FINN's driver packs only words that round to whole bytes at a "
            "4-bit step: choose PE/SIMD so that the word is a multiple of 8 bits"
        )


def stream_order(mw, mh, pe, simd):
    """Flat index into the (MW, MH) weight matrix of element p * SIMD + s of each stream word,
    words in FINN's order (get_mem_init: output-row fold outer, input-column fold inner)."""
    fr = np.arange(mh // pe)[:, None, None, None]
    fc = np.arange(mw // simd)[None, :, None, None]
    p = np.arange(pe)[None, None, :, None]
    s = np.arange(simd)[None, None, None, :]
    return ((fc * simd + s) * mh + fr * pe + p).reshape(-1, pe * simd)


def weight_stream(model, node):
    """The uint8 buffer the layer's weight DMA reads: FINN's `runtime_weights/<idma>.npy`."""
    mw, mh, pe, simd, wdt = stream_geometry(model, node)
    weights = model.get_initializer(node.input[1]).reshape(-1)
    words = weights[stream_order(mw, mh, pe, simd)]
    return pack(words, datatype(wdt)).reshape(-1)


def weights_from_stream(model, node, stream):
    """The (MW, MH) weight matrix a layer computes with when its DMA delivers `stream`
    (uint8 bytes as `weight_stream` writes them); a buffer of another size is an error."""
    mw, mh, pe, simd, wdt = stream_geometry(model, node)
    order = stream_order(mw, mh, pe, simd)
    dtype = datatype(wdt)
    stream = np.asarray(stream)
    expected = len(order) * packed_bytes(pe * simd, dtype)
    if stream.dtype != np.uint8 or stream.size != expected:
        raise ValueError(
            f"{node.name}: weight stream of {stream.size} {stream.dtype} values; the layer reads "
            f"{expected} bytes ({len(order)} words of PE {pe} x SIMD {simd} x {wdt})"
        )
    words = unpack(stream.reshape(len(order), -1), dtype, pe * simd)
    weights = np.empty(mw * mh, dtype=np.float32)
    weights[order.reshape(-1)] = words.reshape(-1)
    return weights.reshape(mw, mh)
