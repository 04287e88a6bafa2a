"""Fit the block models (`block_models`) on published builds and validate them design by
design: leave one design out, fit on the others, estimate it.

Only LUT and FF coefficients are fitted (non-negative least squares per block kind on the
published per-block figures); DSP and BRAM are counted by the rules, so their hold-out
error tests the rules. The shell (AXI interconnect, reset, PS; the IODMAs are blocks) is
the mean of the training designs' top minus their blocks. A build whose routed layer blocks
hold a small fraction of FINN's own HLS estimate of them lost its layers' logic in synthesis
(`published_builds.OPTIMIZED_AWAY_RATIO`): its layer blocks are not fitted.
"""

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from modules.hardware import block_models
from modules.hardware.block_models import RESOURCES, MissingAttribute

FITTED = ("LUT", "FF")


def _rows(builds):
    """(build name, kind, features, published) of every block with its attributes."""
    rows, skipped = [], []
    for build in builds:
        for item in build.blocks:
            try:
                features, *_ = block_models.rule_for(item.block.kind)(item.block, build.part)
            except (MissingAttribute, KeyError, ValueError) as error:
                skipped.append((build.name, item.block.name, str(error)))
                continue
            rows.append((build.name, item.block.kind, features, item.published))
    return rows, skipped


def _fit_kind(rows, resource):
    """Coefficients of the fitted features; LUTRAM LUTs are counted, not fitted (a LUT used
    as RAM is one LUT), so LUT targets are the published LUTs less the counted LUTRAM."""
    names = sorted(
        {n for _, _, features, _ in rows for n in features if n not in block_models.COUNTED}
    )
    matrix = np.array([[features.get(n, 0.0) for n in names] for _, _, features, _ in rows])
    counted = np.array([block_models.counted_luts(features) for _, _, features, _ in rows])
    target = np.array([float(published[resource]) for *_, published in rows])
    if resource == "LUT":
        target = np.maximum(target - counted, 0.0)
    used = [i for i, name in enumerate(names) if np.any(matrix[:, i])]
    solution, _ = nnls(matrix[:, used], target)
    return {names[i]: float(c) for i, c in zip(used, solution, strict=True)}


def fit(builds):
    """Coefficients per kind fitted on `builds` (block_models.cost's `coefficients`). Layer
    blocks are fitted on every part (LUT6 logic alike); the IODMAs and the shell, whose AXI
    widths differ by family, on 7-series builds only."""
    rows, skipped = _rows(builds)
    seven_series = {b.name for b in builds if b.seven_series}
    rows = [row for row in rows if row[1] != "IODMA" or row[0] in seven_series]
    blocks = {}
    for kind in sorted({kind for _, kind, _, _ in rows}):
        of_kind = [row for row in rows if row[1] == kind]
        blocks[kind] = {res: _fit_kind(of_kind, res) for res in FITTED}
        blocks[kind]["designs"] = sorted({row[0] for row in of_kind})
        blocks[kind]["blocks"] = len(of_kind)
        if kind == "IODMA":
            blocks[kind]["BRAM36"] = float(np.mean([row[3]["BRAM36"] for row in of_kind]))
    shells = [b for b in builds if b.shell is not None and b.seven_series]
    shell = {res: float(np.mean([b.shell[res] for b in shells])) for res in RESOURCES}
    return {
        "blocks": blocks,
        "shell": shell,
        "shell_designs": sorted(b.name for b in shells),
        "skipped_blocks": [list(s) for s in skipped],
    }


def design_blocks(build):
    """The blocks a whole-design estimate of `build` costs (None if some lack attributes)."""
    if build.blocks and not build.partial:
        return [item.block for item in build.blocks]
    return build.design_blocks or None


def estimate_design(blocks, part, coefficients, shell=True):
    """Per-block table (name, op_type, kind, LUT, FF, BRAM36, DSP, rule) and totals."""
    rows = []
    for block in blocks:
        cost = block_models.cost(block, part, coefficients)
        rows.append(
            {
                "block": block.name,
                "op_type": block.op_type,
                "kind": block.kind,
                **{res: getattr(cost, res) for res in RESOURCES},
                "rule": cost.rule,
            }
        )
    if shell:
        names = ", ".join(coefficients["shell_designs"])
        rows.append(
            {
                "block": "shell",
                "op_type": "AXI interconnect, PS, reset",
                "kind": "shell",
                **coefficients["shell"],
                "rule": f"mean of published shells ({names})",
            }
        )
    table = pd.DataFrame(rows)
    return table, {res: float(table[res].sum()) for res in RESOURCES}


def leave_one_out(builds):
    """For each 7-series build: fit on the other builds, estimate its published blocks and,
    where every block has its attributes, the whole design. Returns (design x resource
    table, per-block table of held-out blocks)."""
    design_rows, block_rows = [], []
    for held in builds:
        if not held.seven_series:
            continue
        coefficients = fit([b for b in builds if b.name != held.name])
        blocks = design_blocks(held)
        if blocks is not None:
            shell = not held.out_of_context
            _, totals = estimate_design(blocks, held.part, coefficients, shell)
            for res in RESOURCES:
                published = held.top.get(res)
                if held.out_of_context and res == "DSP":
                    published = None  # OOC DSP counts on 7-series are unreliable (README)
                design_rows.append(_error_row(held.name, res, totals[res], published))
        block_rows.extend(_held_out_blocks(held, coefficients))
    return pd.DataFrame(design_rows), pd.DataFrame(block_rows)


def _held_out_blocks(held, coefficients):
    rows = []
    for item in held.blocks:
        try:
            cost = block_models.cost(item.block, held.part, coefficients)
        except (MissingAttribute, KeyError, ValueError):
            continue
        for res in RESOURCES:
            rows.append(
                {
                    "design": held.name,
                    "kind": item.block.kind,
                    "resource": res,
                    "estimate": getattr(cost, res),
                    "published": item.published[res],
                }
            )
    return rows


def _error_row(design, resource, estimate, published):
    error = None
    if published:
        error = 100.0 * (estimate - published) / published
    return {
        "design": design,
        "resource": resource,
        "estimate": estimate,
        "published": published,
        "error %": error,
    }


def errors_per_kind(block_table):
    """Held-out blocks per kind and resource: summed estimate and published figure, the
    error of the sum %, and the mean absolute error % of single blocks (where published > 0)."""
    table = block_table.copy()
    positive = table["published"] > 0
    table["abs error %"] = np.nan
    table.loc[positive, "abs error %"] = (
        100 * (table["estimate"] - table["published"]).abs() / table["published"]
    )[positive]
    grouped = table.groupby(["kind", "resource"]).agg(
        blocks=("published", "size"),
        estimate=("estimate", "sum"),
        published=("published", "sum"),
        mean_abs_error_pct=("abs error %", "mean"),
    )
    grouped["error of sum %"] = (
        100 * (grouped["estimate"] - grouped["published"]) / grouped["published"]
    )
    return grouped.replace([np.inf, -np.inf], np.nan)


def within_goal(design_table):
    """Per row: the issue's goal (LUT, FF, BRAM36 within 15 %; DSP within 15 % or 5)."""
    error = design_table["error %"].abs()
    absolute = (design_table["estimate"] - design_table["published"]).abs()
    dsp = design_table["resource"] == "DSP"
    within = (error <= 15) | (dsp & (absolute <= 5))
    return within.where(design_table["published"].notna())


def holdout_summary(design_table):
    """Per resource: the largest and the median absolute hold-out error %, and the designs."""
    summary = {}
    for res in RESOURCES:
        rows = design_table[(design_table["resource"] == res) & design_table["published"].notna()]
        if len(rows):
            errors = rows["error %"].fillna(0.0).abs()  # 0 estimated of 0 published
            summary[res] = {
                "max_abs_error_pct": float(errors.max()),
                "median_abs_error_pct": float(errors.median()),
                "max_abs_error": float((rows["estimate"] - rows["published"]).abs().max()),
                "designs": int(len(rows)),
            }
    return summary
