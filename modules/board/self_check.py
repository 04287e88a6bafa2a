"""Self-check of the board runtime without a board: replay recorded accelerator outputs.

Notebook 04 records, for a few test images, what the bit-exact emulator did: the image files, the
UINT8 input tensors, the bytes sent to the accelerator, the bytes it returned, their unpacked
values and the decisions. `run_self_check` sends the image files through the same runtime as
the board (preprocessing, packing, BoardAccelerator, unpacking, decisions), with a DMA that
answers from the recording instead of the FPGA. An image passes when every step gives exactly
what was recorded. Numpy only: this runs in the board environment.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .accelerator import (
    BoardAccelerator,
    load_io_spec,
    pack_tensor,
    to_accelerator_layout,
    unpack_tensor,
)
from .array_files import load_npz
from .preprocess import file_input
from .weights import load_external_weights

FIELDS = ("names", "inputs", "packed_in", "packed_out", "outputs", "decisions")


def record_self_check(accelerator, image_paths, inputs, layout):
    """Record `accelerator` (the emulator) on `image_paths`, whose model inputs the repo's
    preprocessing gave as `inputs` (N, C, H, W); copies the images. Returns the recording."""
    if len(image_paths) != len(inputs) or not len(inputs):
        raise ValueError(f"{len(image_paths)} image files but {len(inputs)} input tensors")
    layout.recording_images.mkdir(parents=True, exist_ok=True)
    names = [f"{i:03d}_{Path(p).name}" for i, p in enumerate(image_paths)]
    for path, name in zip(image_paths, names, strict=True):
        shutil.copy2(path, layout.recording_images / name)
    io_spec = accelerator.io_spec
    packed_in = pack_tensor(to_accelerator_layout(inputs, io_spec), io_spec["input"])
    packed_out = accelerator.execute_packed(packed_in)
    outputs = unpack_tensor(packed_out, io_spec["output"])
    recording = {
        "names": np.array(names),
        "inputs": np.asarray(inputs).astype(np.uint8),
        "packed_in": packed_in,
        "packed_out": np.asarray(packed_out, dtype=np.uint8),
        "outputs": outputs,
        "decisions": accelerator.decisions(outputs),
    }
    np.savez(layout.recording, **recording)
    return recording


class ReplayDma:
    """Stands in for the FPGA's DMA: answers recorded input bytes with the recorded output
    bytes; input bytes that were never recorded are an error (preprocessing or packing differ)."""

    def __init__(self, packed_in, packed_out):
        self.replies = {
            bytes(sent): reply for sent, reply in zip(packed_in, packed_out, strict=True)
        }

    def transfer(self, packed_in):
        unknown = [i for i, row in enumerate(packed_in) if bytes(row) not in self.replies]
        if unknown:
            raise LookupError(f"input bytes of batch rows {unknown} are not in the recording")
        return np.stack([self.replies[bytes(row)] for row in packed_in])


@dataclass
class CheckResult:
    name: str
    problems: list

    @property
    def ok(self):
        return not self.problems


def load_recording(path):
    """The recording's fields; ValueError naming the file if it is empty, truncated, corrupt
    or holds no images (a self-check that checks nothing must not pass)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no self-check recording (notebook 04 writes it)")
    try:
        recording = load_npz(path, FIELDS)
    except ValueError as error:
        raise ValueError(f"self-check recording {error}; rerun notebook 04 to write it") from None
    counts = {key: value.shape[0] if value.ndim else 0 for key, value in recording.items()}
    if len(set(counts.values())) != 1 or not counts["names"]:
        raise ValueError(f"{path}: the self-check recording holds no complete images {counts}")
    return recording


def check_image(board, recording, index, images_dir):
    """Problems (empty: none) of one recorded image through the board runtime."""
    name = str(recording["names"][index])
    try:
        x, _ = file_input(Path(images_dir) / name, board.io_spec)
    except OSError as error:
        return CheckResult(name, [str(error)])
    problems = []
    if not np.array_equal(x, recording["inputs"][index]):
        problems.append("preprocessed input differs from the recorded tensor")
    try:
        outputs = board.run(x[None])
    except LookupError:
        return CheckResult(name, [*problems, "packed input bytes differ from the recording"])
    if not np.array_equal(outputs[0], recording["outputs"][index]):
        problems.append("unpacked outputs differ from the recording")
    if not np.array_equal(board.decisions(outputs)[0], recording["decisions"][index]):
        problems.append("decisions differ from the recording")
    return CheckResult(name, problems)


def run_self_check(layout):
    """Every recorded image through the board runtime; returns the CheckResults. A design with
    external weights first loads its weight files as the board does (the recording was made
    from them): a missing or changed file is an error naming it."""
    recording = load_recording(layout.recording)
    io_spec = load_io_spec(layout.io_spec)
    load_external_weights(layout.runtime_weights, io_spec)
    dma = ReplayDma(recording["packed_in"], recording["packed_out"])
    board = BoardAccelerator(io_spec, dma=dma)
    return [
        check_image(board, recording, i, layout.recording_images)
        for i in range(len(recording["names"]))
    ]


def summary_line(results):
    return f"self-check: {sum(r.ok for r in results)}/{len(results)} decisions equal"
