"""Hardware truth: the same images through every stage from FP32 to the folded FINN graph.

From Brevitas on, every stage must give identical outputs (integers and thresholds all the
way). When two graph stages disagree, `first_divergence` names the first tensor that differs.
Specialized `_hls`/`_rtl` layers only run in cppsim/rtlsim (Vivado), so the folded graph is
checked through `despecialize`, which keeps every attribute (PE, SIMD, minimized datatypes).
"""

import numpy as np
import torch
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.registry import getCustomOp

from modules.quantization import rounding_ties
from modules.quantization.equivalence import equivalence_table, onnx_stage, torch_stage

# Stages after these two are FINN graphs that must reproduce Brevitas bit for bit.
CONTEXT_STAGES = ("fp32", "brevitas")


def despecialize(model):
    """A copy with X_hls / X_rtl mapped back to the generic X, so python can execute it."""
    copy = ModelWrapper(model.model.__deepcopy__())
    for node in copy.graph.node:
        for suffix in ("_hls", "_rtl"):
            if node.op_type.endswith(suffix) and node.domain.endswith(suffix[1:]):
                node.op_type = node.op_type[: -len(suffix)]
                node.domain = node.domain[: -len(suffix)]
    return copy


def with_child(parent, child, path):
    """The parent graph with its dataflow partition replaced by `child` (saved to `path`), so
    the host nodes run around the accelerator graph exactly as on the board."""
    child.save(str(path))
    copy = ModelWrapper(parent.model.__deepcopy__())
    (partition,) = copy.get_nodes_by_op_type("StreamingDataflowPartition")
    getCustomOp(partition).set_nodeattr("model", str(path))
    return copy


def flow_stages(flow, brevitas_model, work_dir, fp32_model=None, emulator=None):
    """Stage name -> model (torch module, ModelWrapper, or a function of an image batch) for
    every executable stage of a `finn_flow.FlowResult`, in pipeline order. `emulator(model)`
    (e.g. modules.hardware.emulator.Emulator) adds the folded design as the emulator runs it,
    external weights read from their weight streams, as the last stage "emulated"."""
    stages = {"fp32": fp32_model} if fp32_model is not None else {}
    stages["brevitas"] = brevitas_model
    for name in ("qonnx", "finn_onnx", "streamlined", "hw_layers"):
        stages[name] = flow.models[name]
    stages["partitioned"] = with_child(flow.parent, flow.child, f"{work_dir}/check_child.onnx")
    stages["folded"] = with_child(
        flow.parent, despecialize(flow.folded), f"{work_dir}/check_folded.onnx"
    )
    if emulator is not None:
        design = with_child(flow.parent, flow.folded, f"{work_dir}/check_emulated.onnx")
        stages["emulated"] = emulator(design)
    return stages


def _runner(model):
    if isinstance(model, ModelWrapper):
        return onnx_stage(model)
    if isinstance(model, torch.nn.Module):
        return torch_stage(model)
    return model  # already a function of an image batch


def stage_equivalence(stages, images, diagnose=True):
    """Run `images` (N,3,H,W, 0..255) through every stage; table of stage, max |delta| to the
    previous stage, identical outputs %, decision agreement %, and whether that stage must be
    identical. On a mismatch between two graphs, `first_divergence` fills `first_divergence`;
    on one between Brevitas and its QONNX export, `rounding_ties.explain_stage` checks layer by
    layer that every difference is a level flip at a float rounding tie; between two graphs,
    `rounding_ties.explain_graph_stage` that it comes from float noise in a shared tensor."""
    runners = {name: _runner(model) for name, model in stages.items()}
    table, outputs = equivalence_table(runners, images)
    names = list(stages)
    # Brevitas vs FP32 is context only; every later stage must match its predecessor exactly
    table["must_be_identical"] = [
        i > 0 and names[i - 1] != "fp32" and name not in CONTEXT_STAGES
        for i, name in enumerate(names)
    ]
    table["first_divergence"] = ""
    for i, name in enumerate(names[1:], start=1):
        previous = names[i - 1]
        differs = not np.array_equal(outputs[name], outputs[previous])
        if differs and _is_export(stages[previous], stages[name]):
            rounding_ties.explain_stage(
                table, outputs, name, previous, stages[previous], stages[name], images
            )
        both_graphs = all(isinstance(stages[n], ModelWrapper) for n in (name, previous))
        if differs and both_graphs and table.loc[name, "must_be_identical"]:
            rounding_ties.explain_graph_stage(
                table, outputs, name, previous, stages[previous], stages[name], images
            )
        if diagnose and differs and both_graphs and table.loc[name, "must_be_identical"]:
            image = images[int(np.argmax(np.any(outputs[name] != outputs[previous], axis=1)))]
            table.loc[name, "first_divergence"] = str(
                first_divergence(stages[previous], stages[name], image)
            )
    return table, outputs


def assert_identical(table):
    """Raise unless every stage that must reproduce Brevitas does so on every image (the
    QONNX export: or differs only through rounding ties, see `stage_equivalence`)."""
    matching = [rounding_ties.matches(table, stage) for stage in table.index]
    bad = table[table["must_be_identical"] & ~np.array(matching)]
    if len(bad):
        raise AssertionError(f"stages differ from the stage before them:\n{bad.to_string()}")


def _is_export(previous, stage):
    """Brevitas followed by a graph with activation quantizers (its QONNX export)."""
    return (
        isinstance(previous, torch.nn.Module)
        and isinstance(stage, ModelWrapper)
        and bool(rounding_ties.activation_quant_nodes(stage))
    )


def _full_context(model, feeds):
    return execute_onnx(model, feeds, return_full_exec_context=True)


def first_divergence(model_a, model_b, image):
    """Execute both graphs on one image and return a dict naming the first tensor (in model_b's
    topological order) whose value differs from the tensor of the same name in model_a.

    model_b may start inside model_a (e.g. the accelerator child of a full graph): its input is
    then taken from model_a's tensor of that name. Without shared tensor names only the graph
    outputs can be compared, and the result says so.
    """
    input_a = model_a.graph.input[0].name
    context_a = _full_context(model_a, {input_a: np.asarray(image[None], dtype=np.float32)})
    input_b = model_b.graph.input[0].name
    feed_b = context_a[input_b] if input_b in context_a else image[None]
    context_b = _full_context(model_b, {input_b: np.asarray(feed_b, dtype=np.float32)})
    shared = 0
    for node in model_b.graph.node:
        for tensor in node.output:
            if tensor not in context_a or tensor not in context_b:
                continue
            shared += 1
            a, b = np.asarray(context_a[tensor]), np.asarray(context_b[tensor])
            if a.size == b.size and not np.array_equal(a.reshape(b.shape), b):
                return _divergence(node, tensor, a.reshape(b.shape), b, model_b)
    if shared:
        return {"tensor": None, "note": f"all {shared} shared tensors identical on this image"}
    output_a, output_b = model_a.graph.output[0].name, model_b.graph.output[0].name
    a, b = np.asarray(context_a[output_a]), np.asarray(context_b[output_b])
    if np.array_equal(a.reshape(b.shape), b):
        return {"tensor": None, "note": "graph outputs identical on this image"}
    last = model_b.find_producer(output_b)
    note = "no shared tensor names: only the graph outputs could be compared"
    return _divergence(last, output_b, a.reshape(b.shape), b, model_b) | {"note": note}


def _divergence(node, tensor, a, b, model):
    producers = [p.name for p in model.find_direct_predecessors(node) or []]
    return {
        "tensor": tensor,
        "node": node.name,
        "op_type": node.op_type,
        "inputs_from": producers,
        "max_abs_diff": float(np.abs(a.astype(np.float64) - b).max()),
        "elements_differing": int(np.count_nonzero(a != b)),
    }
