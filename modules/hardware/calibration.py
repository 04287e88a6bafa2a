"""Calibration of the whole-design resource model against published post-synthesis reports.

`calibration_data/published_reports.json` holds per-block-type LUT/FF/BRAM36/DSP of FINN
designs synthesized on 7-series parts, each with its source. `calibration_data/calibration.json`
holds what was fitted on one of them (`calibrated_on`): per block type a LUT factor
(published / modeled, applied to the structural and FINN LUT figures), FF per LUT, and the
fixed blocks no layer model covers (DMA engines, AXI infrastructure). `compare` shows the
model against any report, per block type and in total, with the error; the report not fitted
is the hold-out.
"""

import json
from pathlib import Path

import pandas as pd

DATA = Path(__file__).parent / "calibration_data"
REPORTS_FILE = DATA / "published_reports.json"
FACTORS_FILE = DATA / "calibration.json"
RESOURCES = ("LUT", "FF", "BRAM36", "DSP")
FIXED_TYPES = ("DMA", "AXI")
FITTED_WITH = (
    "the published design and folding through this project's FINN flow (finn-plus 1.6.1; "
    "benchmarks/calibrate_resources.py); FIFO depths from fifo_sizing, not the published "
    "ones; DSPs not fitted "
    "(mvu.sv lane packing); BRAM of FINN layers not fitted (FINN's estimate)"
)


def load_reports(path=REPORTS_FILE):
    return json.loads(Path(path).read_text())["reports"]


def load_factors(path=FACTORS_FILE):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: run `python benchmarks/calibrate_resources.py` to fit it"
        )
    return json.loads(path.read_text())


def apply_factors(table, factors):
    """Scale the LUT of each block whose op_type the factor was fitted on (an HLS MVAU is
    not scaled by a factor fitted on RTL MVAUs), then derive FF from LUT per block type."""
    table = table.copy()
    # a block type the fitted report does not have takes that design's overall FF per LUT
    unfitted = ~table["type"].isin([*factors["per_type"], *FIXED_TYPES])
    table.loc[unfitted, "FF"] = table.loc[unfitted, "LUT"] * factors.get("FF_per_LUT", 0.0)
    for kind, fitted in factors["per_type"].items():
        rows = table["type"] == kind
        scaled = rows & table["op_type"].isin(fitted["op_types"])
        table.loc[scaled, "LUT"] *= fitted["LUT"]
        table.loc[rows, "FF"] = table.loc[rows, "LUT"] * fitted["FF_per_LUT"]
    for kind in FIXED_TYPES:
        for res in RESOURCES:
            table.loc[table["type"] == kind, res] = float(factors["fixed"][kind][res])
    # threshold memories FINN puts in LUTRAM that Vivado infers as BRAM
    per_bit = factors.get("threshold_BRAM36_per_bit", 0.0)
    table["BRAM36"] += table["memory_bits"] * per_bit
    return table


def fit_factors(modeled, report, name, op_types):
    """Factors from one report. `modeled`: per block type, unscaled LUT (a DataFrame indexed
    by type, as `resources.type_totals` of a table built with `identity_factors()`);
    `op_types`: per block type, the op_types of the fitted design's blocks."""
    blocks = report["blocks"]
    per_type = {}
    for kind, published in blocks.items():
        if kind in FIXED_TYPES or kind not in modeled.index:
            continue
        lut = float(modeled.loc[kind, "LUT"])
        per_type[kind] = {
            "op_types": sorted(op_types[kind]),
            "LUT": published["LUT"] / lut if lut else 1.0,
            "FF_per_LUT": published["FF"] / published["LUT"] if published["LUT"] else 0.0,
        }
    bits = (
        float(modeled.loc["Thresholding", "memory_bits"]) if "Thresholding" in modeled.index else 0
    )
    threshold_bram = blocks.get("Thresholding", {}).get("BRAM36", 0.0)
    layers = {res: sum(b[res] for b in blocks.values()) for res in RESOURCES}
    axi = {res: report["total"][res] - layers[res] for res in RESOURCES}
    dma = {res: blocks["DMA"][res] / 2 for res in RESOURCES}  # one input, one output DMA
    streams = {res: layers[res] - blocks["DMA"][res] for res in ("LUT", "FF")}
    return {
        "calibrated_on": name,
        "fitted_with": FITTED_WITH,
        "per_type": per_type,
        "FF_per_LUT": streams["FF"] / streams["LUT"],
        "threshold_BRAM36_per_bit": threshold_bram / bits if bits else 0.0,
        "fixed": {"DMA": dma, "AXI": axi},
    }


def identity_factors():
    """No scaling (for fitting): structural/FINN LUT as modeled, FF and fixed blocks 0."""
    fixed = {kind: dict.fromkeys(RESOURCES, 0.0) for kind in FIXED_TYPES}
    return {"calibrated_on": "none (unscaled)", "per_type": {}, "fixed": fixed}


def compare(type_table, report):
    """Model vs a published report per block type and in total: model, published, error %."""
    rows = []
    kinds = sorted(set(type_table.index) | set(report["blocks"]) | {"AXI"})
    published_layers = {res: 0.0 for res in RESOURCES}
    for kind in kinds:
        published = report["blocks"].get(kind)
        if published is not None:
            for res in RESOURCES:
                published_layers[res] += published[res]
        for res in RESOURCES:
            model = float(type_table[res].get(kind, 0.0))
            value = None if published is None else float(published[res])
            if kind == "AXI":
                value = None  # filled below from the report's total
            rows.append({"type": kind, "resource": res, "model": model, "published": value})
    table = pd.DataFrame(rows)
    for res in RESOURCES:
        axi = report["total"][res] - published_layers[res]
        table.loc[(table["type"] == "AXI") & (table["resource"] == res), "published"] = axi
        rows = table[table["resource"] == res]
        table.loc[len(table)] = {
            "type": "TOTAL",
            "resource": res,
            "model": rows["model"].sum(),
            "published": float(report["total"][res]),
        }
    table["error %"] = 100 * (table["model"] - table["published"]) / table["published"]
    wide = table.pivot(index="type", columns="resource", values=["model", "published", "error %"])
    wide.columns = [f"{res} {value}" for value, res in wide.columns]
    order = [f"{res} {value}" for res in RESOURCES for value in ("model", "published", "error %")]
    return wide[order]
