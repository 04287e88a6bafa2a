"""The board runtime's numpy packing vs FINN's (finn.util.data_packing), measured in one run.

    python benchmarks/bench_board_packing.py [--size 224] [--batch 8] [--repeats 20]

Packs a UINT8 NHWC input batch (what the board sends per frame batch) and unpacks a BINARY and
an INT8 two-class output batch both ways, checks the bytes are identical, and prints the time
per call of each and their ratio. The board has no FINN; this says what the numpy version costs.
"""

import argparse
import time

import numpy as np
from finn.util.data_packing import finnpy_to_packed_bytearray, packed_bytearray_to_finnpy
from qonnx.core.datatype import DataType

from modules.board import packing


def per_call(function, repeats):
    start = time.perf_counter()
    for _ in range(repeats):
        result = function()
    return (time.perf_counter() - start) / repeats, result


def compare(label, ours, finn, repeats):
    ours_s, ours_out = per_call(ours, repeats)
    finn_s, finn_out = per_call(finn, repeats)
    assert np.array_equal(ours_out, finn_out), f"{label}: numpy and FINN disagree"
    print(
        f"{label:34s} numpy {ours_s * 1e3:8.3f} ms  FINN {finn_s * 1e3:8.3f} ms  "
        f"FINN/numpy {finn_s / ours_s:5.2f}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.batch, args.size, args.size, 1, 3)  # folded NHWC, PE 3
    image = rng.integers(0, 256, shape).astype(np.float32)
    uint8 = packing.datatype("UINT8")
    compare(
        f"pack UINT8 {shape}",
        lambda: packing.pack(image, uint8),
        lambda: finnpy_to_packed_bytearray(image, DataType["UINT8"], True, True),
        args.repeats,
    )
    for name in ("BINARY", "INT8"):
        dtype = packing.datatype(name)
        values = rng.integers(dtype.min, dtype.max + 1, (args.batch, 1, 2)).astype(np.float32)
        packed = packing.pack(values, dtype)
        compare(
            f"unpack {name} {values.shape}",
            lambda p=packed, d=dtype: packing.unpack(p, d, 2),
            lambda p=packed, n=name: packed_bytearray_to_finnpy(
                p, DataType[n], (len(p), 1, 2), True, True
            ),
            args.repeats * 50,
        )


if __name__ == "__main__":
    main()
