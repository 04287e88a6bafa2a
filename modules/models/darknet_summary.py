"""What a Darknet cfg builds, without building it: per-layer shapes, weights, MACs, weight bits,
totals, and the layers FINN cannot take (with the replacement used). `firesmoke cfg-summary`."""

import pandas as pd


def layer_weight_bits(plan, bits):
    """Weight bit width of one conv under `bits` (a BitWidths), as the quantized kit picks it."""
    if plan.role == "first":
        return bits.first_weight
    if plan.role == "last":
        return bits.last_weight
    return 1 if plan.binary else bits.weight


def _describe(plan):
    if plan.type == "conv":
        return f"{plan.kernel}x{plan.kernel}/{plan.stride} {plan.activation}"
    if plan.type == "maxpool":
        return f"{plan.kernel}x{plan.kernel}/{plan.stride}"
    if plan.type == "route":
        return "layers " + ",".join(str(s) for s in plan.sources)
    return f"x{plan.stride}"


def summary_table(plans, bits):
    """One row per layer: index, cfg line, type, what, output (C, H, W), weights, MACs, bits."""
    rows = []
    for plan in plans:
        weight_bits = layer_weight_bits(plan, bits) if plan.type == "conv" else 0
        rows.append(
            {
                "layer": plan.index,
                "line": plan.line,
                "type": plan.type,
                "what": _describe(plan),
                "output": "x".join(str(v) for v in plan.out_shape),
                "weights": plan.weights,
                "macs": plan.macs,
                "weight_bits": weight_bits,
                "weight_memory_bits": plan.weights * weight_bits,
            }
        )
    return pd.DataFrame(rows).set_index("layer")


def summary_totals(table):
    """Totals of a `summary_table`; `body` leaves out the first and last conv (the layers
    QNN-MO-PYNQ ran on the ARM for tinier-yolo)."""
    convs = table[table["type"] == "conv"]
    body = convs.iloc[1:-1]
    return {
        "layers": len(table),
        "conv_layers": len(convs),
        "weights": int(convs["weights"].sum()),
        "weight_memory_bits": int(convs["weight_memory_bits"].sum()),
        "body_weight_memory_bits": int(body["weight_memory_bits"].sum()),
        "macs_per_image": int(convs["macs"].sum()),
    }


def finn_notes(plans, replacements):
    """Every layer FINN cannot build as written, and what is built (or that the build stops)."""
    return [
        {
            "layer": plan.index,
            "line": plan.line,
            "type": plan.type,
            "issue": plan.finn_issue,
            "built_as": plan.replacement if replacements and plan.replacement else "error",
            "replacement": plan.replacement or "none available",
        }
        for plan in plans
        if plan.finn_issue
    ]
