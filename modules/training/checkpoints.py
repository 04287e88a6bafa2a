"""Checkpoints: model, optimizer, scheduler, epoch, RNG states and the config used.

Written atomically (temp file + fsync + rename) so a kill mid-write keeps the previous file,
and loaded with `weights_only=True` so a checkpoint cannot run code on load.
"""

import os
import random
import tempfile
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


def atomic_torch_save(obj, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def load_checkpoint(path, expected_kind=None):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist (config.LOAD_MODEL_FILE / the run's weights folder)"
        )
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if expected_kind is not None and checkpoint.get("kind") != expected_kind:
        raise ValueError(
            f"checkpoint {path} holds a {checkpoint.get('kind')!r} model but this run builds "
            f"{expected_kind!r} (config.BREVITAS_MODEL and the bit widths decide); "
            "point config.LOAD_MODEL_FILE at a matching checkpoint or set LOAD_MODEL = False"
        )
    return checkpoint
