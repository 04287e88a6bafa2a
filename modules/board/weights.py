"""External (DRAM) weights of a deployment package (board runtime: numpy and stdlib only).

A design whose layers stream their weights from DRAM carries one `runtime_weights/<dma>.npy`
per weight DMA: the uint8 buffer FINN's driver (`load_external_weights`) hands to that DMA.
io_spec.json lists them (`external_weights`: dma, layer, file, bytes, sha256), so a missing,
truncated or changed file is named before the driver or the self-check uses the package.
"""

import hashlib
from pathlib import Path

import numpy as np


def weight_records(io_spec):
    return io_spec.get("external_weights", [])


def load_weight_file(weights_dir, record):
    """One weight buffer, checked against its record; errors name the file."""
    path = Path(weights_dir) / record["file"]
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: weight file of layer {record['layer']} (DMA {record['dma']}) is missing; "
            "the accelerator streams these weights from DRAM and cannot run without them"
        )
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(f"{path}: not a weight buffer (.npy): {error}") from None
    if data.dtype != np.uint8 or data.ndim != 1 or data.size != record["bytes"]:
        raise ValueError(
            f"{path}: {data.dtype} {data.shape}; layer {record['layer']} reads "
            f"{record['bytes']} uint8 bytes"
        )
    if hashlib.sha256(data.tobytes()).hexdigest() != record["sha256"]:
        raise ValueError(f"{path}: contents differ from the weights the package was made with")
    return data


def load_external_weights(weights_dir, io_spec):
    """{layer name: uint8 buffer} of every weight file io_spec lists (empty: none)."""
    return {r["layer"]: load_weight_file(weights_dir, r) for r in weight_records(io_spec)}
