"""Host-side detector post-processing speed (modules/board/detect.py, numpy only): per-frame
dequantize + decode + NMS + letterbox undo at the LPYOLO shape (416 px, 13x13, 3 anchors,
2 classes), at the display thresholds (what the board runs) and at the mAP thresholds.

    python benchmarks/bench_detect_host.py
"""

import time

import numpy as np

from modules.board.detect import DetectSettings, Letterbox, dequantize, detect

ANCHORS = ((10.0, 14.0), (23.0, 27.0), (37.0, 58.0))


def frames(count, rng):
    """INT8 heads with a few confident cells, like a trained detector's output."""
    raw = rng.integers(-128, -60, size=(count, 21, 13, 13)).astype(np.int8)
    for frame in raw:
        for _ in range(3):
            a, y, x = rng.integers(3), rng.integers(13), rng.integers(13)
            frame[a * 7 : a * 7 + 7, y, x] = rng.integers(0, 127, 7)
    return raw


def per_frame_ms(raw, settings, letterbox, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for frame in raw:
            detect(dequantize(frame[None], 0.0625), settings, [letterbox])
        best = min(best, (time.perf_counter() - started) / len(raw))
    return 1000 * best


def main():
    raw = frames(200, np.random.default_rng(0))
    letterbox = Letterbox.fit(480, 640, 416)
    for name, conf, iou in (("display", 0.25, 0.4), ("mAP eval", 0.001, 0.6)):
        settings = DetectSettings(ANCHORS, 416, conf, iou)
        ms = per_frame_ms(raw, settings, letterbox)
        print(f"{name:9s} conf {conf:<5} NMS IoU {iou}: {ms:.3f} ms/frame")


if __name__ == "__main__":
    main()
