"""Fit the whole-design resource model on a published post-synthesis report and show the
model against every report in modules/hardware/calibration_data/published_reports.json.

    python benchmarks/calibrate_resources.py --onnx MobileNetV2_Nano_Bipolar.onnx \
        --folding final_hw_config.json [--fit seed001_only_threshold] [--write]

--onnx/--folding: the published design (seed 001's project: finn/onnx_models/ and
finn/folding_config/ of github.com/chuniki/wildfire-on-PYNQ-Z1 @ 1e1804d); it goes through
this project's FINN flow with that folding (about 8 minutes at 224x224). --write stores the
fitted factors in modules/hardware/calibration_data/calibration.json; the other reports are
held out.
"""

import argparse
import json
import tempfile

import pandas as pd

from modules.dataflow import flow as finn_flow
from modules.hardware import calibration, resources
from modules.stages.finn_transform import quiet_finn_logs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--folding", required=True)
    parser.add_argument("--fit", default="seed001_only_threshold")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    reports = calibration.load_reports()
    part = reports[args.fit]["part"]
    quiet_finn_logs()
    work = tempfile.mkdtemp(prefix="calibrate_")
    flow = finn_flow.run_flow(
        args.onnx, work, part, folding_config=args.folding, mvau_wwidth_max=216
    )
    unscaled = resources.block_table(flow.folded, part, factors=calibration.identity_factors())
    op_types = unscaled.groupby("type")["op_type"].unique()
    factors = calibration.fit_factors(
        resources.type_totals(unscaled), reports[args.fit], args.fit, op_types
    )
    types = resources.type_totals(calibration.apply_factors(unscaled, factors))
    # the model of the published design, kept so reports can show it without this flow
    factors["modeled_types"] = types[list(calibration.RESOURCES)].to_dict()
    if args.write:
        calibration.FACTORS_FILE.write_text(json.dumps(factors, indent=2) + "\n")
    pd.set_option("display.width", 200)
    for name, report in reports.items():
        role = "fitted on" if name == args.fit else "held out"
        print(f"\n{name} ({role}): {report['source']}")
        print(calibration.compare(types, report).round(1).to_string())


if __name__ == "__main__":
    main()
