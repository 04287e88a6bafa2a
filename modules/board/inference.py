"""Images and camera frames through an Accelerator on the board: decisions and speed (numpy)."""

import time

import numpy as np

from .preprocess import camera_frame_input, image_file_input, input_size


def classify_files(accelerator, image_paths, batch_size=16):
    """(decisions bool (N, classes), seconds) for image files; the time covers reading,
    preprocessing, packing, the accelerator and unpacking."""
    size = input_size(accelerator.io_spec)
    decisions = []
    start = time.perf_counter()
    for first in range(0, len(image_paths), batch_size):
        batch = np.stack(
            [image_file_input(p, size) for p in image_paths[first : first + batch_size]]
        )
        decisions.append(accelerator.decisions(accelerator.run(batch)))
    seconds = time.perf_counter() - start
    classes = len(accelerator.classes)
    return (np.concatenate(decisions) if decisions else np.zeros((0, classes), bool)), seconds


def describe(decision, classes):
    """'smoke fire' / 'smoke' / '-' for one decision row."""
    present = [name for name, on in zip(classes, decision, strict=True) if on]
    return " ".join(present) or "-"


def camera_loop(accelerator, camera, frames=100, show=print):
    """Decisions for up to `frames` frames of an OpenCV VideoCapture; returns frames/s."""
    size = input_size(accelerator.io_spec)
    count, start = 0, time.perf_counter()
    while count < frames:
        ok, frame = camera.read()
        if not ok:
            break
        outputs = accelerator.run(camera_frame_input(frame, size)[None])
        show(describe(accelerator.decisions(outputs)[0], accelerator.classes))
        count += 1
    return count / max(time.perf_counter() - start, 1e-9)
