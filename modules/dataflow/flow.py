"""QONNX -> FINN dataflow graph, one function per step (notebook 03 calls them one by one).

Every step takes a ModelWrapper, returns the transformed model and a `StepReport` (node-type
counts before/after), and saves `NN_<stage>.onnx` into `out_dir` for Netron. The steps mirror
FINN's builder (`build_dataflow_steps.py`, which needs Vivado at import) plus what a
MobileNetV2 needs: residual adds with forks, depthwise convs, global average pool, a bipolar
head and a UINT8 input. Nothing refers to node indices, so other QONNX models (bnn_pynq CNV,
TFC) go through the same functions.
"""

import collections
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import finn.transformation.streamline.absorb as absorb
import finn.transformation.streamline.reorder as reorder
import numpy as np
import pandas as pd
from finn.transformation.fpgadataflow.convert_to_hw import (
    binary_matrix_vector_activation,
    concat,
    conv_inp_gen,
    duplicate_streams,
    elementwise_binary_operation,
    fm_padding,
    global_acc_pool,
    label_select,
    pool,
    quantized_matrix_vector_activation,
    thresholding,
    upsample,
    vector_vector_activation,
)
from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition
from finn.transformation.fpgadataflow.minimize_accumulator_width import (
    MinimizeAccumulatorWidth,
)
from finn.transformation.fpgadataflow.minimize_weight_bit_width import (
    MinimizeWeightBitWidth,
)
from finn.transformation.fpgadataflow.set_folding import SetFolding
from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
from finn.transformation.general import ApplyConfig
from finn.transformation.move_reshape import RemoveCNVtoFCFlatten
from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
from finn.transformation.streamline import Streamline
from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.bipolar_to_xnor import ConvertBipolarMatMulToXnorPopcount
from qonnx.transformation.composed import ComposedTransformation
from qonnx.transformation.fold_constants import FoldConstants
from qonnx.transformation.general import (
    GiveReadableTensorNames,
    GiveUniqueNodeNames,
    RemoveStaticGraphInputs,
    RemoveUnusedTensors,
)
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul
from qonnx.util.cleanup import cleanup_model

from modules.dataflow import external_weights as dram_weights
from modules.dataflow import folding_names
from modules.dataflow.graph_fixes import (
    BipolarOutputToBinary,
    RemoveTransposeBeforeFlatten,
    output_tail_nodes,
)
from modules.dataflow.setup import ensure_finn
from modules.quantization.export_fixes import ReduceMeanToGlobalAveragePool

# Stage numbers are fixed so a file name always means the same step, whichever steps ran.
STAGES = {
    "qonnx": 0,
    "finn_onnx": 1,
    "tidy": 2,
    "streamlined": 3,
    "hw_layers": 4,
    "partition_parent": 5,
    "partition_child": 6,
    "minimized": 7,
    "specialized": 8,
    "folded": 9,
}

# Attributes a folding JSON carries (FINN's builder exports the same set).
FOLDING_ATTRIBUTES = (
    "PE",
    "SIMD",
    "parallel_window",
    "ram_style",
    "ram_style_thresholds",
    "resType",
    "mem_mode",
    "depth_trigger_uram",
    "depth_trigger_bram",
)

HW_DOMAIN = "finn.custom_op.fpgadataflow"


class FinnFlowError(RuntimeError):
    """A step cannot continue; the message says what is in the way and what usually fixes it.

    `blocker`: the node that keeps the graph from one HW partition (dict: name, op_type,
    remedy), when that is the problem; `reports`: the StepReports of the steps that ran."""

    def __init__(self, message, blocker=None):
        super().__init__(message)
        self.blocker = blocker
        self.reports = []


@dataclass
class StepReport:
    stage: str
    path: Path | None
    before: dict
    after: dict
    seconds: float
    notes: list = field(default_factory=list)

    def changes(self):
        """Node types whose count changed: before, after, delta."""
        table = pd.DataFrame({"before": self.before, "after": self.after}).fillna(0).astype(int)
        table["delta"] = table["after"] - table["before"]
        return table[table["delta"] != 0].sort_values("delta")

    def summary(self):
        total_before, total_after = sum(self.before.values()), sum(self.after.values())
        return (
            f"{self.stage}: {total_before} -> {total_after} nodes in {self.seconds:.1f} s"
            f" ({self.path.name if self.path else 'not saved'})"
        )


def node_counts(model):
    return dict(collections.Counter(node.op_type for node in model.graph.node))


def stage_path(out_dir, stage):
    return Path(out_dir) / f"{STAGES[stage]:02d}_{stage}.onnx"


def _start(model):
    ensure_finn()  # FINN transformations create build folders from its settings
    return time.time(), node_counts(model)


def _finish(stage, before, model, out_dir, started, notes=()):
    path = None
    if out_dir is not None:
        path = stage_path(out_dir, stage)
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(str(path))
    report = StepReport(stage, path, before, node_counts(model), time.time() - started)
    report.notes.extend(notes)
    return model, report


def load_qonnx(path, out_dir=None):
    """The exported QONNX file (modules.quantization.export), saved as stage 00 for Netron."""
    model = ModelWrapper(str(path))
    return _finish("qonnx", node_counts(model), model, out_dir, time.time())


def to_finn(model, out_dir=None):
    """qonnx clean-ups (shapes, constants, ReduceMean pooling as GlobalAveragePool), then
    QONNX Quant/BipolarQuant nodes -> FINN's MultiThreshold + Mul representation."""
    started, before = _start(model)
    model = cleanup_model(model)  # ReduceMean's rewrite needs the shapes cleanup infers
    model = cleanup_model(model.transform(ReduceMeanToGlobalAveragePool()))
    model = model.transform(ConvertQONNXtoFINN())
    return _finish("finn_onnx", before, model, out_dir, started)


PIXEL_SCALE = 1.0 / 255.0


def graph_input_datatype(model):
    """The input datatype a QONNX graph declares or implies (what `input_dtype="auto"` uses):

    - the graph input's own quantization annotation, when it has one;
    - UINT8 when the graph starts by scaling by 1/255 (pixels 0..255 scaled inside the
      graph, like this repo's ScaleInput): streamlining then moves that scale into the
      first thresholds;
    - the first quantizer's integer grid when it reads the raw input at scale 1, zero point 0;
    - otherwise FLOAT32: the first quantizer expects floats, so the host feeds floats.
    """
    name = model.graph.input[0].name
    annotated = model.get_tensor_datatype(name)
    if annotated != DataType["FLOAT32"]:
        return annotated.name
    consumers = model.find_consumers(name) or []
    if len(consumers) != 1:
        return "FLOAT32"
    first = consumers[0]
    if _pixel_scale(model, first):
        return "UINT8"
    if first.op_type == "Quant" and first.input[0] == name:
        return _integer_quant_datatype(model, first) or "FLOAT32"
    return "FLOAT32"


def _pixel_scale(model, node):
    """Whether `node` is x * (1/255) or x / 255 with a scalar constant."""
    if node.op_type not in ("Mul", "Div"):
        return False
    constants = [model.get_initializer(i) for i in node.input]
    constant = constants[1] if constants[1] is not None else constants[0]
    if (
        constant is None
        or constant.size != 1
        or (node.op_type == "Div" and constants[0] is not None)
    ):
        return False
    factor = float(constant.item())
    factor = factor if node.op_type == "Mul" else 1.0 / factor
    return bool(np.isclose(factor, PIXEL_SCALE, rtol=1e-6))


def _integer_quant_datatype(model, quant):
    scale, zero_point, bits = (model.get_initializer(i) for i in quant.input[1:4])
    if any(v is None for v in (scale, zero_point, bits)):
        return None
    if not (np.all(scale == 1) and np.all(zero_point == 0)):
        return None
    signed = getCustomOp(quant).get_nodeattr("signed")
    return f"{'INT' if signed else 'UINT'}{int(bits.item())}"


def tidy_up(model, out_dir=None, input_dtype="UINT8"):
    """Shapes, constants, readable names, datatypes; then declare the graph input's datatype.

    `input_dtype`: a qonnx DataType name (run_flow resolves "auto" on the QONNX graph with
    `graph_input_datatype`, before conversion hides the first quantizer), or None to keep it.
    UINT8 input: the model scales 0..255 pixels inside the graph, so marking the input UINT8
    lets streamlining move that scale into the first thresholds (no 255-level input layer).
    """
    started, before = _start(model)
    for transformation in (
        InferShapes(),
        FoldConstants(),
        GiveUniqueNodeNames(),
        GiveReadableTensorNames(),
        InferDataTypes(),
        RemoveStaticGraphInputs(),
    ):
        model = model.transform(transformation)
    if input_dtype is not None:
        model.set_tensor_datatype(model.graph.input[0].name, DataType[input_dtype])
        model = model.transform(InferDataTypes())
    return _finish("tidy", before, model, out_dir, started)


def _streamline_residuals(model):
    # Block-input Muls fork into the conv branch and the skip branch; moving them past the fork
    # and the Add works because both Add inputs carry the same (shared-quantizer) scale. Twice,
    # because chained residual blocks expose the next Mul only after the first pass. This runs
    # in NCHW, before lowering adds Transposes around every fork.
    for _ in range(2):
        model = model.transform(reorder.MoveMulPastFork())
        model = model.transform(reorder.MoveLinearPastEltwiseAdd())
        model = model.transform(Streamline())
    return model


def _streamline_concats(model):
    # Darknet route/upsample: the concatenated branches share one quantizer (the importer's
    # replacement), so their dequantizing Muls are equal; move them past the nearest-neighbour
    # Resize and the Concat, where Streamline absorbs them into the next thresholds. Only for
    # graphs that have them, so other models stream as before.
    if not {"Concat", "Resize"} & set(node_counts(model)):
        return model
    for _ in range(2):
        model = model.transform(reorder.MoveScalarLinearPastInvariants())
        model = model.transform(reorder.MoveMulPastJoinConcat())
        model = model.transform(Streamline())
    return model


def _streamline_layouts(model):
    # Lowering convs to MatMul puts NCHW<->NHWC Transposes around every conv (depthwise ones
    # get the 'dw' sparsity annotation for VVAU); move them through forks and residual adds
    # until pairs cancel.
    for transformation in (
        LowerConvsToMatMul(),
        reorder.MakeMaxPoolNHWC(),
        absorb.AbsorbTransposeIntoMultiThreshold(),
        reorder.MakeMaxPoolNHWC(),
        absorb.AbsorbConsecutiveTransposes(),
        InferDataLayouts(),  # MakeScaleResizeNHWC acts on Resize nodes with an NCHW input
        reorder.MakeScaleResizeNHWC(),
        absorb.AbsorbConsecutiveTransposes(),
        ComposedTransformation(
            [
                reorder.MoveTransposePastFork(),
                absorb.AbsorbConsecutiveTransposes(),
                reorder.MoveTransposePastJoinAdd(),
                reorder.MoveTransposePastJoinConcat(),
                absorb.AbsorbTransposeIntoMultiThreshold(),
                absorb.AbsorbConsecutiveTransposes(),
            ]
        ),
        InferDataLayouts(),
    ):
        model = model.transform(transformation)
    return model


def streamline(model, out_dir=None):
    """Move every float scale/bias into integer thresholds; leaves MatMul/Im2Col/MultiThreshold
    (+ Add for residuals, GlobalAccPool, TopK) on integers."""
    started, before = _start(model)
    model = model.transform(absorb.AbsorbScalarBiasIntoMultiThreshold())
    model = model.transform(Streamline())
    model = _streamline_residuals(model)
    model = _streamline_concats(model)
    model = _streamline_layouts(model)
    for transformation in (
        # GlobalAveragePool -> GlobalAccPool + Mul(1/N) here rather than in to_hw, so the
        # following Streamline moves that Mul into the head's thresholds instead of leaving it
        # between two HW layers.
        global_acc_pool.InferGlobalAccPoolLayer(),
        absorb.AbsorbConsecutiveTransposes(),
        RemoveTransposeBeforeFlatten(),
        ConvertBipolarMatMulToXnorPopcount(),
        Streamline(),
        RoundAndClipThresholds(),
        absorb.AbsorbScalarMulAddIntoTopK(),  # CNV-style TensorNorm before an argmax head
        InferDataLayouts(),
        RemoveUnusedTensors(),
    ):
        model = model.transform(transformation)
    return _finish("streamlined", before, model, out_dir, started)


def to_hw(model, out_dir=None, standalone_thresholds=True):
    """Integer ops -> FINN's generic HW layers (MVAU, VVAU, Thresholding, SWG, ...).

    standalone_thresholds=True keeps thresholds out of the MVAUs, which is what lets FINN pick
    the DSP-based RTL MVAU; False embeds them (HLS MVAU only, no DSP datapath).
    """
    started, before = _start(model)
    model = model.transform(BipolarOutputToBinary()).transform(GiveUniqueNodeNames())
    host_tail = output_tail_nodes(model)  # output dequantisation stays on the host
    if standalone_thresholds:
        model = model.transform(thresholding.InferThresholdingLayer())
    for transformation in (
        binary_matrix_vector_activation.InferBinaryMatrixVectorActivation(),
        quantized_matrix_vector_activation.InferQuantizedMatrixVectorActivation(),
        vector_vector_activation.InferVectorVectorActivation(),
        label_select.InferLabelSelectLayer(),
        thresholding.InferThresholdingLayer(),
        fm_padding.InferFMPadding(),
        pool.InferPool(),
        conv_inp_gen.InferConvInpGen(),
        RemoveCNVtoFCFlatten(),
        elementwise_binary_operation.InferElementwiseBinaryOperation(
            lambda _model, node: node.name not in host_tail
        ),
        global_acc_pool.InferGlobalAccPoolLayer(),
        upsample.InferUpsample(),
        concat.InferConcatLayer(),
        duplicate_streams.InferDuplicateStreamsLayer(),
        absorb.AbsorbConsecutiveTransposes(),
        RemoveCNVtoFCFlatten(),
        GiveUniqueNodeNames(),
        InferDataLayouts(),
        InferDataTypes(),
        InferShapes(),
    ):
        model = model.transform(transformation)
    return _finish("hw_layers", before, model, out_dir, started)


# ------------------------------------------------------------------ non-HW node check

# op type -> the streamlining transformations that usually remove a leftover node of that type
REMEDIES = {
    "Mul": "MoveMulPastFork + MoveLinearPastEltwiseAdd (residual scales), "
    "MoveScalarLinearPastInvariants, AbsorbMulIntoMultiThreshold, then Streamline()",
    "Add": "MoveLinearPastEltwiseAdd, AbsorbAddIntoMultiThreshold, then Streamline(); a residual "
    "Add needs both inputs on one shared quantizer to become ElementwiseAdd",
    "Div": "Streamline() (a Div by a constant becomes a Mul)",
    "Sub": "Streamline() (a Sub of a constant becomes an Add)",
    "Transpose": "MoveTransposePastFork, MoveTransposePastJoinAdd, "
    "AbsorbTransposeIntoMultiThreshold, AbsorbConsecutiveTransposes",
    "Reshape": "RemoveCNVtoFCFlatten (flatten before a fully connected layer)",
    "Flatten": "RemoveCNVtoFCFlatten (flatten before a fully connected layer)",
    "MatMul": "a float MatMul means a scale was not absorbed: Streamline(), "
    "MoveScalarLinearPastInvariants, then InferQuantizedMatrixVectorActivation",
    "MultiThreshold": "InferThresholdingLayer; a BIPOLAR output needs BipolarOutputToBinary",
    "GlobalAveragePool": "InferGlobalAccPoolLayer during streamlining",
    "ReduceMean": "to_finn rewrites a mean over H and W (keepdims) to GlobalAveragePool; "
    "any other ReduceMean has no HW layer: pool with AdaptiveAvgPool2d(1) instead",
    "Im2Col": "InferConvInpGen",
    "LeakyRelu": "no FINN HW layer: only ReLU-family activations become thresholds; use "
    "(Quant)ReLU in the model",
    "Sigmoid": "no FINN HW layer: cut the export before it and apply it on the host",
    "MaxPool": "MakeMaxPoolNHWC, then InferPool",
    "MaxPoolNHWC": "InferPool",
}


def is_hw_node(node):
    return node.domain.startswith(HW_DOMAIN)


def _reachable(model, start, step):
    seen, frontier = set(), [start]
    while frontier:
        for neighbour in step(frontier.pop()) or []:
            if neighbour.name not in seen:
                seen.add(neighbour.name)
                frontier.append(neighbour)
    return seen


def non_hw_nodes_between_hw(model):
    """Non-HW nodes with an HW layer both upstream and downstream: they would split the
    accelerator into pieces (FINN's partitioner reports them as a cycle)."""
    hw_names = {node.name for node in model.graph.node if is_hw_node(node)}
    stuck = []
    for node in model.graph.node:
        if is_hw_node(node):
            continue
        upstream = _reachable(model, node, model.find_direct_predecessors)
        downstream = _reachable(model, node, model.find_direct_successors)
        if upstream & hw_names and downstream & hw_names:
            stuck.append(node)
    return stuck


# Layout and scalar-linear nodes pile up around a node FINN cannot map (Transposes from conv
# lowering cannot cancel across it, scales cannot move past it); once that node is gone they
# move or cancel, so they are listed as consequences, not named as the blocker.
MOVABLE = ("Transpose", "Reshape", "Flatten", "Mul", "Add", "Div", "Sub")


def find_blocker(stuck):
    """The node among `stuck` (graph order) that no streamlining moves or absorbs: the first
    one that is not a layout/scalar op, else the first stuck node."""
    fixed = [node for node in stuck if node.op_type not in MOVABLE]
    return (fixed or stuck)[0]


def _describe(model, node):
    before = [f"{p.name} ({p.op_type})" for p in model.find_direct_predecessors(node) or []]
    after = [f"{s.name} ({s.op_type})" for s in model.find_direct_successors(node) or []]
    return (
        f"{node.name} ({node.op_type}) between [{', '.join(before) or 'graph input'}] "
        f"and [{', '.join(after) or 'graph output'}]"
    )


def check_hw_only(model):
    """Raise FinnFlowError naming the node that blocks one HW partition (its neighbours and
    the transformations that usually remove it), then the other non-HW nodes left between
    HW layers."""
    stuck = non_hw_nodes_between_hw(model)
    if not stuck:
        return
    blocker = find_blocker(stuck)
    remedy = REMEDIES.get(
        blocker.op_type,
        "no FINN HW layer implements it: replace it in the "
        "model, or cut the graph so it runs on the host",
    )
    others = [f"- {_describe(model, node)}" for node in stuck if node is not blocker]
    message = (
        f"the accelerator cannot be one dataflow partition: blocked by "
        f"{_describe(model, blocker)}; usually removed by: {remedy}"
    )
    if others:
        message += (
            f"\n{len(others)} other non-HW node(s) between HW layers (these usually move or "
            "cancel once the blocker is gone):\n" + "\n".join(others)
        )
    info = {"name": blocker.name, "op_type": blocker.op_type, "remedy": remedy}
    raise FinnFlowError(message, blocker=info)


# ------------------------------------------------------------------ partition and after


def partition(model, out_dir=None):
    """Split into the parent graph (host nodes + one StreamingDataflowPartition) and the child
    (the accelerator). Returns (parent, child, report)."""
    started, before = _start(model)
    check_hw_only(model)
    partitions = Path(out_dir) / "partitions" if out_dir is not None else None
    parent = model.transform(
        CreateDataflowPartition(partition_model_dir=str(partitions) if partitions else None)
    )
    child = child_model(parent)
    parent, report = _finish("partition_parent", before, parent, out_dir, started)
    if out_dir is not None:
        child.save(str(stage_path(out_dir, "partition_child")))
    report.notes.append(f"child: {node_counts(child)}")
    return parent, child, report


def child_model(parent):
    partitions = parent.get_nodes_by_op_type("StreamingDataflowPartition")
    if len(partitions) != 1:
        raise FinnFlowError(f"expected one StreamingDataflowPartition, found {len(partitions)}")
    return ModelWrapper(getCustomOp(partitions[0]).get_nodeattr("model"))


def minimize_bit_widths(model, out_dir=None):
    """Narrowest weight and accumulator datatypes the actual values allow (builder step),
    keeping binary (BIPOLAR) MVAU weights at 1 bit."""
    started, before = _start(model)
    bipolar = _bipolar_weight_layers(model)
    model = model.transform(MinimizeWeightBitWidth())
    for node in model.graph.node:
        if node.name in bipolar:
            getCustomOp(node).set_nodeattr("weightDataType", "BIPOLAR")
    model = model.transform(MinimizeAccumulatorWidth()).transform(InferDataTypes())
    notes = [f"BIPOLAR weights kept at 1 bit: {', '.join(bipolar)}"] if bipolar else []
    return _finish("minimized", before, model, out_dir, started, notes)


def _bipolar_weight_layers(model):
    # MinimizeWeightBitWidth stores +-1 weights as INT2 (it asks for -w_max - 1 = -2), which
    # doubles their BRAM and DRAM stream; FINN's HLS MVAU computes BIPOLAR weights against
    # integer inputs directly (TWeightI = Recast<Binary>), as its python execution does
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MVAU" and getCustomOp(node).get_nodeattr("weightDataType") == "BIPOLAR"
    ]


def set_impl_styles(model, styles):
    """`styles`: node name -> "hls" | "rtl" (preferred_impl_style, read by SpecializeLayers)."""
    for node in model.graph.node:
        if node.name in styles:
            getCustomOp(node).set_nodeattr("preferred_impl_style", styles[node.name])
    return model


def specialize(model, part, out_dir=None, impl_styles=None):
    """Generic HW layers -> _hls/_rtl variants for the FPGA part (no Vivado needed).

    `impl_styles` (node name -> "hls"/"rtl") overrides FINN's default choice per layer.
    """
    started, before = _start(model)
    model = ModelWrapper(model.model.__deepcopy__())
    set_impl_styles(model, impl_styles or {})
    model = model.transform(SpecializeLayers(part))
    model = model.transform(InferShapes()).transform(InferDataTypes())
    return _finish("specialized", before, model, out_dir, started)


def target_cycles(target_fps, clock_mhz):
    return int(clock_mhz * 1e6 / target_fps)


def fold(
    model,
    out_dir=None,
    target_fps=None,
    clock_mhz=100.0,
    folding_config=None,
    mvau_wwidth_max=36,
    external_weights=(),
):
    """Set PE/SIMD: FINN's SetFolding for `target_fps` at `clock_mhz`, then, if given, a user
    folding JSON/dict (ApplyConfig) on top. Works on specialized graphs. `external_weights`:
    MVAU/VVAU layer names whose weights stream from DRAM (mem_mode "external"), as may the
    folding JSON's mem_mode entries; any other layer named is a FinnFlowError naming it."""
    started, before = _start(model)
    model = ModelWrapper(model.model.__deepcopy__())
    notes = []
    if target_fps is not None:
        cycles = target_cycles(target_fps, clock_mhz)
        model = model.transform(SetFolding(cycles, mvau_wwidth_max, two_pass_relaxation=True))
        notes.append(f"SetFolding: {target_fps} FPS at {clock_mhz} MHz = {cycles} cycles/frame")
    if folding_config is not None:
        source = "dict" if isinstance(folding_config, dict) else str(folding_config)
        raw = folding_config if isinstance(folding_config, dict) else _read_json(folding_config)
        config, matched = folding_names.match_folding(raw, model, source)
        streamed = _streamed_in_config(config)
        config = {k: {a: v for a, v in attrs.items() if not (k in streamed and a == "mem_mode")}
                  for k, attrs in config.items()}  # fmt: skip
        model = model.transform(ApplyConfig(config))
        external_weights = [*external_weights, *streamed]
        notes.append(f"folding config applied: {source} ({len(config) - 1} layers)")
        notes.extend(matched)
    if external_weights:
        model = _stream_weights(model, external_weights)
        notes.append(f"weights from DRAM (mem_mode external): {', '.join(external_weights)}")
    return _finish("folded", before, model, out_dir, started, notes)


def _streamed_in_config(config):
    return [
        name
        for name, attrs in config.items()
        if isinstance(attrs, dict) and attrs.get("mem_mode") == dram_weights.EXTERNAL
    ]


def _stream_weights(model, names):
    try:
        return dram_weights.set_external_weights(model, list(dict.fromkeys(names)))
    except ValueError as error:
        raise FinnFlowError(str(error)) from None


def _read_json(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"folding file {path} not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"folding file {path} is not JSON ({error})") from error


def extract_folding_config(model):
    """The folding attributes of every HW layer, in ApplyConfig's format."""
    return {
        name: attrs for name, attrs in _node_attributes(model, FOLDING_ATTRIBUTES).items() if attrs
    } | {"Defaults": {}}


def _node_attributes(model, names):
    result = {}
    for node in model.graph.node:
        if not is_hw_node(node):
            continue
        instance = getCustomOp(node)
        known = instance.get_nodeattr_types()
        result[node.name] = {name: instance.get_nodeattr(name) for name in names if name in known}
    return result


def save_folding_config(model, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(extract_folding_config(model), indent=2, default=_plain))
    return path


def _plain(value):
    return value.tolist() if hasattr(value, "tolist") else str(value)


# ------------------------------------------------------------------ everything in order


@dataclass
class FlowResult:
    """Every stage's model (keys as in STAGES) and the step reports, in order."""

    models: dict
    reports: list
    parent: ModelWrapper
    child: ModelWrapper  # minimized generic HW graph: what the emulator and checks execute
    folded: ModelWrapper
    input_dtype: str = "UINT8"  # the datatype declared on the graph input

    def counts_table(self):
        rows = {r.stage: r.after for r in self.reports}
        return pd.DataFrame(rows).fillna(0).astype(int).T


def run_flow(
    qonnx_path,
    out_dir,
    part,
    target_fps=None,
    clock_mhz=100.0,
    folding_config=None,
    standalone_thresholds=True,
    input_dtype="auto",
    impl_styles=None,
    mvau_wwidth_max=36,
    prepare=None,
    external_weights=(),
):
    """All steps in order. `prepare(model) -> model` runs on the QONNX graph first (e.g. a
    TopK head for an argmax classifier). `input_dtype`: a qonnx DataType name or "auto"
    (`graph_input_datatype`). `external_weights`: layers of the folded design that stream
    their weights from DRAM (`fold`). A FinnFlowError carries the reports of the steps that
    ran."""
    ensure_finn()
    model, first = load_qonnx(qonnx_path, out_dir)
    if prepare is not None:
        model = prepare(model)
    if input_dtype == "auto":
        input_dtype = graph_input_datatype(model)
    first.notes.append(f"input datatype: {input_dtype}")
    models, reports = {"qonnx": model}, [first]

    def record(result):
        models[result[1].stage] = result[0]
        reports.append(result[1])
        return result[0]

    try:
        model = record(to_finn(model, out_dir))
        model = record(tidy_up(model, out_dir, input_dtype))
        model = record(streamline(model, out_dir))
        model = record(to_hw(model, out_dir, standalone_thresholds))
        parent, child, report = partition(model, out_dir)
    except FinnFlowError as error:
        error.reports = reports
        raise
    models["partition_parent"], models["partition_child"] = parent, child
    reports.append(report)
    child = record(minimize_bit_widths(child, out_dir))
    specialized = record(specialize(child, part, out_dir, impl_styles))
    try:
        folded = record(
            fold(
                specialized,
                out_dir,
                target_fps,
                clock_mhz,
                folding_config,
                mvau_wwidth_max,
                external_weights,
            )
        )
    except FinnFlowError as error:
        error.reports = reports
        raise
    return FlowResult(models, reports, parent, child, folded, input_dtype)
