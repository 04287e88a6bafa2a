"""`firesmoke check-data`: account for every file of a dataset folder without training."""

from pathlib import Path

import config
from modules.commands._shared import print_json

NAME = "check-data"
HELP = "per split: images kept per category, and every skipped file with its reason"
DATASETS = ("demo", "dfire", "fasdd_cv", "fasdd_uav", "fasdd_rs")


def add_arguments(parser):
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--dir", required=True, type=Path, help="the dataset folder")
    parser.add_argument("--json", action="store_true", help="print the accounting as JSON")


def as_dict(result):
    if isinstance(result, Exception):
        return {"error": str(result)}
    skipped = result.skip_list()
    return {
        "kept": {
            row.item: int(row.images) for row in result.table().itertuples() if row.status == "kept"
        },
        "skipped": skipped[["reason", "file"]].to_dict("records"),
        "notes": dict(result.notes),
    }


def print_text(results):
    for split, result in results.items():
        print(f"== {split}")
        if isinstance(result, Exception):
            print(f"error: {result}")
            continue
        print(result)
        skipped = result.skip_list()
        if len(skipped):
            print(skipped[["reason", "file"]].to_string(index=False))


def main(args):
    from modules.data.datasets import check_folder  # torch and PIL: only when this command runs

    classes, ids = config.CLASSES, (config.DFIRE_CLASS_IDS, config.FASDD_CLASS_IDS)
    try:
        results = check_folder(args.dataset, args.dir, classes, *ids)
    except (FileNotFoundError, ValueError) as error:
        print(f"check-data: {error}")
        return 2
    if args.json:
        print_json(
            {"dataset": args.dataset, "dir": str(args.dir)}
            | {"splits": {split: as_dict(result) for split, result in results.items()}}
        )
    else:
        print_text(results)
    return 1 if any(isinstance(r, Exception) for r in results.values()) else 0
