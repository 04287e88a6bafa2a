"""Images and camera frames through an Accelerator on the board: decisions, boxes and speed
(numpy)."""

import time

import numpy as np

from .preprocess import camera_frame_input, file_input


def readable_inputs(paths, io_spec, unreadable):
    """(path, uint8 CHW input, Letterbox or None) per image file. With a dict as `unreadable`, a
    file that cannot be read is recorded there (path -> reason) and left out; with None it
    raises OSError naming the file."""
    for path in paths:
        try:
            x, box = file_input(path, io_spec)
        except OSError as error:
            if unreadable is None:
                raise
            unreadable[path] = str(error)
            continue
        yield path, x, box


def classify_files(accelerator, image_paths, batch_size=16, unreadable=None):
    """(decisions bool (N, classes), seconds) for the image files (N: those read, see
    `readable_inputs`); the time covers reading, preprocessing, packing, the accelerator and
    unpacking (a detector decides per class whether it found a box)."""
    decisions, batch = [], []
    start = time.perf_counter()
    for _, x, _ in readable_inputs(image_paths, accelerator.io_spec, unreadable):
        batch.append(x)
        if len(batch) == batch_size:
            decisions.append(accelerator.decisions(accelerator.run(np.stack(batch))))
            batch = []
    if batch:
        decisions.append(accelerator.decisions(accelerator.run(np.stack(batch))))
    seconds = time.perf_counter() - start
    classes = len(accelerator.classes)
    return (np.concatenate(decisions) if decisions else np.zeros((0, classes), bool)), seconds


def process_files(accelerator, image_paths, unreadable=None):
    """Image files one frame at a time, as a camera would: per file read (see
    `readable_inputs`) the host's result (boxes (D, 6) in the file's own pixels for a detector,
    else a decision row) and the per-frame host times in seconds: read + preprocess,
    accelerator (packing, transfer, unpacking) and post-processing (decode + NMS, or
    decisions). Returns (results, times dict of lists)."""
    results, times = [], {"preprocess": [], "accelerator": [], "postprocess": []}
    start = time.perf_counter()
    for _, x, box in readable_inputs(image_paths, accelerator.io_spec, unreadable):
        ready = time.perf_counter()
        outputs = accelerator.run(x[None])
        done = time.perf_counter()
        results.append(accelerator.postprocess(outputs, [box])[0])
        times["preprocess"].append(ready - start)
        times["accelerator"].append(done - ready)
        start = time.perf_counter()
        times["postprocess"].append(start - done)
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
