"""What decoding every image at index time costs (datasets.image_problem), measured in one run.

    python benchmarks/bench_data_check.py [--images 200] [--size 640x480]

Compares, on the same JPEGs: PIL's header check `verify()` (the old check, which keeps a
truncated JPEG), a full decode, and the 1/8-scale draft decode the loader uses (it still reads
every byte, so truncation is found). Prints ms per image, the ratios, and what indexing the
21,527 images of D-Fire would take.
"""

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from modules.data.datasets import TRUNCATED_IMAGE, image_problem

DFIRE_IMAGES = 21_527


def write_images(folder, count, width, height):
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        path = folder / f"{index:04d}.jpg"
        cv2.imwrite(str(path), cv2.GaussianBlur(noise, (9, 9), 3))
        paths.append(path)
    return paths


def header_only(path):
    with Image.open(path) as image:
        image.verify()


def full_decode(path):
    with Image.open(path) as image:
        image.load()


def ms_per_image(check, paths):
    started = time.perf_counter()
    for path in paths:
        check(path)
    return (time.perf_counter() - started) * 1000 / len(paths)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument(
        "--size", default="640x480", help="WIDTHxHEIGHT (D-Fire is mostly 640 wide)"
    )
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        paths = write_images(Path(folder), args.images, width, height)
        truncated = Path(folder) / "truncated.jpg"
        truncated.write_bytes(paths[0].read_bytes()[: paths[0].stat().st_size * 2 // 3])
        assert image_problem(truncated) == TRUNCATED_IMAGE
        header_only(truncated)  # the old check passes it
        timings = {
            "verify (header, old)": ms_per_image(header_only, paths),
            "full decode": ms_per_image(full_decode, paths),
            "draft decode (used)": ms_per_image(image_problem, paths),
        }
    base = timings["verify (header, old)"]
    print(f"{args.images} JPEGs of {width}x{height}")
    for name, ms in timings.items():
        minutes = ms * DFIRE_IMAGES / 60_000
        print(
            f"  {name:22s} {ms:7.3f} ms/image  x{ms / base:6.1f}  D-Fire index: {minutes:5.1f} min"
        )


if __name__ == "__main__":
    main()
