"""Where Brevitas and its exported QONNX graph round an activation to different levels.

Both compute a layer's value before quantization in float32, but with different operations
(torch's convolution and batch norm vs onnxruntime's), so the two values can differ in their
last bits. Where such a value sits on a rounding tie (value / scale + zero point within float
error of k + 0.5, or of 0 for a binary quantizer) the two quantizers pick neighbouring levels;
in a network with binary weights one such flip in an early layer changes many outputs further
on, so end-to-end outputs can differ widely although every layer agrees. An export bug (a
wrong scale, a wrong padding, a lost layer) changes levels away from ties.

`layerwise_flips` tells the two apart: it runs the QONNX graph node by node and after every
activation quantizer puts Brevitas' own activation in its place, so each layer is compared on
the same input and nothing propagates; every element whose level differs is counted as at a
tie or not.
"""

import numpy as np
import pandas as pd
import torch
from brevitas.nn import QuantIdentity, QuantReLU
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_node

TIE_TOLERANCE = 1e-3  # distance to the rounding boundary, in quantization steps
ACT_QUANT_OPS = ("Quant", "BipolarQuant")


def brevitas_activations(model, image):
    """Every activation quantizer's output (QuantReLU, QuantIdentity), in call order, for one
    image (3,H,W)."""
    outputs, hooks = [], []

    def keep(module, inputs, output):
        outputs.append(np.asarray(getattr(output, "value", output).detach(), dtype=np.float32))

    for module in model.modules():
        if isinstance(module, (QuantReLU, QuantIdentity)):
            hooks.append(module.register_forward_hook(keep))
    try:
        model.eval()
        with torch.no_grad():
            model(torch.as_tensor(image[None], dtype=torch.float32))
    finally:
        for hook in hooks:
            hook.remove()
    return outputs


def activation_quant_nodes(wrapper):
    """The graph's activation quantizers (a Quant/BipolarQuant of a computed tensor, not of
    an initializer), in topological order."""
    return [
        node
        for node in wrapper.graph.node
        if node.op_type in ACT_QUANT_OPS and wrapper.get_initializer(node.input[0]) is None
    ]


def tie_distance(node, context):
    """Per element, how far the quantizer's input lies from its rounding boundary, in steps."""
    value = np.asarray(context[node.input[0]], dtype=np.float64)
    scale = np.asarray(context[node.input[1]], dtype=np.float64)
    if node.op_type == "BipolarQuant":
        return np.abs(value / scale)
    zero_point = np.asarray(context[node.input[2]], dtype=np.float64)
    level = value / scale + zero_point
    return np.abs(level - np.floor(level) - 0.5)


def layerwise_flips(model, qonnx, images, tolerance=TIE_TOLERANCE):
    """Per activation quantizer of `qonnx` (path or ModelWrapper): elements compared, level
    flips at a rounding tie and elsewhere, on `images` (N,3,H,W, 0..255), each layer fed
    Brevitas' activations. Raises ValueError where the two do not pair up layer by layer."""
    wrapper = qonnx if isinstance(qonnx, ModelWrapper) else ModelWrapper(str(qonnx))
    nodes = activation_quant_nodes(wrapper)
    opset = wrapper.get_opset_imports().get("", 11)
    counts = {node.name: np.zeros(3, dtype=np.int64) for node in nodes}
    for image in images:
        reference = brevitas_activations(model, image)
        if len(reference) != len(nodes):
            raise ValueError(
                f"{len(nodes)} activation quantizers in {wrapper.graph.name or 'the QONNX graph'}"
                f" but {len(reference)} in the Brevitas model: cannot compare layer by layer"
            )
        context = wrapper.make_empty_exec_context()
        context[wrapper.graph.input[0].name] = np.asarray(image[None], dtype=np.float32)
        pending = dict(zip((n.name for n in nodes), reference, strict=True))
        for node in wrapper.graph.node:
            execute_node(node, context, wrapper.graph, opset)
            if node.name not in pending:
                continue
            ours, theirs = context[node.output[0]], pending[node.name]
            if ours.size != theirs.size:
                raise ValueError(
                    f"{node.name}: {ours.shape} in QONNX vs {theirs.shape} in Brevitas: cannot "
                    "compare layer by layer"
                )
            theirs = theirs.reshape(ours.shape)
            flipped = ours != theirs
            at_tie = flipped & (tie_distance(node, context) < tolerance)
            counts[node.name] += [ours.size, at_tie.sum(), flipped.sum() - at_tie.sum()]
            context[node.output[0]] = theirs  # the next layer starts from Brevitas' values
    return pd.DataFrame(
        [[name, *c] for name, c in counts.items()],
        columns=["quantizer", "elements", "flips_at_ties", "flips_elsewhere"],
    ).set_index("quantizer")


def differing_images(first, second):
    """Indices of the images whose outputs (N, ...) differ anywhere."""
    first, second = np.asarray(first), np.asarray(second)
    flat = (first.reshape(len(first), -1) != second.reshape(len(second), -1)).any(axis=1)
    return np.flatnonzero(flat)


def ties_explain(model, qonnx, images, first, second):
    """(explained, table): whether every image on which `first` (Brevitas) and `second`
    (QONNX) differ differs only through level flips at rounding ties, layer by layer; table:
    `layerwise_flips` on those images (None where none differs)."""
    differing = differing_images(first, second)
    if not len(differing):
        return True, None
    table = layerwise_flips(model, qonnx, np.asarray(images)[differing])
    return bool(table["flips_elsewhere"].sum() == 0 and table["flips_at_ties"].sum() > 0), table


def explain_stage(table, outputs, stage, reference, model, qonnx, images):
    """Add to an equivalence table the row `stage` (the QONNX graph `qonnx`) vs `reference`
    (the Brevitas `model`): flips_at_ties (level flips at rounding ties, layer by layer, on
    the images that differ) and explained_by_ties. Returns the layerwise table or None."""
    explained, flips = ties_explain(model, qonnx, images, outputs[reference], outputs[stage])
    table.loc[stage, "flips_at_ties"] = 0 if flips is None else int(flips["flips_at_ties"].sum())
    table.loc[stage, "explained_by_ties"] = flips is not None and explained
    return flips


def matches(table, stage):
    """Whether `stage` reproduces its reference: every output identical, or every difference
    traced to rounding ties by `explain_stage`."""
    row = table.loc[stage]  # str(): a column read back from CSV holds the text "True"
    return bool(row["identical_outputs_%"] >= 100.0 or str(row.get("explained_by_ties")) == "True")
