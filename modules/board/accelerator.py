"""Stage 05: one `Accelerator` interface, run on the PYNQ board or emulated on the CPU.

Both backends move data exactly as FINN's generated driver does: host layout -> NHWC, reshape
to the folded shape, pack the innermost dimension into bytes (both reversals), and the reverse
for the output. The board backend sends those bytes through the DMA of FINN's driver; the
emulated backend unpacks them, runs the bit-exact HW graph (`hw_graph_fn`) and packs its
output, so packing bugs show up in either. All shapes and datatypes come from io_spec.json
(`modules/deployment/package.py`).

This module runs on the board too (copied into the deployment package as `firesmoke_board`):
numpy and the sibling modules only, and finn-plus-driver imported lazily, on the board.
"""

import copy
import importlib.util
import json
import time
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from .decisions import decide
from .detect import detect, presence, settings_from_spec
from .packing import datatype, pack, unpack
from .weights import load_external_weights

BACKENDS = ("auto", "board", "emulator")


# ------------------------------------------------------------------ FINN's packing


def pack_tensor(values_normal, port):
    """Normal-shape values (N, ...) -> packed bytes (N, *shape_packed[1:]) for `port`
    (io_spec["input"] or io_spec["output"])."""
    values = np.asarray(values_normal)
    folded = values.reshape(len(values), *port["shape_folded"][1:])
    return pack(folded, datatype(port["finn_datatype"]))


def unpack_tensor(packed, port):
    """Packed bytes (N, *shape_packed[1:]) -> float32 values in normal shape (N, ...)."""
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    count = len(packed)
    folded = unpack(packed, datatype(port["finn_datatype"]), port["shape_folded"][-1])
    return folded.reshape(count, *port["shape_normal"][1:])


def to_accelerator_layout(images, io_spec):
    """Preprocessed images (N, C, H, W) in 0..255 (numpy or torch) -> NHWC float32."""
    port = io_spec["input"]
    values = np.asarray(images, dtype=np.float32)
    host_shape = port["host_shape"]
    if values.ndim == len(host_shape) - 1:
        values = values[None]
    if values.shape[1:] != tuple(host_shape[1:]):
        raise ValueError(
            f"images have shape {values.shape}; the accelerator takes "
            f"(N, {', '.join(map(str, host_shape[1:]))}) in {port['host_layout']} layout"
        )
    dtype = datatype(port["finn_datatype"])
    if not np.all(dtype.allowed(values)):
        raise ValueError(
            f"image values must be {dtype.name} (integers {dtype.min}..{dtype.max}, "
            f"as preprocess() gives); got {values.min()}..{values.max()}"
        )
    if port["host_layout"] == "NCHW" and port["layout"] == "NHWC":
        values = values.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(values)


# ------------------------------------------------------------------ post-processing


def model_outputs(outputs, io_spec):
    """Accelerator outputs -> the model's outputs: the parent graph's nodes after the
    accelerator (Mul/Add: BINARY {0,1} -> bipolar {-1,+1}, or integer -> real logits or head
    values; Transpose: the detector head's NHWC stream back to NCHW)."""
    values = np.asarray(outputs, dtype=np.float32)
    for op in io_spec["output"]["host_ops"]:
        if op["op"] == "Transpose":
            values = values.transpose(op["perm"])
            continue
        constant = np.asarray(op["value"], dtype=np.float32)  # scalar or one per class
        values = values * constant if op["op"] == "Mul" else values + constant
    return values


def detections(outputs, io_spec, letterboxes=None):
    """Detector outputs -> per image detections (D, 6): x0, y0, x1, y1, score, class, in model
    input pixels (original image pixels with `letterboxes`). The head is dequantized by the
    graph's own host Mul; anchors and thresholds come from the package's detect_spec.json."""
    if "detect" not in io_spec:
        raise ValueError("io_spec has no detect_spec: the accelerator is not a detector")
    head = model_outputs(outputs, io_spec)
    return detect(head, settings_from_spec(io_spec["detect"]), letterboxes)


def decisions(outputs, io_spec, threshold=0.5):
    """Accelerator outputs -> bool (N, classes) in io_spec["classes"] order ([smoke, fire]).

    BINARY/BIPOLAR outputs are the sign of the logit already (threshold 0.5 built in);
    integer outputs are dequantized and compared with logit(threshold). A detector decides
    per image whether it found a box of each class at the display confidence.
    """
    raw = np.asarray(outputs)
    count = len(raw)
    if "detect" in io_spec:
        return presence(detections(raw, io_spec), len(io_spec["classes"]))
    if io_spec["output"]["finn_datatype"] in ("BINARY", "BIPOLAR"):
        if threshold != 0.5:
            raise ValueError("a binary/bipolar output decides at 0.5 (logit 0) by construction")
        signs = np.where(raw.reshape(count, -1) == 1, 1.0, -1.0)
        return decide(signs).astype(bool)
    return decide(model_outputs(raw, io_spec).reshape(count, -1), threshold).astype(bool)


# ------------------------------------------------------------------ backends


class Accelerator(ABC):
    """run(images) -> accelerator outputs (N, ...); decisions(outputs) -> bool (N, classes)."""

    name = "accelerator"
    is_emulated = False

    def __init__(self, io_spec):
        self.io_spec = io_spec

    @property
    def classes(self):
        return self.io_spec["classes"]

    def run(self, images):
        packed_in = pack_tensor(to_accelerator_layout(images, self.io_spec), self.io_spec["input"])
        return unpack_tensor(self.execute_packed(packed_in), self.io_spec["output"])

    @abstractmethod
    def execute_packed(self, packed_in):
        """Input bytes (N, *ishape_packed[1:]) -> output bytes (N, *oshape_packed[1:])."""

    def model_outputs(self, outputs):
        return model_outputs(outputs, self.io_spec)

    def decisions(self, outputs, threshold=0.5):
        return decisions(outputs, self.io_spec, threshold)

    def detections(self, outputs, letterboxes=None):
        return detections(outputs, self.io_spec, letterboxes)

    @property
    def is_detector(self):
        return "detect" in self.io_spec

    def postprocess(self, outputs, letterboxes=None):
        """What the host makes of the outputs: boxes per image (detector) or decisions."""
        if self.is_detector:
            return self.detections(outputs, letterboxes)
        return self.decisions(outputs)


class FinnDriverDma:
    """The DMA layer of FINN's generated PYNQ driver (finn-plus-driver's FINNDMAOverlay, a
    pynq Overlay): loads the bitfile, owns the DMA buffers and drives the IODMAs."""

    def __init__(self, bitfile, io_shape_dict, runtime_weight_dir):
        from finn_plus_driver import FINNDMAOverlay

        self.overlay = FINNDMAOverlay(
            str(bitfile),
            "zynq-iodma",
            copy.deepcopy(io_shape_dict),  # the driver converts the datatype strings in place
            runtime_weight_dir=str(runtime_weight_dir),
        )

    def transfer(self, packed_in):
        if self.overlay.batch_size != len(packed_in):
            self.overlay.batch_size = len(packed_in)  # reallocates the DMA buffers
        self.overlay.copy_input_data_to_device(packed_in)
        self.overlay.execute_on_buffers()
        packed_out = np.empty(self.overlay.oshape_packed(), dtype=np.uint8)
        self.overlay.copy_output_data_from_device(packed_out)
        return packed_out


class BoardAccelerator(Accelerator):
    """The FPGA. `dma` is anything with transfer(input bytes) -> output bytes; by default
    FINN's driver on the bitfile (needs pynq and finn-plus-driver, i.e. a PYNQ board)."""

    name = "board"
    is_emulated = False

    def __init__(self, io_spec, bitfile=None, dma=None, runtime_weight_dir="runtime_weights"):
        super().__init__(io_spec)
        if dma is None:
            if bitfile is None:
                raise ValueError("BoardAccelerator needs a bitfile (or a dma object)")
            dma = FinnDriverDma(bitfile, io_spec["io_shape_dict"], runtime_weight_dir)
        self.dma = dma

    def execute_packed(self, packed_in):
        return np.asarray(self.dma.transfer(packed_in), dtype=np.uint8)


class EmulatedAccelerator(Accelerator):
    """The bit-exact HW graph on the CPU behind the same byte interface as the board.

    `hw_graph_fn(x)` takes one NHWC image batch of shape (1, H, W, C), float32 with integer
    values, and returns the accelerator's output for it (e.g. the folded dataflow graph run by
    the stage-03 emulator).
    """

    name = "emulator"
    is_emulated = True

    def __init__(self, io_spec, hw_graph_fn):
        super().__init__(io_spec)
        self.hw_graph_fn = hw_graph_fn

    def execute_packed(self, packed_in):
        images = unpack_tensor(packed_in, self.io_spec["input"])  # what the input stream carries
        out_shape = self.io_spec["output"]["shape_normal"]
        outputs = [
            np.asarray(self.hw_graph_fn(image[None]), dtype=np.float32).reshape(1, *out_shape[1:])
            for image in images
        ]
        return pack_tensor(np.concatenate(outputs), self.io_spec["output"])


# ------------------------------------------------------------------ choosing a backend


def load_io_spec(path):
    """io_spec.json; a detector's also carries its detect_spec (named relative to it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no io_spec (make the deployment package first)")
    io_spec = json.loads(path.read_text())
    if "detect_spec" in io_spec:
        spec_path = path.parent / io_spec["detect_spec"]
        if not spec_path.is_file():
            raise FileNotFoundError(f"{spec_path}: the detector's decode settings are missing")
        io_spec["detect"] = json.loads(spec_path.read_text())
    return io_spec


def find_bitfile(bitfile_dir):
    """The deployment package's .bit file, or None."""
    bitfiles = sorted(Path(bitfile_dir).glob("*.bit"))
    return bitfiles[0] if bitfiles else None


def pynq_available():
    return importlib.util.find_spec("pynq") is not None


def board_unavailable_reasons(layout):
    """Why the board backend cannot run here (empty list: it can)."""
    reasons = []
    if not pynq_available():
        reasons.append("pynq is not installed (not running on a PYNQ board)")
    if find_bitfile(layout.bitfile_dir) is None:
        reasons.append(f"no .bit file in {layout.bitfile_dir} (bitstream not built)")
    return reasons


def open_board(layout, dma=None):
    """The FPGA of a deployment package (a `DeployLayout`); `dma` replaces its DMA (tests)."""
    reasons = [] if dma is not None else board_unavailable_reasons(layout)
    if reasons:
        raise RuntimeError("board backend requested, but " + "; ".join(reasons))
    bitfile = find_bitfile(layout.bitfile_dir)
    print(f"accelerator: board ({bitfile})")
    io_spec = load_io_spec(layout.io_spec)
    # the driver would only count the .npy files: name a missing or changed one first
    load_external_weights(layout.runtime_weights, io_spec)
    return BoardAccelerator(io_spec, bitfile, dma=dma, runtime_weight_dir=layout.runtime_weights)


def make_accelerator(cfg, layout, hw_graph_fn=None, backend=None, dma=None):
    """The board when pynq imports and the package (`layout`, a DeployLayout) has a bitfile,
    else the emulator.

    `backend` ("auto" | "board" | "emulator") overrides config.ACCELERATOR_BACKEND; `dma`
    replaces the board's DMA layer (tests).
    """
    backend = backend or cfg.ACCELERATOR_BACKEND
    if backend not in BACKENDS:
        raise ValueError(f"config.ACCELERATOR_BACKEND {backend!r}: expected one of {BACKENDS}")
    io_spec = load_io_spec(layout.io_spec)
    reasons = [] if dma is not None else board_unavailable_reasons(layout)
    if backend == "board" or (backend == "auto" and not reasons):
        return open_board(layout, dma)
    if hw_graph_fn is None:
        raise ValueError(
            "the emulator backend needs hw_graph_fn (the bit-exact HW graph of stage 03)"
            + (f"; the board cannot be used: {'; '.join(reasons)}" if reasons else "")
        )
    why = f" because {'; '.join(reasons)}" if backend == "auto" else " (requested)"
    print(f"accelerator: emulator{why}")
    return EmulatedAccelerator(io_spec, hw_graph_fn)


def measure_throughput(accelerator, images, repeats=1):
    """Images per second through `accelerator.run`, labelled emulated or board."""
    start = time.perf_counter()
    for _ in range(repeats):
        accelerator.run(images)
    seconds = time.perf_counter() - start
    count = len(images) * repeats
    label = (
        "emulated: bit-exact graph on the CPU, not the FPGA's speed"
        if accelerator.is_emulated
        else "board: FPGA incl. packing and DMA"
    )
    return {
        "backend": accelerator.name,
        "label": label,
        "images": count,
        "seconds": seconds,
        "images_per_s": count / seconds,
    }
