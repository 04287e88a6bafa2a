"""Darknet `.weights` files: read into and write from a `DarknetDetector` (modules/models/darknet).

Layout: int32 major, minor, revision; then `seen` (images trained on) as int64 when
major*10 + minor >= 2 and major < 1000, else int32; then float32 values per conv layer in cfg
order: with batch_normalize the BN biases, scales, running means, running variances, else the
conv biases; then the conv weights (filters, in/groups, size, size). Darknet keeps float
weights for `binary=1` layers too (it binarizes when it runs); so does the Brevitas model.
"""

from pathlib import Path

import numpy as np
import torch

HEADER_DTYPE = np.int32


def seen_dtype(major, minor):
    return np.int64 if major * 10 + minor >= 2 and major < 1000 else np.int32


def _tensors(block, plan):
    """The tensors of one conv block in file order."""
    conv = block.conv
    if plan.batch_normalize:
        bn = block.bn
        return [bn.bias, bn.weight, bn.running_mean, bn.running_var, conv.weight]
    return [conv.bias, conv.weight]


def expected_floats(model):
    return sum(t.numel() for plan, block in model.conv_blocks() for t in _tensors(block, plan))


def read_header(data, path):
    if len(data) < 16:
        raise ValueError(f"{path}: {len(data)} bytes is too short for a Darknet weights header")
    major, minor, revision = np.frombuffer(data[:12], HEADER_DTYPE)
    dtype = seen_dtype(int(major), int(minor))
    end = 12 + np.dtype(dtype).itemsize
    seen = int(np.frombuffer(data[12:end], dtype)[0])
    return {"major": int(major), "minor": int(minor), "revision": int(revision), "seen": seen}, end


def load_darknet_weights(model, path):
    """Copy a .weights file into `model` (FP32 or Brevitas); returns the header dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config.DARKNET_WEIGHTS_FILE = {str(path)!r}: file not found")
    data = path.read_bytes()
    header, offset = read_header(data, path)
    if (len(data) - offset) % 4:
        raise ValueError(f"{path}: {len(data) - offset} bytes after the header is not float32s")
    values = np.frombuffer(data[offset:], np.float32)
    expected = expected_floats(model)
    if len(values) != expected:
        raise ValueError(
            f"{path}: expected {expected} floats for this cfg's {len(model.conv_blocks())} conv "
            f"layers (at this width), found {len(values)}; the weights belong to another cfg"
        )
    start = 0
    with torch.no_grad():
        for plan, block in model.conv_blocks():
            for tensor in _tensors(block, plan):
                chunk = values[start : start + tensor.numel()]
                tensor.copy_(torch.from_numpy(chunk.copy()).view_as(tensor))
                start += tensor.numel()
    return header


def save_darknet_weights(model, path, major=0, minor=2, revision=0, seen=0):
    """Write `model` in Darknet's format (the header version decides the width of `seen`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks = [
        np.asarray([major, minor, revision], HEADER_DTYPE).tobytes(),
        np.asarray([seen], seen_dtype(major, minor)).tobytes(),
    ]
    for plan, block in model.conv_blocks():
        for tensor in _tensors(block, plan):
            chunks.append(tensor.detach().cpu().numpy().astype(np.float32).ravel().tobytes())
    path.write_bytes(b"".join(chunks))
    return path
