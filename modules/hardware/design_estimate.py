"""Whole-design estimate of an existing FINN build's ONNX (`firesmoke estimate`).

Reads any ONNX of a FINN build after hardware conversion (finn-plus or older FINN op names),
follows StreamingDataflowPartition nodes into their child models, and costs every HW node
with its block model (`block_models`), adding what the builder adds and the graph does not
hold yet: the input and output IODMA where the design has none, and the Zynq shell (AXI
interconnect, PS reset). FIFOs and width converters are costed as stored; a finn-plus
accelerator graph without them (folded, before the builder's FIFO step) gets them inserted
as the builder would (`resources.stitched_design`, depths by FIFO_SIZING).
"""

from dataclasses import dataclass, field
from pathlib import Path

import onnx
from onnx import helper

from modules.hardware import block_fit, block_models
from modules.hardware.block_models import RESOURCES, Block, UnknownBlock

HW_DOMAIN = "finn.custom_op.fpgadataflow"
PARTITION = "StreamingDataflowPartition"


class NotAHardwareGraph(ValueError):
    """An ONNX without FINN hardware layers."""


@dataclass
class DesignEstimate:
    model: str
    part: str
    blocks: list  # dicts: block, op_type, kind, LUT, FF, BRAM36, DSP, rule
    totals: dict
    uncosted: list = field(default_factory=list)  # (node name, op type)
    added: list = field(default_factory=list)  # what the builder would add, named
    holdout_error_pct: dict = field(default_factory=dict)
    holdout_error_abs: dict = field(default_factory=dict)

    def as_dict(self):
        return {
            "model": self.model,
            "part": self.part,
            "blocks": self.blocks,
            "totals": self.totals,
            "holdout_error_pct": self.holdout_error_pct,
            "holdout_error_abs": self.holdout_error_abs,
            "uncosted": [{"node": n, "op_type": o} for n, o in self.uncosted],
            "added": self.added,
        }


def _attributes(node):
    values = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, list):
            value = [v.decode() if isinstance(v, bytes) else v for v in value]
        values[attribute.name] = value
    return values


def _child_path(parent_file, stored):
    """A partition's child model: as stored, else under the parent's folder by the stored
    path's trailing components (build-machine paths differ from here)."""
    stored_path = Path(stored)
    if stored_path.is_file():
        return stored_path
    parts = stored_path.parts
    for start in range(len(parts)):
        candidate = Path(parent_file).parent.joinpath(*parts[start:])
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{parent_file}: partition model {stored} not found (looked beside the parent ONNX too)"
    )


def hw_nodes(path):
    """(node, file) of every HW node of `path`, partitions expanded in graph order."""
    model = onnx.load(str(path), load_external_data=False)
    nodes = []
    for node in model.graph.node:
        if node.op_type == PARTITION:
            child = _child_path(path, _attributes(node)["model"])
            nodes.extend(hw_nodes(child))
        elif node.domain.startswith(HW_DOMAIN):
            nodes.append((node, Path(path)))
    return nodes


def _iodma_count(blocks):
    return sum(block.kind == "IODMA" for block in blocks)


def _needs_fifos(path, blocks):
    """A single finn-plus graph of specialized layers without FIFOs (the builder adds them)."""
    specialized = all(block.op_type.endswith(("_hls", "_rtl")) for block in blocks)
    no_fifos = not any(block.kind in ("FIFO", "DWC") for block in blocks)
    single = not any(n.op_type == PARTITION for n in onnx.load(str(path)).graph.node)
    return bool(blocks) and specialized and no_fifos and single


def _stitched_blocks(path, part, fifo_method):
    from qonnx.core.modelwrapper import ModelWrapper

    from modules.hardware import resources

    stitched = resources.stitched_design(ModelWrapper(str(path)), part, fifo_method=fifo_method)
    return [resources.node_block(stitched, node) for node in stitched.graph.node]


def estimate_file(path, part, coefficients=None, fifo_method="backpressure"):
    """Cost every HW node of the ONNX at `path` (module doc)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"estimate: no model file {path}")
    try:
        nodes = hw_nodes(path)
    except onnx.onnx_cpp2py_export.checker.ValidationError as error:
        raise ValueError(f"estimate: {path} is not an ONNX model ({error})") from error
    if not nodes:
        raise NotAHardwareGraph(
            f"estimate: {path} has no FINN hardware layers; convert the model first "
            f"(`firesmoke compile {path.name} --out DIR` writes DIR/design_accelerator.onnx), "
            "or pass a FINN build's intermediate_models/step_*.onnx from folding on"
        )
    coefficients = coefficients or block_models.load_coefficients()
    blocks, uncosted = [], []
    for node, _ in nodes:
        block = Block(node.name, node.op_type, _attributes(node))
        try:
            block.kind  # noqa: B018 - raises for op types no rule covers
        except UnknownBlock:
            uncosted.append((node.name, node.op_type))
            continue
        blocks.append(block)
    added = []
    if not uncosted and _needs_fifos(path, blocks):
        blocks = _stitched_blocks(path, part, fifo_method)
        added.append(f"FIFOs ({fifo_method} sizing) and width converters, as the builder adds")
    if _iodma_count(blocks) == 0:
        for name in ("input_IODMA", "output_IODMA"):
            blocks.append(Block(name, "IODMA", {}))
        added.append("input and output IODMA (the graph has none; the builder adds them)")
    added.append("Zynq shell: AXI interconnect, PS reset")
    table, totals = block_fit.estimate_design(blocks, part, coefficients)
    return DesignEstimate(
        model=str(path),
        part=part,
        blocks=table.to_dict(orient="records"),
        totals=totals,
        uncosted=uncosted,
        added=added,
        holdout_error_pct=holdout_errors(coefficients),
        holdout_error_abs=holdout_errors(coefficients, "max_abs_error"),
    )


def holdout_errors(coefficients, key="max_abs_error_pct"):
    """Per resource: the largest absolute leave-one-design-out error of the fitted model, in %
    (or in units with key="max_abs_error": a DSP count of 0 against 1 is 100 %)."""
    summary = coefficients.get("holdout", {})
    return {res: summary[res][key] for res in RESOURCES if res in summary}


def holdout_text(name, percent, units):
    """'±12 %' (or '±1 DSP' where a few DSPs make a large percentage)."""
    if name == "DSP" and units is not None and units <= 5:
        return f"±{units:.0f} DSP"
    return f"±{percent:.0f} %" if percent is not None else "hold-out error unknown"
