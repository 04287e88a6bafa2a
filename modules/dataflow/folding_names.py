"""Match a folding file's entries to the layers of a specialized finn-plus graph.

A folding file (ApplyConfig's format: node name -> attributes) written by an older FINN names
its layers as that FINN did (MatrixVectorActivation_0, Thresholding_Batch_0,
StreamingFCLayer_Batch_1, ...), which finn-plus renames (MVAU_rtl_0, Thresholding_rtl_0, ...).
An entry whose name is not a layer of the graph is matched by block kind and order, as FINN's
renames number layers in graph order: the i-th MVAU entry sets the i-th MVAU layer. FIFO and
width-converter entries have no layer before the builder inserts them (FIFO depths come from
FIFO_SIZING). Older attribute values are translated (mem_mode const/decoupled).
"""

import re

from qonnx.custom_op.registry import getCustomOp

from modules.dataflow.op_kinds import UnknownBlock, block_kind

INSERTED_KINDS = ("FIFO", "DWC", "IODMA")  # inserted by the builder after folding
MEM_MODES = {"const": "internal_embedded", "decoupled": "internal_decoupled"}


class FoldingMismatch(ValueError):
    """A folding file of which no entry applies to the graph."""


def _kind(name):
    try:
        return block_kind(re.sub(r"_\d+$", "", name))
    except UnknownBlock:
        return None


def _index(name):
    found = re.search(r"_(\d+)$", name)
    return int(found.group(1)) if found else 0


def _translated(attrs, node):
    known = getCustomOp(node).get_nodeattr_types()
    # an entry asking for external weights is kept, so fold() names a layer that cannot stream
    external = attrs.get("mem_mode") == "external"
    kept = {k: v for k, v in attrs.items() if k in known or (k == "mem_mode" and external)}
    if kept.get("mem_mode") in MEM_MODES:
        kept["mem_mode"] = MEM_MODES[kept["mem_mode"]]
    return kept


def match_folding(config, model, source="folding file"):
    """(config keyed by the graph's node names, notes). Raises FoldingMismatch when no entry
    applies."""
    layers = [n for n in model.graph.node if _kind(n.op_type) is not None]
    by_name = {n.name: n for n in layers}
    entries = {k: v for k, v in config.items() if k != "Defaults" and isinstance(v, dict)}
    matched, notes, unmatched = {}, [], []
    pending = {}
    for name, attrs in entries.items():
        if name in by_name:
            matched[name] = _translated(attrs, by_name[name])
            continue
        kind = _kind(name)
        if kind in INSERTED_KINDS:
            continue
        if kind is None:
            unmatched.append(name)
            continue
        pending.setdefault(kind, []).append(name)
    for kind, names in pending.items():
        free = [n for n in layers if _kind(n.op_type) == kind and n.name not in matched]
        ordered = sorted(names, key=_index)
        for name, node in zip(ordered, free, strict=False):
            matched[node.name] = _translated(entries[name], node)
            notes.append(f"{name} -> {node.name}")
        if len(ordered) != len(free):
            notes.append(
                f"{kind}: {len(ordered)} entries for {len(free)} layers; "
                f"{abs(len(ordered) - len(free))} left without a match"
            )
    skipped = [n for n, a in entries.items() if _kind(n) in INSERTED_KINDS and n not in by_name]
    if skipped:
        notes.append(f"{len(skipped)} FIFO/converter/DMA entries not applied (FIFO_SIZING sizes)")
    if unmatched:
        notes.append(f"entries of unknown op type, not applied: {', '.join(unmatched)}")
    if not any(matched.values()):
        raise FoldingMismatch(
            f"{source}: none of its {len(entries)} entries applies to this model's HW layers "
            f"({', '.join(n.name for n in layers[:8])}{', ...' if len(layers) > 8 else ''})"
        )
    return {"Defaults": config.get("Defaults", {})} | matched, notes
