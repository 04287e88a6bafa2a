"""Fit the whole-design resource model on a published post-synthesis report and show the
model against every report in modules/hardware/calibration_data/published_reports.json.

    python benchmarks/calibrate_resources.py --onnx MobileNetV2_Nano_Bipolar.onnx \
        --folding final_hw_config.json [--fit seed001_only_threshold] [--write]

Each report's design goes through this project's FINN flow; the factors fitted on --fit are
applied to every design, so the other reports are held out.
- seed 001's reports: --onnx/--folding are the published design (finn/onnx_models/ and
  finn/folding_config/ of github.com/chuniki/wildfire-on-PYNQ-Z1 @ 1e1804d; about 8 minutes
  at 224x224). Both reports are modeled with that design.
- finn_thesis_cnv: rebuilt by benchmarks/finn_thesis_cnv.py with its published folding
  (under a minute).
--write stores the fitted factors in modules/hardware/calibration_data/calibration.json.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd
from qonnx.transformation.insert_topk import InsertTopK

from modules.dataflow import flow as finn_flow
from modules.hardware import calibration, resources
from modules.stages.finn_transform import quiet_finn_logs

sys.path.insert(0, str(Path(__file__).parent))
import finn_thesis_cnv  # noqa: E402


def seed001_design(args, part, work):
    flow = finn_flow.run_flow(
        args.onnx, work, part, folding_config=args.folding, mvau_wwidth_max=216
    )
    return flow.folded


def finn_thesis_design(args, part, work):
    onnx = finn_thesis_cnv.export(Path(work) / "finn_thesis_cnv.onnx")
    # thresholds inside the MVAUs and a top-1 head, as its build had them
    flow = finn_flow.run_flow(
        onnx,
        work,
        part,
        standalone_thresholds=False,
        prepare=lambda model: model.transform(InsertTopK(k=1)),
    )
    folding = finn_thesis_cnv.folding_config(flow.folded)
    return finn_flow.fold(flow.folded, folding_config=folding)[0]


DESIGNS = {  # report -> the design it measured
    "seed001_only_threshold": seed001_design,
    "seed001_original": seed001_design,
    "finn_thesis_cnv": finn_thesis_design,
}


def unscaled_tables(args, reports):
    """Per report: the block table of its design without factors (one compile per design)."""
    quiet_finn_logs()
    compiled, tables = {}, {}
    for name, report in reports.items():
        build = DESIGNS[name]
        if build not in compiled:
            folded = build(args, report["part"], tempfile.mkdtemp(prefix="calibrate_"))
            compiled[build] = resources.block_table(
                folded, report["part"], factors=calibration.identity_factors()
            )
        tables[name] = compiled[build]
    return tables


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--folding", required=True)
    parser.add_argument("--fit", default="seed001_only_threshold", choices=sorted(DESIGNS))
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    reports = calibration.load_reports()
    tables = unscaled_tables(args, reports)
    fitted = tables[args.fit]
    op_types = fitted.groupby("type")["op_type"].unique()
    factors = calibration.fit_factors(
        resources.type_totals(fitted), reports[args.fit], args.fit, op_types
    )
    types = {
        name: resources.type_totals(calibration.apply_factors(table, factors))
        for name, table in tables.items()
    }
    # the model of each published design, kept so reports and tests can show it without
    # this flow
    factors["modeled_types"] = {
        name: types[name][list(calibration.RESOURCES)].to_dict() for name in reports
    }
    if args.write:
        calibration.FACTORS_FILE.write_text(json.dumps(factors, indent=2) + "\n")
    pd.set_option("display.width", 200)
    for name, report in reports.items():
        role = "fitted on" if name == args.fit else "held out"
        print(f"\n{name} ({role}): {report['source']}")
        print(calibration.compare(types[name], report).round(1).to_string())


if __name__ == "__main__":
    main()
