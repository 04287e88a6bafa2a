"""FINN's stream packing in numpy: values <-> the bytes its DMA moves (board runtime: numpy only).

FINN's generated driver packs with `finnpy_to_packed_bytearray(..., reverse_inner=True,
reverse_endian=True)` and unpacks with the matching `packed_bytearray_to_finnpy`. With both
reversals the rule is simple: along the innermost (folded) dimension, value i occupies bits
i*w .. i*w+w-1 of one little-endian word, zero-padded to whole bytes. That is what `pack` and
`unpack` do, for the datatypes an io_spec can name: BINARY, BIPOLAR (bit 1 = +1), UINTn, INTn
(two's complement). tests/test_board_packing.py checks them bit for bit against FINN.
"""

import re
from dataclasses import dataclass

import numpy as np

MAX_BITS = 32  # float32 containers hold integers exactly only up to 24 bits anyway
WHOLE_BYTES = {8: "<u1", 16: "<u2", 32: "<u4"}  # widths packed as little-endian unsigned words


@dataclass(frozen=True)
class IntType:
    """An integer FINN DataType by name: bits, signedness and range."""

    name: str
    bits: int
    signed: bool
    bipolar: bool = False

    @property
    def min(self):
        return -1 if self.bipolar else (-(2 ** (self.bits - 1)) if self.signed else 0)

    @property
    def max(self):
        return 1 if self.bipolar else 2 ** (self.bits - self.signed) - 1

    def allowed(self, values):
        """Elementwise: an integer in range (and not 0 for BIPOLAR)."""
        values = np.asarray(values)
        ok = (values == np.round(values)) & (values >= self.min) & (values <= self.max)
        return ok & (values != 0) if self.bipolar else ok


def datatype(name):
    """'BINARY' | 'BIPOLAR' | 'UINT<n>' | 'INT<n>' -> IntType; anything else is an error."""
    if name in ("BINARY", "BIPOLAR"):
        return IntType(name, 1, signed=name == "BIPOLAR", bipolar=name == "BIPOLAR")
    match = re.fullmatch(r"(U?)INT(\d+)", name)
    if match is None or not 1 <= int(match.group(2)) <= MAX_BITS:
        raise ValueError(
            f"finn_datatype {name!r}: the board runtime packs BINARY, BIPOLAR, UINTn and INTn "
            f"(n <= {MAX_BITS})"
        )
    return IntType(name, int(match.group(2)), signed=match.group(1) == "")


def packed_bytes(count, dtype):
    """Bytes that `count` values of `dtype` take in one packed word."""
    return -(-count * dtype.bits // 8)


def pack(values, dtype):
    """Values (..., n) -> uint8 (..., packed_bytes(n)), FINN's driver layout (both reversals)."""
    values = np.asarray(values)
    if not np.all(dtype.allowed(values)):
        bad = values[~dtype.allowed(values)].flat[0]
        raise ValueError(f"value {bad} is not {dtype.name} ({dtype.min}..{dtype.max})")
    codes = values.astype(np.int64)
    if dtype.bipolar:
        codes = (codes + 1) // 2  # -1 -> bit 0, +1 -> bit 1
    codes = codes & ((1 << dtype.bits) - 1)  # two's complement for negative values
    if dtype.bits in WHOLE_BYTES:  # each value is whole little-endian bytes: no bit work
        as_bytes = codes.astype(WHOLE_BYTES[dtype.bits]).view(np.uint8)
        return as_bytes.reshape(*values.shape[:-1], values.shape[-1] * dtype.bits // 8)
    bits = (codes[..., None] >> np.arange(dtype.bits)) & 1  # least significant bit first
    word = bits.reshape(*values.shape[:-1], values.shape[-1] * dtype.bits).astype(np.uint8)
    return np.packbits(word, axis=-1, bitorder="little")


def unpack(packed, dtype, count):
    """uint8 (..., packed_bytes(count)) -> float32 values (..., count); inverse of `pack`."""
    packed = np.asarray(packed)
    if packed.dtype != np.uint8 or packed.shape[-1:] != (packed_bytes(count, dtype),):
        raise ValueError(
            f"packed data {packed.dtype} {packed.shape}: expected uint8 with "
            f"{packed_bytes(count, dtype)} bytes per word for {count} x {dtype.name}"
        )
    if dtype.bits in WHOLE_BYTES:
        codes = np.ascontiguousarray(packed).view(WHOLE_BYTES[dtype.bits]).astype(np.int64)
    else:
        bits = np.unpackbits(packed, axis=-1, bitorder="little")[..., : count * dtype.bits]
        bits = bits.reshape(*packed.shape[:-1], count, dtype.bits).astype(np.int64)
        codes = (bits << np.arange(dtype.bits)).sum(axis=-1)
    if dtype.bipolar:
        codes = 2 * codes - 1
    elif dtype.signed:
        codes = np.where(codes >= 2 ** (dtype.bits - 1), codes - 2**dtype.bits, codes)
    return codes.astype(np.float32)
