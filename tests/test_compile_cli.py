"""`firesmoke compile` on QONNX models this repo did not train (raw Brevitas exports, no
hand-written clean-up) and `firesmoke emulate` on the compiled design.

Models: brevitas_examples' TFC W1A1 (MNIST-shaped, float input), a small conv net that reads
floats and pools with a ReduceMean, and the same net with a LeakyReLU in the middle, which
FINN cannot map (the blocker the error must name).
"""

import contextlib
import functools
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from brevitas import nn as qnn
from brevitas.export import export_qonnx
from qonnx.core.modelwrapper import ModelWrapper
from torch import nn

from modules import cli
from modules.commands import emulate as emulate_command
from modules.dataflow.stage_check import despecialize, with_child
from modules.hardware import resources
from modules.hardware.compile import ACCELERATOR_FILE, load_design
from modules.quantization.equivalence import onnx_stage


def export_raw(model, shape, path):
    """Brevitas -> QONNX as exported (dynamo, weights in path.data), nothing cleaned up."""
    model.eval()
    export_qonnx(model, torch.zeros(shape), str(path))
    return path


class FloatInputNet(nn.Module):
    """Float input quantized by a signed 8-bit quantizer, conv, ReLU, mean over H and W
    (exported as ReduceMean), a quantized linear head; `blocker` puts a LeakyReLU between
    the two convs."""

    def __init__(self, blocker=False):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(3, 8, 3, padding=1, bias=False, weight_bit_width=4)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = (
            nn.LeakyReLU(0.1) if blocker else qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        )
        self.quant_mid = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.conv2 = qnn.QuantConv2d(8, 8, 3, padding=1, bias=False, weight_bit_width=4)
        self.bn2 = nn.BatchNorm2d(8)
        self.act2 = qnn.QuantReLU(bit_width=4, return_quant_tensor=False)
        self.quant_pool = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.head = qnn.QuantLinear(8, 2, bias=False, weight_bit_width=4)

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(self.quant_in(x))))
        x = self.act2(self.bn2(self.conv2(self.quant_mid(x))))
        x = torch.mean(x, dim=(2, 3), keepdim=True).flatten(1)
        return self.head(self.quant_pool(x))


def float_input_net(blocker=False):
    torch.manual_seed(0)
    model = FloatInputNet(blocker)
    model.train()
    with torch.no_grad():  # BatchNorm and activation statistics from random float images
        for _ in range(4):
            model(torch.randn(8, 3, 16, 16))
    return model.eval()


def tfc():
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(0)
    net, _ = model_with_cfg("tfc_1w1a", pretrained=False)
    return net.eval()


MODELS = {
    "tfc_w1a1": (tfc, (1, 1, 28, 28)),
    "float_reducemean": (float_input_net, (1, 3, 16, 16)),
    "leaky_blocker": (functools.partial(float_input_net, blocker=True), (1, 3, 16, 16)),
}


@functools.cache
def compiled(name):
    """(exit code, JSON report, out dir) of `firesmoke compile --json` on MODELS[name]."""
    build, shape = MODELS[name]
    work = Path(tempfile.mkdtemp(prefix=f"compile_{name}_"))
    model_path = export_raw(build(), shape, work / "model.onnx")
    out = work / "compiled"
    argv = ["compile", str(model_path), "--out", str(out), "--target-fps", "1000", "--json"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(argv)
    report = json.loads(printed.getvalue())  # stdout holds the JSON report and nothing else
    assert report == json.loads((out / "compile.json").read_text())
    return code, report, out


def test_tfc_compiles_to_one_hw_partition():
    code, report, out = compiled("tfc_w1a1")
    assert code == 0 and report["hw_only"], report["error"]
    assert report["input_dtype"] == "FLOAT32"  # TFC's first quantizer reads floats
    assert report["stages"]["partition_child"].get("MVAU", 0) == 4
    assert report["fps"] > 0 and isinstance(report["fits"], bool)
    totals = report["totals"]
    assert set(totals) == {"LUT", "FF", "BRAM36", "DSP", "finn_per_layer"}
    assert totals["LUT"] > 0 and totals["FF"] > 0  # the whole-design model has FF
    assert totals["finn_per_layer"]["FF"] is None  # FINN has no FF model per layer
    assert (out / "design.onnx").is_file()


def test_whole_design_totals_add_what_finn_leaves_out():
    """FINN's per-layer sum has no FIFOs, width converters, DMA or AXI shell: the
    whole-design figure of a conv net (FIFOs between every layer) is larger."""
    _, report, out = compiled("float_reducemean")
    totals, finn = report["totals"], report["totals"]["finn_per_layer"]
    accelerator = ModelWrapper(str(out / ACCELERATOR_FILE))
    assert not accelerator.get_nodes_by_op_type("StreamingFIFO")  # FINN's estimate has none
    stitched = resources.stitched_design(accelerator, report["settings"]["part"])
    assert len(stitched.get_nodes_by_op_type("StreamingFIFO_rtl")) >= len(accelerator.graph.node)
    whole = resources.whole_design_totals(accelerator, report["settings"]["part"])
    assert {name: totals[name] for name in whole} == pytest.approx(whole)
    assert totals["LUT"] > finn["LUT"] > 0
    # our layer memories follow Yosys' mapping, not FINN's per-layer BRAM, so compare BRAM
    # with the layers' own rows: the whole design adds the FIFOs, converters and DMAs
    blocks = resources.block_table(accelerator, report["settings"]["part"])
    added = ["FIFO", "StreamingDataWidthConverter", "DMA", "AXI"]
    layers = blocks.loc[~blocks["type"].isin(added), "BRAM36"].sum()
    dmas = blocks.loc[blocks["type"] == "DMA", "BRAM36"].sum()
    assert totals["FF"] > 0 and dmas > 0 and totals["BRAM36"] >= layers + dmas


def test_reducemean_pooling_and_float_input_need_no_prepare():
    code, report, _ = compiled("float_reducemean")
    assert report["stages"]["qonnx"].get("ReduceMean", 0) == 1  # as exported
    assert report["input_dtype"] == "FLOAT32"
    assert code == 0 and report["hw_only"], report["error"]
    assert report["stages"]["partition_child"].get("GlobalAccPool", 0) == 1


def test_blocker_is_the_leaky_relu_not_a_transpose():
    code, report, _ = compiled("leaky_blocker")
    assert code == 1 and report["hw_only"] is False
    assert report["blocker"]["op_type"] == "LeakyRelu"
    assert report["error"].index("LeakyRelu") < report["error"].index("other non-HW")
    assert report["fps"] is None and report["fits"] is False


def test_emulate_runs_the_design_bit_exact(tmp_path):
    _, _, out = compiled("float_reducemean")
    inputs = np.random.default_rng(0).normal(size=(5, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", inputs)
    argv = ["emulate", str(out), "--inputs", str(tmp_path / "x.npy"), "--out"]
    assert cli.main([*argv, str(tmp_path / "y.npy")]) == 0
    # execute_onnx runs _hls/_rtl layers only in cppsim/rtlsim: run their generic versions
    accelerator = despecialize(ModelWrapper(str(out / ACCELERATOR_FILE)))
    design = with_child(load_design(out), accelerator, tmp_path / "generic.onnx")
    reference = onnx_stage(design)(inputs[:2])
    emulated = np.load(tmp_path / "y.npy")
    assert emulated.shape[0] == 5
    assert np.array_equal(emulated[:2].reshape(reference.shape), reference)


def test_emulate_refuses_inputs_outside_the_input_datatype(tmp_path):
    design_dir = tmp_path / "uint8"
    build, shape = MODELS["tfc_w1a1"]
    model_path = export_raw(build(), shape, tmp_path / "tfc.onnx")
    argv = ["compile", str(model_path), "--out", str(design_dir), "--input-dtype", "UINT8"]
    assert cli.main(argv) == 0
    np.save(tmp_path / "x.npy", np.full((2, 1, 28, 28), 300.0, dtype=np.float32))
    with pytest.raises(SystemExit, match="UINT8.*0..255.*300"):
        cli.main(["emulate", str(design_dir), "--inputs", str(tmp_path / "x.npy"), "--out", "y"])


def test_missing_files_give_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match=r"compile: no model file .*nothing\.onnx"):
        cli.main(["compile", str(tmp_path / "nothing.onnx"), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match=r"design\.onnx not found; compile the model first"):
        cli.main(["emulate", str(tmp_path), "--inputs", "x.npy", "--out", "y.npy"])


def test_emulate_refuses_inputs_of_another_shape(tmp_path):
    _, _, out = compiled("float_reducemean")
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 8, 8), dtype=np.float32))
    with pytest.raises(SystemExit, match=r"takes \(N, 3, 16, 16\); got .*\(2, 3, 8, 8\)"):
        cli.main(["emulate", str(out), "--inputs", str(tmp_path / "x.npy"), "--out", "y.npy"])


def compile_json(model_path, out):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(["compile", str(model_path), "--out", str(out), "--json"])
    return code, json.loads(printed.getvalue())


def test_a_float_model_whose_convs_stay_on_the_host_is_not_a_success(tmp_path):
    """A plain torch Conv-ReLU-GAP-Linear export: FINN puts only an Add on the accelerator."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 2),
    ).eval()  # fmt: skip
    torch.onnx.export(model, torch.zeros(1, 3, 16, 16), str(tmp_path / "f.onnx"), dynamo=False)
    code, report = compile_json(tmp_path / "f.onnx", tmp_path / "out")
    assert code == 1 and report["hw_only"] is False
    where = report["placement"]
    assert where["accelerator_mac_share"] == 0.0
    # conv: 16 * 16 * 8 outputs, each 3 * 3 * 3 MACs; linear: 2 outputs of 8
    assert sorted(n["macs"] for n in where["host_compute_nodes"]) == [8 * 2, 16 * 16 * 8 * 27]
    assert {n["op_type"] for n in where["host_compute_nodes"]} == {"MatMul"}
    for node in where["host_compute_nodes"]:
        assert node["name"] in report["error"]
    assert "no quantizers" in report["error"]


def test_a_quantized_model_runs_all_its_macs_on_the_accelerator():
    _, report, _ = compiled("tfc_w1a1")
    where = report["placement"]
    assert where["host_compute_nodes"] == [] and where["accelerator_mac_share"] == 1.0
    assert where["accelerator_macs"] == 784 * 64 + 64 * 64 + 64 * 64 + 64 * 10


def test_an_empty_or_text_onnx_file_is_named_not_a_traceback(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "text.onnx").write_text("this is not a model\n")
    with pytest.raises(SystemExit, match=r"empty\.onnx is an empty file, not an ONNX model"):
        cli.main(["compile", str(tmp_path / "empty.onnx"), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match=r"text\.onnx is not an ONNX model"):
        cli.main(["compile", str(tmp_path / "text.onnx"), "--out", str(tmp_path / "o")])


def emulate(design, inputs, out):
    return cli.main(["emulate", str(design), "--inputs", str(inputs), "--out", str(out)])


def test_emulate_names_a_transposed_array(tmp_path):
    _, _, out = compiled("float_reducemean")
    np.save(tmp_path / "x.npy", np.zeros((4, 16, 16, 3), dtype=np.float32))  # NHWC, same size
    with pytest.raises(SystemExit, match=r"takes \(N, 3, 16, 16\).*transposed.*\(0, 3, 1, 2\)"):
        emulate(out, tmp_path / "x.npy", tmp_path / "y.npy")
    assert not (tmp_path / "y.npy").exists()


def test_emulate_refuses_an_empty_batch_and_bad_npy_files(tmp_path):
    _, _, out = compiled("float_reducemean")
    np.save(tmp_path / "none.npy", np.zeros((0, 3, 16, 16), dtype=np.float32))
    with pytest.raises(SystemExit, match="empty batch"):
        emulate(out, tmp_path / "none.npy", tmp_path / "y.npy")
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(SystemExit, match=r"empty\.npy: empty file"):
        emulate(out, tmp_path / "empty.npy", tmp_path / "y.npy")
    (tmp_path / "text.npy").write_text("1, 2, 3\n")
    with pytest.raises(SystemExit, match=r"text\.npy: not a \.npy file") as error:
        emulate(out, tmp_path / "text.npy", tmp_path / "y.npy")
    assert "allow_pickle" not in str(error.value)


def test_emulate_checks_out_is_writable_before_running(tmp_path, monkeypatch):
    _, _, out = compiled("float_reducemean")
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 16, 16), dtype=np.float32))
    ran = []
    monkeypatch.setattr(emulate_command.Emulator, "__call__", lambda *a: ran.append(a))
    with pytest.raises(SystemExit, match="no folder"):
        emulate(out, tmp_path / "x.npy", tmp_path / "missing" / "y.npy")
    with pytest.raises(SystemExit, match="is a folder"):
        emulate(out, tmp_path / "x.npy", tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if not os.access(locked, os.W_OK):  # root writes anywhere: nothing to check then
        with pytest.raises(SystemExit, match="cannot be written"):
            emulate(out, tmp_path / "x.npy", locked / "y.npy")
    assert ran == []
