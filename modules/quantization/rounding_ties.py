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
tie or not. FINN's own transformations do the same to float arithmetic (ConvertQONNXtoFINN
moves the input scale past the first convolution), so between two graphs
`float_noise_explains` runs the later one node by node and accepts a differing shared tensor
only as float noise, replacing it with the earlier graph's value.
"""

import numpy as np
import pandas as pd
import torch
from brevitas.nn import QuantIdentity, QuantReLU
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_node, execute_onnx
from qonnx.util.basic import get_by_name

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
    if flips is not None:  # an identical stage needs no explanation: both columns stay empty
        table.loc[stage, "flips_at_ties"] = int(flips["flips_at_ties"].sum())
        table.loc[stage, "explained_by_ties"] = explained
    return flips


def matches(table, stage):
    """Whether `stage` reproduces its reference: every output identical, or every difference
    traced to rounding ties by `explain_stage`."""
    row = table.loc[stage]  # str(): a column read back from CSV holds the text "True"
    return bool(row["identical_outputs_%"] >= 100.0 or str(row.get("explained_by_ties")) == "True")


FLOAT_NOISE_RTOL = 1e-5  # float32 reordering error, relative to the tensor's largest value


def float_noise_explains(first, second, image, rtol=FLOAT_NOISE_RTOL):
    """Graph `second` (a FINN transformation of graph `first`, ModelWrappers) run node by node
    on one image (3,H,W), with `first`'s values put in place as it goes, so that a rounding tie
    downstream resolves as in `first`:

    - a tensor both graphs have (same name) that differs must differ by float noise (within
      `rtol` of its largest magnitude: the same arithmetic in another order, e.g. a scale
      moved past a convolution);
    - the n-th MultiThreshold of `second` is paired with the n-th of `first` (when both have
      as many, with outputs of one shape): its outputs may differ only where its input sits
      on one of its thresholds, to float error (streamlining recomputes the thresholds).

    Returns (explained, tensors replaced): explained when nothing else differed and the
    outputs then agree."""
    feed = np.asarray(image[None], dtype=np.float32)
    feeds = {first.graph.input[0].name: feed}
    reference = execute_onnx(first, feeds, return_full_exec_context=True)
    pairs = {ours.name: theirs for ours, theirs in _paired_thresholds(first, second)}
    thresholds = {  # first's threshold outputs as second's would give them
        name: _as_threshold_output(theirs, second.get_node_from_name(name), reference)
        for name, theirs in pairs.items()
    }
    context = second.make_empty_exec_context()
    context[second.graph.input[0].name] = feed
    opset = second.get_opset_imports().get("", 11)
    replaced = 0
    for node in second.graph.node:
        execute_node(node, context, second.graph, opset)
        for index, name in enumerate(node.output):
            paired = index == 0 and node.name in thresholds
            if not paired and name not in reference:
                continue
            ours = np.asarray(context[name])
            theirs = np.asarray(thresholds[node.name] if paired else reference[name])
            if ours.size != theirs.size or np.array_equal(ours.ravel(), theirs.ravel()):
                continue  # equal, or the same name for another tensor: nothing to compare
            theirs = theirs.reshape(ours.shape)
            if paired:  # a tie in either graph: its input on one of its thresholds
                ties = _threshold_ties(node, context, rtol) | _to_layout(
                    _threshold_ties(pairs[node.name], reference, rtol), pairs[node.name], node
                )
                explained = ties[ours != theirs].all()
            else:
                explained = _within_noise(ours, theirs, rtol)
            if not explained:
                return False, replaced
            context[name], replaced = theirs.astype(ours.dtype), replaced + 1
    ours, theirs = context[second.graph.output[0].name], reference[first.graph.output[0].name]
    return bool(np.array_equal(np.asarray(ours).ravel(), np.asarray(theirs).ravel())), replaced


def _within_noise(ours, theirs, rtol):
    return float(np.abs(ours - theirs).max()) <= rtol * max(float(np.abs(theirs).max()), 1e-12)


def _paired_thresholds(first, second):
    """(second's, first's) MultiThreshold nodes at the same position, when both graphs have as
    many (FINN's transformations keep one per activation, in order)."""
    ours, theirs = (m.get_nodes_by_op_type("MultiThreshold") for m in (second, first))
    return list(zip(ours, theirs, strict=True)) if len(ours) == len(theirs) else []


def _threshold_attr(node, name, default):
    attribute = get_by_name(node.attribute, name)
    if attribute is None:
        return default
    return attribute.s.decode() if attribute.type == attribute.STRING else attribute.f


def _to_layout(array, node, like):
    """A MultiThreshold `node`'s per-element array in MultiThreshold `like`'s data layout."""
    layouts = [_threshold_attr(n, "data_layout", "NCHW") for n in (node, like)]
    if layouts[0] == layouts[1] or array.ndim != 4:
        return array
    return np.moveaxis(array, 1, -1) if layouts[1] == "NHWC" else np.moveaxis(array, -1, 1)


def _as_threshold_output(node, like, context):
    """The output of MultiThreshold `node` (its counts in `context`) as MultiThreshold `like`
    would give the same counts: its data layout, out_scale and out_bias."""
    value = np.asarray(context[node.output[0]], dtype=np.float64)
    scale, bias = (
        _threshold_attr(node, name, d) for name, d in (("out_scale", 1.0), ("out_bias", 0.0))
    )
    counts = _to_layout((value - bias) / scale, node, like)
    return counts * _threshold_attr(like, "out_scale", 1.0) + _threshold_attr(like, "out_bias", 0.0)


def _threshold_ties(node, context, rtol):
    """Per output element of a MultiThreshold: whether its input lies on one of its channel's
    thresholds, to float error (relative to the threshold, at least 1)."""
    values = np.asarray(context[node.input[0]], dtype=np.float64)
    thresholds = np.asarray(context[node.input[1]], dtype=np.float64)
    axis = -1 if _threshold_attr(node, "data_layout", "NCHW") == "NHWC" else 1
    moved = np.moveaxis(values, axis, -1)
    distance = np.abs(moved[..., None] - thresholds)  # (..., C, steps); one row broadcasts
    near = (distance <= rtol * np.maximum(np.abs(thresholds), 1.0)).any(axis=-1)
    return np.moveaxis(near, -1, axis)


def explain_graph_stage(table, outputs, stage, reference, first, second, images):
    """As `explain_stage`, for two graphs (`float_noise_explains` on every differing image):
    float_noise_tensors (tensors replaced: float noise or threshold ties) and
    explained_by_ties."""
    differing = differing_images(outputs[reference], outputs[stage])
    results = [float_noise_explains(first, second, images[i]) for i in differing]
    table.loc[stage, "float_noise_tensors"] = sum(replaced for _, replaced in results)
    table.loc[stage, "explained_by_ties"] = bool(results) and all(ok for ok, _ in results)
