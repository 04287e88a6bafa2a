"""Synthesis results cached per layer. The key is the layer's generated HDL itself: finn-plus
writes every attribute that shapes the netlist (widths, depths, folding, memory styles) and
its weights and thresholds into the files Yosys reads, so hashing them, with the part and
the versions of the source adjustments, the Yosys flow and Yosys, keys exactly what is
built. Identical layers (the many equal FIFOs of a design) share one entry; a second run of
a design regenerates the HDL (seconds) and synthesizes nothing."""

import hashlib
import json
import os
from pathlib import Path

RESULT_FILE = "result.json"


def hdl_key(work, layer_name, context):
    """Hex digest of a layer's HDL as generated into `work` (every file it reads: wrapper,
    patched finn-rtllib sources, memory and threshold data), its name made neutral, and
    `context` (part, flow and tool versions)."""
    digest = hashlib.sha256(json.dumps(context, sort_keys=True).encode())
    files = {
        path.relative_to(work).as_posix().replace(layer_name, "LAYER"): path
        for path in Path(work).rglob("*")
        if path.is_file()
    }
    for relative, path in sorted(files.items()):
        digest.update(relative.encode() + b"\0")
        digest.update(path.read_bytes().replace(layer_name.encode(), b"LAYER") + b"\0")
    return digest.hexdigest()[:24]


def load(folder):
    path = Path(folder) / RESULT_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:  # a torn write from an interrupted run: synthesize again
        return None


def store(folder, result):
    """Written last and renamed into place, so an interrupted run leaves no half result."""
    path = Path(folder) / RESULT_FILE
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(result, indent=1))
    os.replace(partial, path)
