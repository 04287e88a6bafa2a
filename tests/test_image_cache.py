"""The decoded-image cache: same pixels as decoding each time, reused while nothing changes,
rebuilt when a file, the file list or the size changes or the cache file is damaged."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from modules.data import image_cache
from modules.data.datasets import FireSmokeDataset, Sample
from modules.data.image_cache import CacheSettings, load_or_build
from modules.data.preprocess import load_rgb, resize_square


@pytest.fixture
def images(tmp_path):
    paths = []
    for i in range(5):
        pixels = np.random.default_rng(i).integers(0, 256, (40 + i, 50, 3), dtype=np.uint8)
        path = tmp_path / "images" / f"img{i}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), pixels)
        paths.append(path)
    return paths


def disk(tmp_path):
    return CacheSettings("disk", tmp_path / "cache")


def npy_files(tmp_path):
    return sorted((tmp_path / "cache").glob("*.npy"))


def test_cached_pixels_equal_decoding_each_time(tmp_path, images):
    cached = load_or_build(disk(tmp_path), "demo_train", images, 24)
    assert cached.dtype == np.uint8 and cached.shape == (5, 24, 24, 3)
    for i, path in enumerate(images):
        np.testing.assert_array_equal(cached[i], resize_square(load_rgb(path), 24))
    memory = load_or_build(CacheSettings("memory", tmp_path / "unused"), "x", images, 24)
    np.testing.assert_array_equal(memory, cached)
    assert not (tmp_path / "unused").exists()


def test_dataset_items_identical_with_and_without_cache(tmp_path, images):
    samples = [Sample(p, np.array([1.0, 0.0], np.float32), np.zeros((0, 5))) for p in images]
    plain = FireSmokeDataset(samples, 24, augment=True, seed=3)
    cached = FireSmokeDataset(samples, 24, augment=True, seed=3).use_cache(disk(tmp_path), "t")
    for dataset in (plain, cached):
        dataset.set_epoch(2)
    for i in range(len(samples)):
        assert torch.equal(plain[i][0], cached[i][0]), i
        assert torch.equal(plain[i][1], cached[i][1])


def test_reused_until_a_file_or_the_size_changes(tmp_path, images, monkeypatch):
    load_or_build(disk(tmp_path), "demo_train", images, 24)
    first = npy_files(tmp_path)

    def no_decoding(*args):
        raise AssertionError("the cache was rebuilt although nothing changed")

    with monkeypatch.context() as patch:
        patch.setattr(image_cache, "decode_into", no_decoding)
        load_or_build(disk(tmp_path), "demo_train", images, 24)
    assert npy_files(tmp_path) == first

    stat = images[2].stat()
    cv2.imwrite(str(images[2]), np.zeros((8, 8, 3), np.uint8))
    os.utime(images[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    rebuilt = load_or_build(disk(tmp_path), "demo_train", images, 24)
    assert (rebuilt[2] == 0).all() and len(npy_files(tmp_path)) == 2
    load_or_build(disk(tmp_path), "demo_train", images[:4], 24)  # another file list
    load_or_build(disk(tmp_path), "demo_train", images, 32)  # another size
    assert len(npy_files(tmp_path)) == 4


@pytest.mark.parametrize("damage", ["truncate", "flip_pixels", "delete_meta"])
def test_damaged_cache_file_is_rebuilt(tmp_path, images, damage):
    expected = np.array(load_or_build(disk(tmp_path), "demo_train", images, 24))
    (data_file,) = npy_files(tmp_path)
    raw = bytearray(data_file.read_bytes())
    if damage == "truncate":
        data_file.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip_pixels":
        raw[-10:] = bytes(255 - b for b in raw[-10:])  # the last image's last pixels
        data_file.write_bytes(raw)
    else:
        data_file.with_suffix(".json").unlink()
    again = load_or_build(disk(tmp_path), "demo_train", images, 24)
    np.testing.assert_array_equal(again, expected)


def test_unwritable_cache_folder_is_a_clear_error(tmp_path, images):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    settings = CacheSettings("disk", blocker / "cache")
    with pytest.raises(PermissionError, match="CACHE_DIR.*IMAGE_CACHE = 'memory'"):
        load_or_build(settings, "demo_train", images, 24)


def test_unknown_cache_mode_names_the_key():
    cfg = type("Cfg", (), {"IMAGE_CACHE": "ram", "CACHE_DIR": "data/cache"})
    with pytest.raises(ValueError, match="IMAGE_CACHE"):
        CacheSettings.from_config(cfg)


def tiny_images(folder, count):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:03d}.png" for i in range(count)]
    for path in paths:
        cv2.imwrite(str(path), rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    return paths


def test_damage_to_any_row_is_found_named_and_rebuilt(tmp_path, capsys):
    """130 rows: the old 64-row sample never read row 1; every row is checked now."""
    paths = tiny_images(tmp_path / "many", 130)
    expected = np.array(load_or_build(disk(tmp_path), "many", paths, 8))
    (data_file,) = npy_files(tmp_path)
    raw = bytearray(data_file.read_bytes())
    header = len(raw) - expected.nbytes
    row = header + 1 * 8 * 8 * 3  # row 1's first byte
    raw[row : row + 64] = bytes(255 - b for b in raw[row : row + 64])
    data_file.write_bytes(raw)
    again = load_or_build(disk(tmp_path), "many", paths, 8)
    np.testing.assert_array_equal(again, expected)
    assert "1 row(s) fail their checksum (1); rebuilding" in capsys.readouterr().out


def test_the_temporary_file_of_a_killed_build_is_removed_at_the_next_start(tmp_path, images):
    """A build in another process, killed (SIGKILL) while it decodes; the next start removes
    its .tmp but leaves the .tmp of a build that is still running."""
    cache = tmp_path / "cache"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from modules.data import image_cache\n"
        "def stall(array, *args):\n"
        "    print('building', flush=True)\n"
        "    time.sleep(600)\n"
        "image_cache.decode_into = stall\n"
        "paths = [Path(p) for p in sys.argv[2:]]\n"
        "image_cache.load_or_build(image_cache.CacheSettings('disk', Path(sys.argv[1])),"
        " 'killed', paths, 24)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(image_cache.__file__).parents[2])}
    argv = [sys.executable, "-c", script, str(cache), *map(str, images)]
    build = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, text=True)
    assert build.stdout.readline().strip() == "building"
    (left,) = cache.glob(".*.tmp")
    build.send_signal(signal.SIGKILL)
    build.wait()
    assert left.exists()  # nothing could clean up after a SIGKILL
    running = cache / f".x.npy.{socket.gethostname()}.{os.getpid()}.abc.tmp"
    running.write_bytes(b"a build of this process, still running")
    load_or_build(disk(tmp_path), "demo_train", images, 24)
    assert not left.exists() and running.exists()


def test_content_key_notices_what_size_and_mtime_miss(tmp_path, images):
    stat_key = image_cache.cache_key(images, 24, "stat")
    content_key = image_cache.cache_key(images, 24, "content")
    before = images[1].stat()
    raw = bytearray(images[1].read_bytes())
    raw[-20] ^= 0xFF  # same size, other content
    images[1].write_bytes(raw)
    os.utime(images[1], ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime
    assert image_cache.cache_key(images, 24, "stat") == stat_key  # what "stat" cannot see
    changed = image_cache.cache_key(images, 24, "content")
    assert changed != content_key
    os.utime(images[0], ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))  # touched only
    assert image_cache.cache_key(images, 24, "content") == changed
    assert image_cache.cache_key(images, 24, "stat") != stat_key


def test_cache_key_setting_is_checked():
    cfg = type("Cfg", (), {"IMAGE_CACHE": "disk", "CACHE_DIR": "c", "CACHE_KEY": "hash"})
    with pytest.raises(ValueError, match="CACHE_KEY"):
        CacheSettings.from_config(cfg)
    cfg.CACHE_KEY = "content"
    assert CacheSettings.from_config(cfg).key == "content"
