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
from .dataset import class_metrics, image_files, read_targets
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
    return 0 if all(r.ok for r in results) else 1


def detect_folder(accelerator, paths):
    detections, times = process_files(accelerator, paths)
    for path, boxes in zip(paths, detections, strict=True):
        print(f"{path.name}: {describe_boxes(boxes, accelerator.classes)}")
    per_frame = "  ".join(f"{step} {1000 * sum(t) / len(t):.1f} ms" for step, t in times.items())
    print(f"{len(paths)} images, per frame: {per_frame}")
    return 0


def run_folder(layout, folder, batch_size):
    accelerator = open_board(layout)
    paths = image_files(folder)
    if not paths:
        print(f"no images in {folder}", file=sys.stderr)
        return 1
    if "detect" in accelerator.io_spec:
        return detect_folder(accelerator, paths)
    decisions, seconds = classify_files(accelerator, paths, batch_size)
    for path, decision in zip(paths, decisions, strict=True):
        print(f"{path.name}: {describe(decision, accelerator.classes)}")
    print(f"{len(paths)} images in {seconds:.2f} s: {len(paths) / seconds:.1f} images/s")
    class_ids = accelerator.io_spec.get("label_class_ids", {})
    targets, labelled, skipped = read_targets(paths, class_ids, accelerator.classes)
    if len(labelled):
        metrics = class_metrics(targets, decisions[labelled], accelerator.classes)
        scores = "  ".join(f"{c} F1 {metrics[f'{c}_f1']:.3f}" for c in accelerator.classes)
        print(f"{len(labelled)} labelled images: {scores}  mean F1 {metrics['mean_f1']:.3f}")
    if skipped and len(labelled):
        print(f"not in the metrics: {skipped}")
    return 0


def main(layout, argv=None):
    args = parse_args(argv)
    try:
        if args.self_check:
            return self_check(layout)
        return run_folder(layout, args.images, args.batch_size)
    except (OSError, RuntimeError, ValueError, KeyError) as error:  # a bad package or folder
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
