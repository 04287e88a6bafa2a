"""The board runtime's numpy packing is bit-identical to FINN's (finn.util.data_packing)."""

import numpy as np
import pytest
from finn.util.data_packing import finnpy_to_packed_bytearray, packed_bytearray_to_finnpy
from qonnx.core.datatype import DataType
from qonnx.util.basic import gen_finn_dt_tensor

from modules.board import packing

DATATYPES = ["BINARY", "BIPOLAR", "UINT2", "UINT3", "UINT8", "UINT12", "UINT16", "INT2", "INT4"]
DATATYPES += ["INT5", "INT8", "INT9", "INT16", "UINT24", "INT32"]
SHAPES = [(1, 1), (3, 5), (2, 4, 4, 7), (1, 2, 2, 3, 16), (4, 9)]


def finn_pack(values, name):
    return finnpy_to_packed_bytearray(
        values, DataType[name], reverse_inner=True, reverse_endian=True
    )


def finn_unpack(packed, name, shape):
    return packed_bytearray_to_finnpy(
        packed, DataType[name], shape, reverse_inner=True, reverse_endian=True
    )


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", DATATYPES)
def test_pack_and_unpack_equal_finn(name, shape):
    values = gen_finn_dt_tensor(DataType[name], shape).astype(np.float32)
    dtype = packing.datatype(name)
    packed = packing.pack(values, dtype)
    expected = np.ascontiguousarray(finn_pack(values, name))
    assert packed.dtype == np.uint8 and packed.shape == expected.shape
    assert np.array_equal(packed, expected)
    unpacked = packing.unpack(packed, dtype, shape[-1])
    assert unpacked.dtype == np.float32
    assert np.array_equal(unpacked, finn_unpack(expected, name, shape))
    assert np.array_equal(unpacked, values)


@pytest.mark.parametrize("name", ["UINT8", "INT8", "BINARY", "INT4"])
def test_unpack_of_random_bytes_equals_finn(name):
    """Arbitrary bytes from the DMA (padding bits set too) unpack as FINN unpacks them."""
    dtype, count = packing.datatype(name), 6
    raw = np.random.default_rng(3).integers(0, 256, (5, packing.packed_bytes(count, dtype)))
    raw = raw.astype(np.uint8)
    expected = finn_unpack(raw, name, (5, count))
    assert np.array_equal(packing.unpack(raw, dtype, count), expected)


def test_native_integer_containers_pack_like_floats():
    """FINN's driver hands UINT8 input as uint8 arrays (its fast path); same bytes as ours."""
    values = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3)).astype(np.uint8)
    packed = packing.pack(values, packing.datatype("UINT8"))
    assert np.array_equal(packed, finn_pack(values, "UINT8"))


def test_datatype_ranges_and_errors():
    assert (packing.datatype("INT4").min, packing.datatype("INT4").max) == (-8, 7)
    assert (packing.datatype("UINT3").min, packing.datatype("UINT3").max) == (0, 7)
    assert packing.datatype("BIPOLAR").allowed(np.array([-1, 0, 1])).tolist() == [1, 0, 1]
    for name in ("FLOAT32", "FIXED<8,4>", "TERNARY", "INT0", "UINT64"):
        with pytest.raises(ValueError, match="BINARY, BIPOLAR, UINTn and INTn"):
            packing.datatype(name)
    with pytest.raises(ValueError, match="not UINT2"):
        packing.pack(np.array([[1.0, 4.0]]), packing.datatype("UINT2"))
    with pytest.raises(ValueError, match="expected uint8 with 2 bytes"):
        packing.unpack(np.zeros((1, 3), np.uint8), packing.datatype("INT4"), 3)
