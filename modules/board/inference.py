"""Images and camera frames through an Accelerator on the board: decisions, boxes and speed
(numpy)."""

import time

import numpy as np

from .preprocess import camera_frame_input, file_input


def classify_files(accelerator, image_paths, batch_size=16):
    """(decisions bool (N, classes), seconds) for image files; the time covers reading,
    preprocessing, packing, the accelerator and unpacking (a detector decides per class
    whether it found a box)."""
    decisions = []
    start = time.perf_counter()
    for first in range(0, len(image_paths), batch_size):
        batch = np.stack([file_input(p, accelerator.io_spec)[0]
                          for p in image_paths[first : first + batch_size]])  # fmt: skip
        decisions.append(accelerator.decisions(accelerator.run(batch)))
    seconds = time.perf_counter() - start
    classes = len(accelerator.classes)
    return (np.concatenate(decisions) if decisions else np.zeros((0, classes), bool)), seconds


def process_files(accelerator, image_paths):
    """Image files one frame at a time, as a camera would: per file the host's result (boxes
    (D, 6) in the file's own pixels for a detector, else a decision row) and the per-frame
    host times in seconds: read + preprocess, accelerator (packing, transfer, unpacking) and
    post-processing (decode + NMS, or decisions). Returns (results, times dict of lists)."""
    results, times = [], {"preprocess": [], "accelerator": [], "postprocess": []}
    for path in image_paths:
        start = time.perf_counter()
        x, box = file_input(path, accelerator.io_spec)
        ready = time.perf_counter()
        outputs = accelerator.run(x[None])
        done = time.perf_counter()
        results.append(accelerator.postprocess(outputs, [box])[0])
        times["preprocess"].append(ready - start)
        times["accelerator"].append(done - ready)
        times["postprocess"].append(time.perf_counter() - done)
    return results, times


def describe(decision, classes):
    """'smoke fire' / 'smoke' / '-' for one decision row."""
    present = [name for name, on in zip(classes, decision, strict=True) if on]
    return " ".join(present) or "-"


def describe_boxes(detections, classes):
    """'fire 0.91 (12,30,80,96); smoke 0.40 (...)' or '-' for one image's detections."""
    parts = [f"{classes[int(c)]} {score:.2f} ({x0:.0f},{y0:.0f},{x1:.0f},{y1:.0f})"
             for x0, y0, x1, y1, score, c in detections]  # fmt: skip
    return "; ".join(parts) or "-"


def camera_loop(accelerator, camera, frames=100, show=print):
    """Decisions for up to `frames` frames of an OpenCV VideoCapture; returns frames/s."""
    count, start = 0, time.perf_counter()
    while count < frames:
        ok, frame = camera.read()
        if not ok:
            break
        x, _ = camera_frame_input(frame, accelerator.io_spec)
        outputs = accelerator.run(x[None])
        show(describe(accelerator.decisions(outputs)[0], accelerator.classes))
        count += 1
    return count / max(time.perf_counter() - start, 1e-9)
