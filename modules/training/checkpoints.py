"""Checkpoints: model, optimizer, scheduler, epoch, RNG states and the config used.

Written atomically (temp file + fsync + rename) so a kill mid-write keeps the previous file,
and loaded with `weights_only=True` so a checkpoint cannot run code on load.
"""

import errno
import os
import pickle
import random
import resource
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch


def rng_states():
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
    }


def restore_rng_states(states):
    torch.set_rng_state(states["torch"])
    python_state = states["python"]
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    n = states["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["gauss"]))


TEMP_SUFFIX = ".tmp"


def write_failure_cause(path, written, error):
    """Why a write to `path` failed after `written` bytes: the file-size limit, a full disk, or
    `error` itself (torch.save reports both as "unexpected pos ...")."""
    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    code = getattr(error, "errno", None)
    if code == errno.EFBIG or (limit != resource.RLIM_INFINITY and written >= limit):
        return f"the file-size limit (ulimit -f) of {limit} bytes was reached ({error})"
    free = shutil.disk_usage(Path(path).parent).free
    if code == errno.ENOSPC or free < 1 << 20:
        return f"the disk is full, {free} bytes free in {Path(path).parent} ({error})"
    return str(error)


def atomic_write(path, write):
    """`write(handle)` into a temp file beside `path`, fsync, then rename over `path`: a kill
    mid-write keeps the previous file. A failed write (full disk, file-size limit) raises an
    OSError naming the file and the cause."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:
        written = Path(tmp).stat().st_size if Path(tmp).exists() else 0
        Path(tmp).unlink(missing_ok=True)
        cause = write_failure_cause(path, written, error)
        raise OSError(f"could not write {path}: {cause}") from error
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj, path):
    atomic_write(path, lambda handle: torch.save(obj, handle))


def atomic_write_text(text, path):
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def remove_stale_temp_files(*folders):
    """Delete the temp files of writes that a kill interrupted; returns their paths."""
    stale = [
        path
        for folder in folders
        if Path(folder).is_dir()
        for path in Path(folder).glob(f".*{TEMP_SUFFIX}")
    ]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def save_checkpoint(path, model, optimizer, scheduler, epoch, metrics, config_snapshot, kind):
    """`kind` names what the weights are (e.g. "fp32" or "brevitas-w4a4") for load checks."""
    atomic_torch_save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch,
            "metrics": metrics,
            "rng": rng_states(),
            "config": config_snapshot,
            "kind": kind,
        },
        path,
    )


def read_checkpoint_file(path):
    """torch.load with weights_only; a damaged or unsafe file gets an error naming it."""
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"checkpoint {path} is empty (0 bytes): a write was interrupted")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"checkpoint {path} refused: it holds objects other than tensors and plain values, "
            f"which could run code on load ({str(error).splitlines()[0]})"
        ) from error
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"checkpoint {path} is truncated or not a checkpoint ({size} bytes): {error}"
        ) from error


def load_checkpoint(path, expected_kind=None):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist (config.LOAD_MODEL_FILE / the run's weights folder)"
        )
    checkpoint = read_checkpoint_file(path)
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise ValueError(f"checkpoint {path} holds no model weights (not written by this project)")
    if expected_kind is not None and checkpoint.get("kind") != expected_kind:
        raise ValueError(
            f"checkpoint {path} holds a {checkpoint.get('kind')!r} model but this run builds "
            f"{expected_kind!r} (config.BREVITAS_MODEL and the bit widths decide); "
            "point config.LOAD_MODEL_FILE at a matching checkpoint or set LOAD_MODEL = False"
        )
    return checkpoint


def load_weights(model, checkpoint_path, kind):
    """Load a checkpoint's weights after checking it holds this kind of model."""
    model.load_state_dict(load_checkpoint(checkpoint_path, expected_kind=kind)["model"])
    return model.eval()


def init_from_fp32(model, checkpoint_path, allow_partial=False):
    """Copy FP32 weights into the quantized model by parameter name; returns what matched and
    what did not (quantizer-only tensors stay at their initial values). FP32 tensors that find
    no tensor of their name and shape (another MODEL or WIDTH_MULT) are an error unless
    `allow_partial` (config.QAT_INIT_ALLOW_PARTIAL)."""
    fp32 = load_checkpoint(checkpoint_path, expected_kind="fp32")["model"]
    own = model.state_dict()
    copied = {k: v for k, v in fp32.items() if k in own and own[k].shape == v.shape}
    unused = sorted(set(fp32) - set(copied))
    if unused and not allow_partial:
        shown = ", ".join(
            f"{k} {tuple(fp32[k].shape)} vs {tuple(own[k].shape) if k in own else 'absent'}"
            for k in unused[:3]
        )
        raise ValueError(
            f"{checkpoint_path} does not fit this model: {len(unused)} of {len(fp32)} FP32 "
            f"tensors have no match ({shown}, ...); was it trained with another MODEL or "
            "WIDTH_MULT? Retrain FP32 with these settings, set QAT_INIT_FROM_FP32 = False, or "
            "QAT_INIT_ALLOW_PARTIAL = True to copy only the tensors that fit"
        )
    model.load_state_dict(copied, strict=False)
    return {
        "copied": sorted(copied),
        "fp32_only": unused,
        "left_at_init": sorted(set(own) - set(copied)),
    }
