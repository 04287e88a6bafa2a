"""Fit the block models on published FINN builds and validate them design by design.

    python benchmarks/calibrate_resources.py --reports ../shared/finn_reports [--write]
        [--seed001-onnx MobileNetV2_Nano_Bipolar.onnx --seed001-folding final_hw_config.json]

Prints the leave-one-design-out table (each 7-series design with a whole-design estimate:
fit on the other builds, estimate it; estimate, published, error per resource, and whether
it meets the goal: LUT/FF/BRAM36 within 15 %, DSP within 15 % or 5), the held-out error per
block type (every block with attributes, estimated by the model fitted without its design),
and the coefficients fitted on all builds. --write stores coefficients, hold-out summary and
table in modules/hardware/calibration_data/block_models.json (what compile/estimate use and
show beside their totals).

With --seed001-*: seed 001's published design (finn/onnx_models/ and finn/folding_config/ of
github.com/chuniki/wildfire-on-PYNQ-Z1) through this project's flow and the block models,
against its published totals (several minutes).
"""

import argparse
import json
import tempfile
from pathlib import Path

import pandas as pd

from modules.hardware import block_fit, block_models, published_builds

SEED001_REPORT = "chuniki_wildfire_MobileNetV2_PYNQZ1"


def fit_and_validate(builds):
    coefficients = block_fit.fit(builds)
    designs, blocks = block_fit.leave_one_out(builds)
    designs["within goal"] = block_fit.within_goal(designs)
    coefficients["holdout"] = block_fit.holdout_summary(designs)
    coefficients["holdout_table"] = designs.to_dict(orient="records")
    return coefficients, designs, block_fit.errors_per_kind(blocks)


def seed001(args, builds, coefficients):
    """Seed 001's design through the flow against its published totals."""
    from modules.dataflow import flow as finn_flow
    from modules.hardware import resources
    from modules.stages.finn_transform import quiet_finn_logs

    quiet_finn_logs()
    report = next(b for b in builds if b.name == SEED001_REPORT)
    work = tempfile.mkdtemp(prefix="seed001_")
    flow = finn_flow.run_flow(
        args.seed001_onnx,
        work,
        report.part,
        folding_config=args.seed001_folding,
        mvau_wwidth_max=216,
    )
    table = resources.block_table(flow.folded, report.part, coefficients=coefficients)
    totals = resources.totals(table)
    # seed 001 published two builds of this network and does not say which the folding file
    # belongs to: "Original" and "Only Threshold (pruned)" (per-type LUTs and totals each)
    published = json.loads(Path(args.reports, f"{SEED001_REPORT}.json").read_text())
    builds_by_name = published["per_layer_type"]
    rows = [
        block_fit._error_row(
            f"seed 001 vs {name}", res, totals[res], published_builds._resources(build["top"])[res]
        )
        for name, build in builds_by_name.items()
        for res in block_models.RESOURCES
    ]
    types = resources.type_totals(table)[["LUT", "BRAM36", "DSP"]]
    for name, build in builds_by_name.items():
        types[f"published LUT ({name})"] = [build["LUT"].get(t) for t in types.index]
    return pd.DataFrame(rows), types


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", required=True, help="folder of published report JSONs")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--seed001-onnx")
    parser.add_argument("--seed001-folding")
    args = parser.parse_args()
    builds = published_builds.load_builds(args.reports)
    coefficients, designs, kinds = fit_and_validate(builds)
    pd.set_option("display.width", 200)
    print("Leave one design out (fit on the other builds, estimate the held-out design):")
    print(designs.round(1).to_string(index=False))
    print("\nHeld-out error per block type (blocks pooled over held-out designs):")
    print(kinds.round(1).to_string())
    print("\nLargest / median absolute hold-out error per resource:")
    print(json.dumps(coefficients["holdout"], indent=1))
    skipped = coefficients["skipped_blocks"]
    print(f"\n{len(skipped)} published blocks without the attributes their rule needs (not fitted)")
    for build in builds:
        if build.excluded:
            print(f"{build.name}: layer blocks not fitted ({build.excluded})")
    if args.seed001_onnx:
        seed, types = seed001(args, builds, coefficients)
        print("\nSeed 001's design against its published totals:")
        print(seed.round(1).to_string(index=False))
        print(types.round(1).to_string())
    if args.write:
        path = block_models.COEFFICIENTS_FILE
        path.write_text(json.dumps(coefficients, indent=1, default=float) + "\n")
        print(f"\nwrote {Path(path)}")


if __name__ == "__main__":
    main()
