"""Vivado's reports after a FINN build: `report_utilization` and `report_timing_summary` text
-> tables, and post-synthesis utilisation against the whole-design estimate of stage 03."""

import re
from pathlib import Path

import pandas as pd

UTILIZATION_ROWS = {  # report_utilization row -> short name
    "Slice LUTs": "LUT",
    "Slice Registers": "FF",
    "Block RAM Tile": "BRAM_36K",
    "DSPs": "DSP",
}


# ------------------------------------------------------------------ Vivado reports


def _table_cells(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def parse_utilization_report(path):
    """`report_utilization` text -> {LUT, FF, BRAM_36K, DSP: {used, available, util_pct}}.

    Reads the site-type tables by their header row, so the optional "Fixed"/"Prohibited"
    columns of different Vivado versions do not matter.
    """
    path = Path(path)
    header, result = None, {}
    for line in path.read_text(errors="replace").splitlines():
        if not line.lstrip().startswith("|"):
            continue
        cells = _table_cells(line)
        if "Site Type" in cells and "Used" in cells:
            header = cells
            continue
        name = cells[0].rstrip("*").strip()
        if header is None or name not in UTILIZATION_ROWS or len(cells) != len(header):
            continue
        row = dict(zip(header, cells, strict=True))
        try:
            result[UTILIZATION_ROWS[name]] = {
                "used": float(row["Used"]),
                "available": float(row["Available"]),
                "util_pct": float(row["Util%"].lstrip("<")),
            }
        except (KeyError, ValueError) as error:
            raise ValueError(f"{path}: cannot read the {name!r} row: {line.strip()}") from error
    if not result:
        raise ValueError(
            f"{path}: no 'Slice LUTs'/'Slice Registers'/'Block RAM Tile'/'DSPs' rows found; "
            "is this a Vivado report_utilization text report?"
        )
    return result


def parse_timing_report(path):
    """`report_timing_summary` text -> {wns_ns, tns_ns, whs_ns, ths_ns, failing_endpoints, met}."""
    path = Path(path)
    lines = path.read_text(errors="replace").splitlines()
    for index, line in enumerate(lines):
        if line.strip().startswith("WNS(ns)"):
            header = re.split(r"\s{2,}", line.strip())
            values = lines[index + 2].split() if index + 2 < len(lines) else []
            break
    else:
        raise ValueError(
            f"{path}: no 'Design Timing Summary' table (WNS(ns) ...) found; "
            "is this a Vivado report_timing_summary text report?"
        )
    if len(values) != len(header):
        raise ValueError(f"{path}: the Design Timing Summary row does not match its header")
    row = dict(zip(header, values, strict=True))
    text = "\n".join(lines)
    met = "All user specified timing constraints are met" in text
    if not met and "Timing constraints are not met" not in text:
        raise ValueError(f"{path}: no statement whether the timing constraints are met")
    return {
        "wns_ns": float(row["WNS(ns)"]),
        "tns_ns": float(row["TNS(ns)"]),
        "whs_ns": float(row["WHS(ns)"]),
        "ths_ns": float(row["THS(ns)"]),
        "failing_endpoints": int(row["TNS Failing Endpoints"]) + int(row["THS Failing Endpoints"]),
        "met": met,
    }


def achievable_mhz(timing, period_ns):
    """Highest clock the routed design supports: 1 / (period - WNS)."""
    return 1000.0 / (period_ns - timing["wns_ns"])


def read_build_reports(report_dir):
    """(utilization, timing) from a build's report folder; None for a report that is absent.

    Utilisation comes from the out-of-context run (the accelerator alone, as the estimates);
    timing from the routed full design when there is a bitfile, else from the OOC run.
    """
    report_dir = Path(report_dir)
    utilization_file = report_dir / "ooc_utilization.rpt"
    timing_files = [report_dir / "post_route_timing.rpt", report_dir / "ooc_timing.rpt"]
    timing_file = next((f for f in timing_files if f.is_file()), None)
    utilization = parse_utilization_report(utilization_file) if utilization_file.is_file() else None
    timing = parse_timing_report(timing_file) if timing_file else None
    return utilization, timing


def synthesis_vs_estimates(utilization, estimates_totals, scope="ooc"):
    """Side-by-side table per resource (LUT, FF, BRAM36, DSP): the stage-03 whole-design
    model, FINN's per-layer estimate, the synthesis result, available, synthesis util %, and
    synthesis / model.

    `estimates_totals`: the totals table notebook 03 saves (estimates_totals.csv: columns
    "used", "accelerator only", "FINN per-layer"). scope="ooc" compares an out-of-context run
    of the stitched accelerator (no AXI interconnect / PS around it) with "accelerator only";
    scope="full" compares the whole block design with "used". BRAM in 36K tiles (Vivado's
    "Block RAM Tile").
    """
    column = {"ooc": "accelerator only", "full": "used"}[scope]
    rows = []
    for name, synth_name in (("LUT", "LUT"), ("FF", "FF"), ("BRAM36", "BRAM_36K"), ("DSP", "DSP")):
        synth = utilization.get(synth_name, {})
        model = estimates_totals.loc[name] if name in estimates_totals.index else {}
        rows.append(
            {
                "resource": name,
                "model": model.get(column),
                "FINN per-layer": model.get("FINN per-layer"),
                "synthesis": synth.get("used"),
                "available": synth.get("available"),
                "synthesis_util_pct": synth.get("util_pct"),
            }
        )
    table = pd.DataFrame(rows).set_index("resource").astype(float)
    table["synthesis / model"] = table["synthesis"] / table["model"]
    table["synthesis / FINN per-layer"] = table["synthesis"] / table["FINN per-layer"]
    return table
