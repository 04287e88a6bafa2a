"""What the image cache's integrity checks cost, on a D-Fire-sized cache (time it with
farm-bench; each mode is one process, so farm-bench times exactly that work).

    python benchmarks/bench_image_cache.py make DIR [--images 21527] [--size 224]
    farm-bench -n 3 -- python benchmarks/bench_image_cache.py open DIR \
        --vs 'python benchmarks/bench_image_cache.py open DIR --no-verify'
    python benchmarks/bench_image_cache.py images DIR2 [--images 2000]
    farm-bench -n 3 -- python benchmarks/bench_image_cache.py key DIR2 --key content \
        --vs 'python benchmarks/bench_image_cache.py key DIR2 --key stat'

`make` writes a cache file of random pixels (21,527 x 224 x 224 x 3 = 3.2 GB: D-Fire at the
default IMG_SIZE) with its per-row CRC32s, as a build does; `open` opens it as training does,
verifying every row (or, with --no-verify, only mapping it: the cost without the check).
`images` writes JPEGs of D-Fire's typical size and `key` computes the cache key over them
with CACHE_KEY "stat" or "content". The page cache holds a file read a moment earlier: these
figures are for a warm cache (the usual case for a cache reused run after run); a cold read
adds the disk's read time for the whole file.
"""

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from modules.data import image_cache

DFIRE_IMAGES = 21_527


def make(folder, images, size):
    folder.mkdir(parents=True, exist_ok=True)
    shape = (images, size, size, 3)
    data_file, meta_file = image_cache.cache_files(folder, "bench", size, "0")
    array = np.lib.format.open_memmap(data_file, mode="w+", dtype=np.uint8, shape=shape)
    rng = np.random.default_rng(0)
    for start in range(0, images, 1024):
        stop = min(images, start + 1024)
        array[start:stop] = rng.integers(0, 256, (stop - start, *shape[1:]), dtype=np.uint8)
    array.flush()
    meta = {"format": image_cache.FORMAT, "images": images, "img_size": size}
    meta["row_crc32"] = image_cache.row_checksums(array)
    meta_file.write_text(json.dumps(meta))
    print(f"{data_file}: {shape}, {array.nbytes / 2**30:.2f} GiB")


def open_cache(folder, verify):
    (data_file,) = folder.glob("bench_*.npy")
    meta_file = data_file.with_suffix(".json")
    meta = json.loads(meta_file.read_text())
    shape = (meta["images"], meta["img_size"], meta["img_size"], 3)
    if verify:
        array = image_cache.open_cached(data_file, meta_file, shape)
        assert array is not None, "the cache failed its check"
    else:
        array = np.load(data_file, mmap_mode="r")
    print(f"opened {array.shape} ({'every row verified' if verify else 'not verified'})")


def write_images(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(images):
        noise = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{index:05d}.jpg"), cv2.GaussianBlur(noise, (9, 9), 3))
    total = sum(p.stat().st_size for p in folder.glob("*.jpg"))
    print(f"{images} JPEGs, {total / 2**20:.0f} MiB")


def key(folder, mode):
    paths = sorted(folder.glob("*.jpg"))
    print(f"{mode} key of {len(paths)} files: {image_cache.cache_key(paths, 224, mode)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["make", "open", "images", "key"])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument("--key", choices=image_cache.KEYS, default="stat")
    args = parser.parse_args()
    if args.mode == "make":
        make(args.folder, args.images or DFIRE_IMAGES, args.size)
    elif args.mode == "open":
        open_cache(args.folder, not args.no_verify)
    elif args.mode == "images":
        write_images(args.folder, args.images or 2000)
    else:
        key(args.folder, args.key)


if __name__ == "__main__":
    main()
