"""Decoded-image cache: every image read, decoded and resized to the training size once.

The cache is one uint8 array (N, S, S, 3) in dataset order, made by the same `load_rgb` +
`resize_square` as an uncached read, so it changes no pixel. On disk it is a .npy file under
config.CACHE_DIR, memory-mapped (ranks and loader workers share the page cache), named by the
dataset and split and keyed by the image size and every file's path, size and modification
time: any change gives a new key and a rebuild. The file is written to a temporary name and
renamed when complete; a file whose header, shape or sampled rows do not check is rebuilt.
"""

import hashlib
import json
import os
import re
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from modules.data.preprocess import load_rgb, resize_square

MODES = ("disk", "memory", "off")
CHECKED_ROWS = 64  # rows whose CRC is verified on every open (all of them would be slow at 100k)


@dataclass(frozen=True)
class CacheSettings:
    mode: str
    folder: Path

    @classmethod
    def from_config(cls, cfg):
        if cfg.IMAGE_CACHE not in MODES:
            raise ValueError(f"config.IMAGE_CACHE = {cfg.IMAGE_CACHE!r}; choose one of {MODES}")
        return cls(cfg.IMAGE_CACHE, Path(cfg.CACHE_DIR))


def cache_key(paths, img_size):
    """Changes when the file list, any file's size or modification time, or the size changes."""
    digest = hashlib.sha256(f"size={img_size}".encode())
    for path in paths:
        stat = Path(path).stat()
        digest.update(f"\n{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def decode_into(array, paths, img_size, desc):
    """Fill array[i] with image i at training size; threads, as OpenCV releases the GIL."""

    def load(i):
        array[i] = resize_square(load_rgb(paths[i]), img_size)

    threads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    with ThreadPoolExecutor(threads) as pool:
        for _ in tqdm(pool.map(load, range(len(paths))), total=len(paths), desc=desc, leave=False):
            pass
    return array


def row_checks(array):
    """CRC32 of a fixed spread of rows (first, last and evenly between)."""
    rows = np.unique(np.linspace(0, len(array) - 1, min(CHECKED_ROWS, len(array))).astype(int))
    return {int(i): zlib.crc32(np.ascontiguousarray(array[i]).tobytes()) for i in rows}


def cache_files(folder, name, img_size, key):
    stem = f"{re.sub(r'[^A-Za-z0-9_.+-]+', '_', name)}_{img_size}px_{key}"
    return folder / f"{stem}.npy", folder / f"{stem}.json"


def open_cached(data_file, meta_file, shape):
    """The memory-mapped array, or None when it is missing, truncated or fails its checks."""
    try:
        meta = json.loads(meta_file.read_text())
        array = np.load(data_file, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        return None
    if array.shape != shape or array.dtype != np.uint8:
        return None
    checks = {int(k): v for k, v in meta.get("row_crc32", {}).items()}
    return array if checks and row_checks(array) == checks else None


def writable_folder(folder):
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe"):
            pass
    except OSError as error:
        raise PermissionError(
            f"image cache folder {folder} is not writable ({error.strerror}); set "
            "config.CACHE_DIR to a writable folder or config.IMAGE_CACHE = 'memory'"
        ) from error


def build_on_disk(data_file, meta_file, paths, img_size, shape):
    """Decode into a temporary .npy beside the target, then rename it into place."""
    writable_folder(data_file.parent)
    fd, tmp = tempfile.mkstemp(dir=data_file.parent, prefix=f".{data_file.name}.", suffix=".tmp")
    os.close(fd)
    try:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        decode_into(array, paths, img_size, f"caching {data_file.name}")
        array.flush()
        meta = {"images": len(paths), "img_size": img_size, "row_crc32": row_checks(array)}
        del array
        os.replace(tmp, data_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    meta_file.write_text(json.dumps(meta))
    return np.load(data_file, mmap_mode="r")


def load_or_build(settings, name, paths, img_size):
    """The cached images of `paths` at `img_size` (None when the cache is off)."""
    if settings.mode == "off" or not paths:
        return None
    shape = (len(paths), img_size, img_size, 3)
    if settings.mode == "memory":
        return decode_into(np.empty(shape, np.uint8), paths, img_size, f"decoding {name}")
    data_file, meta_file = cache_files(settings.folder, name, img_size, cache_key(paths, img_size))
    cached = open_cached(data_file, meta_file, shape)
    if cached is not None:
        return cached
    return build_on_disk(data_file, meta_file, paths, img_size, shape)
