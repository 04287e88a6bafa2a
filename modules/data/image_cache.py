"""Decoded-image cache: every image read, decoded and resized to the training size once.

The cache is one uint8 array (N, S, S, 3) in dataset order, made by the same `load_rgb` +
`resize_square` as an uncached read, so it changes no pixel. On disk it is a .npy file under
config.CACHE_DIR, memory-mapped (ranks and loader workers share the page cache), named by the
dataset and split and keyed by the image size and every file's path plus either its size and
modification time (CACHE_KEY = "stat") or its contents (CACHE_KEY = "content", which reads every
image file at each start): any change gives a new key and a rebuild. The file is written to a
temporary name (carrying the host and process id) and renamed when complete; the temporary
file of a killed build is removed at the next start. A CRC32 of every row is written at build
and verified at every open: a file whose header, shape or any row does not check is reported
(naming the rows) and rebuilt. `benchmarks/bench_image_cache.py` measures what both cost.
"""

import hashlib
import json
import os
import re
import socket
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from modules.data.preprocess import load_rgb, resize_square

MODES = ("disk", "memory", "off")
KEYS = ("stat", "content")
FORMAT = 2  # meta version: 2 = a CRC32 for every row
TMP_NAME = re.compile(r"^\.(?P<target>.+?\.npy)\.(?P<host>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


@dataclass(frozen=True)
class CacheSettings:
    mode: str
    folder: Path
    key: str = "stat"

    @classmethod
    def from_config(cls, cfg):
        if cfg.IMAGE_CACHE not in MODES:
            raise ValueError(f"config.IMAGE_CACHE = {cfg.IMAGE_CACHE!r}; choose one of {MODES}")
        if cfg.CACHE_KEY not in KEYS:
            raise ValueError(f"config.CACHE_KEY = {cfg.CACHE_KEY!r}; choose one of {KEYS}")
        return cls(cfg.IMAGE_CACHE, Path(cfg.CACHE_DIR), cfg.CACHE_KEY)


def file_fingerprint(path, key):
    """'size|mtime' (stat: no file read) or a BLAKE2b of the bytes (content: reads the file)."""
    if key == "content":
        with open(path, "rb") as file:
            return hashlib.file_digest(file, "blake2b").hexdigest()
    stat = Path(path).stat()
    return f"{stat.st_size}|{stat.st_mtime_ns}"


def cache_key(paths, img_size, key="stat"):
    """Changes when the file list, the size, or any file's fingerprint changes."""
    digest = hashlib.sha256(f"size={img_size} key={key}".encode())
    for path in paths:
        digest.update(f"\n{Path(path).resolve()}|{file_fingerprint(path, key)}".encode())
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


def row_checksums(array):
    """CRC32 of every row (zlib releases the GIL: rows are checked on several threads)."""
    threads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda row: zlib.crc32(np.ascontiguousarray(row)), array))


def cache_files(folder, name, img_size, key):
    stem = f"{re.sub(r'[^A-Za-z0-9_.+-]+', '_', name)}_{img_size}px_{key}"
    return folder / f"{stem}.npy", folder / f"{stem}.json"


def open_cached(data_file, meta_file, shape):
    """The memory-mapped array, or None when it is missing, truncated, of an older format or
    fails its checksums (then the damaged rows are reported)."""
    try:
        meta = json.loads(meta_file.read_text())
        array = np.load(data_file, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        return None
    if array.shape != shape or array.dtype != np.uint8 or meta.get("format") != FORMAT:
        return None
    expected = meta.get("row_crc32", [])
    if len(expected) != len(array):
        return None
    found = row_checksums(array)
    damaged = [i for i, (a, b) in enumerate(zip(found, expected, strict=True)) if a != b]
    if damaged:
        rows = ", ".join(map(str, damaged[:10])) + (" ..." if len(damaged) > 10 else "")
        print(f"image cache {data_file}: {len(damaged)} row(s) fail their checksum ({rows}); "
              "rebuilding it")  # fmt: skip
        return None
    return array


def remove_stale_builds(folder):
    """Delete the temporary files that builds killed on this host left (their process is gone);
    a build still running keeps its file."""
    host = socket.gethostname()
    for path in folder.glob(".*.tmp") if folder.is_dir() else []:
        match = TMP_NAME.match(path.name)
        if match is None or match["host"] != host or process_alive(int(match["pid"])):
            continue
        size = path.stat().st_size
        path.unlink(missing_ok=True)
        print(f"image cache: removed {path.name} ({size / 2**20:.0f} MiB), left by a killed build")


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


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
    prefix = f".{data_file.name}.{socket.gethostname()}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(dir=data_file.parent, prefix=prefix, suffix=".tmp")
    os.close(fd)
    try:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        decode_into(array, paths, img_size, f"caching {data_file.name}")
        array.flush()
        meta = {"format": FORMAT, "images": len(paths), "img_size": img_size}
        meta["row_crc32"] = row_checksums(array)
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
    remove_stale_builds(settings.folder)
    key = cache_key(paths, img_size, settings.key)
    data_file, meta_file = cache_files(settings.folder, name, img_size, key)
    cached = open_cached(data_file, meta_file, shape)
    if cached is not None:
        return cached
    return build_on_disk(data_file, meta_file, paths, img_size, shape)
