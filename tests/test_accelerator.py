import json
import types

import numpy as np
import pytest
from finn.util.data_packing import finnpy_to_packed_bytearray
from qonnx.core.datatype import DataType
from qonnx.util.basic import gen_finn_dt_tensor

from modules.board import accelerator
from modules.board.accelerator import (
    BoardAccelerator,
    EmulatedAccelerator,
    make_accelerator,
    pack_tensor,
    unpack_tensor,
)
from modules.deployment.package import packed_shape
from modules.run_paths import RunPaths

RNG = np.random.default_rng(0)


def _port(datatype, normal, folded, **extra):
    return {
        "finn_datatype": datatype,
        "shape_normal": normal,
        "shape_folded": folded,
        "shape_packed": packed_shape(folded, datatype),
        **extra,
    }


def make_spec(out_datatype="BINARY", in_pe=3, out_pe=1, host_ops=()):
    """io_spec of a 4x4 RGB UINT8 NHWC input and a 2-class output, in io_spec_from_model's
    format (that function is tested on a real FINN graph in test_deploy.py)."""
    return {
        "classes": ["smoke", "fire"],
        "input": _port(
            "UINT8",
            [1, 4, 4, 3],
            [1, 4, 4, 3 // in_pe, in_pe],
            layout="NHWC",
            host_layout="NCHW",
            host_shape=[1, 3, 4, 4],
        ),
        "output": _port(out_datatype, [1, 2], [1, 2 // out_pe, out_pe], host_ops=list(host_ops)),
    }


def finn_pack(values_folded, datatype):
    """FINN's packing exactly as its generated driver calls it."""
    return finnpy_to_packed_bytearray(
        values_folded.astype(np.float32),
        DataType[datatype],
        reverse_inner=True,
        reverse_endian=True,
    )


def images(count):
    return RNG.integers(0, 256, size=(count, 3, 4, 4)).astype(np.float32)


# ------------------------------------------------------------------ packing round trips


@pytest.mark.parametrize("pe", [1, 3])
def test_uint8_input_round_trip(pe):
    port = make_spec(in_pe=pe)["input"]
    x = RNG.integers(0, 256, size=(5, 4, 4, 3)).astype(np.float32)
    packed = pack_tensor(x, port)
    assert packed.dtype == np.uint8 and packed.shape == (5, *port["shape_packed"][1:])
    assert np.array_equal(packed, finn_pack(x.reshape(5, *port["shape_folded"][1:]), "UINT8"))
    assert np.array_equal(unpack_tensor(packed, port), x)


@pytest.mark.parametrize(
    ("datatype", "pe"), [("BINARY", 1), ("BINARY", 2), ("BIPOLAR", 2), ("INT8", 1), ("INT4", 2)]
)
def test_output_round_trip(datatype, pe):
    port = make_spec(datatype, out_pe=pe)["output"]
    y = np.concatenate([gen_finn_dt_tensor(DataType[datatype], (1, 2)) for _ in range(7)])
    packed = pack_tensor(y, port)
    assert np.array_equal(packed, finn_pack(y.reshape(7, *port["shape_folded"][1:]), datatype))
    assert np.array_equal(unpack_tensor(packed, port), y)


# ------------------------------------------------------------------ backends


class FakeDma:
    """Stands in for the board's DMA: records the bytes sent, returns prepared bytes."""

    def __init__(self, reply):
        self.reply = reply
        self.sent = []

    def transfer(self, packed_in):
        self.sent.append(packed_in.copy())
        return self.reply


def test_board_backend_sends_finn_bytes_and_returns_outputs():
    spec = make_spec("BINARY")
    x = images(4)
    known = RNG.integers(0, 2, size=(4, 2)).astype(np.float32)
    dma = FakeDma(finn_pack(known.reshape(4, 2, 1), "BINARY"))
    board = BoardAccelerator(spec, dma=dma)
    outputs = board.run(x)
    assert np.array_equal(outputs, known)
    nhwc_folded = x.transpose(0, 2, 3, 1).reshape(4, 4, 4, 1, 3)
    assert np.array_equal(dma.sent[0], finn_pack(nhwc_folded, "UINT8"))
    assert np.array_equal(board.decisions(outputs), known == 1)


def test_board_backend_needs_a_bitfile():
    with pytest.raises(ValueError, match="bitfile"):
        BoardAccelerator(make_spec())


def channel_means_positive(x_nhwc):
    """A known stand-in for the HW graph: per image, [mean(R) > 128, mean(B) > 128]."""
    assert x_nhwc.shape == (1, 4, 4, 3)
    means = x_nhwc.mean(axis=(1, 2))[:, [0, 2]]
    return (means > 128).astype(np.float32)


def test_emulated_backend_equals_the_function():
    spec = make_spec("BINARY")
    x = images(6)
    emulator = EmulatedAccelerator(spec, channel_means_positive)
    direct = np.concatenate([channel_means_positive(img[None].transpose(0, 2, 3, 1)) for img in x])
    assert np.array_equal(emulator.run(x), direct)
    assert emulator.is_emulated and emulator.name == "emulator"


def test_run_checks_images():
    emulator = EmulatedAccelerator(make_spec(), channel_means_positive)
    with pytest.raises(ValueError, match="UINT8"):
        emulator.run(images(1) / 3)
    with pytest.raises(ValueError, match="NCHW"):
        emulator.run(np.zeros((1, 4, 4, 3)))
    assert emulator.run(images(1)[0]).shape == (1, 2)  # a single CHW image is a batch of one


# ------------------------------------------------------------------ post-processing


def test_decisions_for_each_output_kind():
    binary = make_spec(
        "BINARY", host_ops=[{"op": "Mul", "value": [2.0]}, {"op": "Add", "value": [-1.0]}]
    )
    out = np.array([[0.0, 1.0], [1.0, 1.0]])
    assert accelerator.decisions(out, binary).tolist() == [[False, True], [True, True]]
    assert accelerator.model_outputs(out, binary).tolist() == [[-1, 1], [1, 1]]
    bipolar = make_spec("BIPOLAR")
    assert accelerator.decisions(np.array([[-1.0, 1.0]]), bipolar).tolist() == [[False, True]]
    logits = make_spec("INT8", host_ops=[{"op": "Mul", "value": [0.5, 0.25]}])
    ints = np.array([[-3.0, 4.0], [2.0, -1.0]])  # logits [-1.5, 1.0], [1.0, -0.25]
    assert accelerator.decisions(ints, logits).tolist() == [[False, True], [True, False]]
    # threshold 0.75 needs logit >= log(3) = 1.0986
    assert accelerator.decisions(ints, logits, threshold=0.75).tolist() == [[False] * 2] * 2
    with pytest.raises(ValueError, match="threshold"):
        accelerator.decisions(ints, logits, threshold=1.0)


def test_throughput_is_labelled():
    emulator = EmulatedAccelerator(make_spec(), channel_means_positive)
    result = accelerator.measure_throughput(emulator, images(3))
    assert result["images"] == 3 and result["images_per_s"] > 0
    assert result["label"].startswith("emulated")
    board = BoardAccelerator(make_spec(), dma=FakeDma(np.zeros((3, 2, 1), np.uint8)))
    assert accelerator.measure_throughput(board, images(3))["label"].startswith("board")


# ------------------------------------------------------------------ choosing the backend


@pytest.fixture
def layout(tmp_path):
    spec = make_spec()
    spec["io_shape_dict"] = {"idma_names": ["idma0"], "odma_names": ["odma0"]}
    paths = RunPaths(tmp_path)
    paths.deploy.mkdir()
    paths.io_spec.write_text(json.dumps(spec))
    return paths.board_layout()


def _cfg(backend="auto"):
    return types.SimpleNamespace(ACCELERATOR_BACKEND=backend)


def test_auto_falls_back_to_the_emulator(layout, monkeypatch, capsys):
    monkeypatch.setattr(accelerator, "pynq_available", lambda: False)
    chosen = make_accelerator(_cfg(), layout, hw_graph_fn=channel_means_positive)
    assert isinstance(chosen, EmulatedAccelerator)
    assert "pynq is not installed" in capsys.readouterr().out
    with pytest.raises(ValueError, match="hw_graph_fn.*pynq"):
        make_accelerator(_cfg(), layout)
    with pytest.raises(RuntimeError, match="board backend requested.*pynq.*bitfile"):
        make_accelerator(_cfg("board"), layout)


def test_auto_picks_the_board_and_override_wins(layout, monkeypatch):
    layout.bitfile_dir.mkdir()
    (layout.bitfile_dir / "finn-accel.bit").write_bytes(b"bit")
    monkeypatch.setattr(accelerator, "pynq_available", lambda: True)
    opened = []

    class FakeDriverDma(FakeDma):
        def __init__(self, bitfile, io_shape_dict, runtime_weight_dir):
            opened.append((bitfile.name, io_shape_dict["idma_names"], runtime_weight_dir.name))
            super().__init__(reply=None)

    monkeypatch.setattr(accelerator, "FinnDriverDma", FakeDriverDma)
    chosen = make_accelerator(_cfg(), layout, hw_graph_fn=channel_means_positive)
    assert isinstance(chosen, BoardAccelerator) and not chosen.is_emulated
    assert opened == [("finn-accel.bit", ["idma0"], "runtime_weights")]
    emulated = make_accelerator(
        _cfg(), layout, hw_graph_fn=channel_means_positive, backend="emulator"
    )
    assert isinstance(emulated, EmulatedAccelerator)


def test_unknown_backend_and_missing_spec(layout, tmp_path):
    with pytest.raises(ValueError, match="ACCELERATOR_BACKEND"):
        make_accelerator(_cfg("fpga"), layout)
    with pytest.raises(FileNotFoundError, match="io_spec.json"):
        make_accelerator(_cfg(), RunPaths(tmp_path / "nothing").board_layout())
