"""`python run_board.py`: image folders through the FPGA, or the self-check without a board.

python run_board.py --images DIR   decisions per image, images/s (and metrics when DIR has
                                   YOLO labels: DIR/images + DIR/labels, or a.txt by a.jpg);
                                   a detector prints its boxes and the per-frame host times
python run_board.py --self-check   replays the recorded emulator outputs through this
                                   runtime; prints `self-check: N/N decisions equal`
"""

import argparse
import sys

from .accelerator import open_board
from .dataset import (
    NO_LABEL_FILE,
    class_metrics,
    dfire_convention,
    image_files,
    label_file,
    non_image_files,
    read_targets,
)
from .inference import classify_files, describe, describe_boxes, process_files
from .self_check import run_self_check, summary_line


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="run_board.py", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--images", metavar="DIR", help="folder of images to run on the FPGA")
    mode.add_argument("--self-check", action="store_true", help="replay the recording, no board")
    parser.add_argument("--batch-size", type=int, default=16)
    return parser.parse_args(argv)


def self_check(layout):
    results = run_self_check(layout)
    for result in results:
        if not result.ok:
            print(f"  {result.name}: {'; '.join(result.problems)}")
    print(summary_line(results))
    return 0 if results and all(r.ok for r in results) else 1


def report_left_out(left_out):
    """List every file left out with its reason (stderr)."""
    for path, reason in left_out.items():
        print(f"left out {path.name}: {reason}", file=sys.stderr)


def detect_folder(accelerator, paths, left_out):
    unreadable = {}
    detections, times = process_files(accelerator, paths, unreadable)
    left_out |= unreadable
    kept = [path for path in paths if path not in unreadable]
    for path, boxes in zip(kept, detections, strict=True):
        print(f"{path.name}: {describe_boxes(boxes, accelerator.classes)}")
    report_left_out(left_out)
    if not kept:
        print(f"0 images processed, {len(left_out)} files left out")
        return 1
    per_frame = "  ".join(f"{step} {1000 * sum(t) / len(t):.1f} ms" for step, t in times.items())
    print(f"{len(kept)} images processed, {len(left_out)} files left out; per frame: {per_frame}")
    return 0


def report_labels(paths, decisions, class_ids, classes):
    """Metrics over the images whose labels parse; every label skip named with its reason."""
    targets, labelled, skipped = read_targets(paths, class_ids, classes)
    label_problems = {k: v for k, v in skipped.items() if k != NO_LABEL_FILE}
    for reason, files in label_problems.items():
        for path in files:
            print(f"label of {path.name} not used: {reason}", file=sys.stderr)
    unlabelled = [
        p for p in paths if not label_file(p).is_file() and dfire_convention(label_file(p))
    ]
    if unlabelled:
        print(f"{len(unlabelled)} images without a label file: neither class (D-Fire convention)")
    if len(labelled):
        metrics = class_metrics(targets, decisions[labelled], classes)
        scores = "  ".join(f"{c} F1 {metrics[f'{c}_f1']:.3f}" for c in classes)
        print(f"{len(labelled)} labelled images: {scores}  mean F1 {metrics['mean_f1']:.3f}")
        if skipped:
            print(f"not in the metrics: { {k: len(v) for k, v in skipped.items()} }")
    elif label_problems:
        bad = sum(len(files) for files in label_problems.values())
        print(f"no metrics: every label file ({bad}) was skipped: {sorted(label_problems)}")
        return 1
    return 0


def run_folder(layout, folder, batch_size):
    accelerator = open_board(layout)
    paths, left_out = image_files(folder), non_image_files(folder)
    if not paths:
        report_left_out(left_out)
        print(f"no images in {folder}", file=sys.stderr)
        return 1
    if "detect" in accelerator.io_spec:
        return detect_folder(accelerator, paths, left_out)
    unreadable = {}
    decisions, seconds = classify_files(accelerator, paths, batch_size, unreadable)
    left_out |= unreadable
    kept = [path for path in paths if path not in unreadable]
    for path, decision in zip(kept, decisions, strict=True):
        print(f"{path.name}: {describe(decision, accelerator.classes)}")
    report_left_out(left_out)
    rate = len(kept) / max(seconds, 1e-9)
    print(f"{len(kept)} images processed in {seconds:.2f} s ({rate:.1f} images/s), "
          f"{len(left_out)} files left out")  # fmt: skip
    if not kept:
        return 1
    class_ids = accelerator.io_spec.get("label_class_ids", {})
    return report_labels(kept, decisions, class_ids, accelerator.classes)


def main(layout, argv=None):
    args = parse_args(argv)
    try:
        if args.self_check:
            return self_check(layout)
        return run_folder(layout, args.images, args.batch_size)
    except (OSError, RuntimeError, ValueError, KeyError) as error:  # a bad package or folder
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
