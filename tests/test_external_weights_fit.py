"""Weights streamed from DRAM in the model side: the DRAM bound of a hand-computable MVAU, the
FPS as the lower bound, the search placing weights off chip only where BRAM/LUTRAM cannot hold
them and the bandwidth can feed them, the config key, and `cfg-summary --fit`."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from brevitas import nn as qnn
from finn_designs import one_mvau_hls
from qonnx.core.modelwrapper import ModelWrapper
from torch import nn

import config
from modules.config_checks import ConfigError, check_values
from modules.dataflow import flow as finn_flow
from modules.dataflow.external_weights import set_external_weights
from modules.hardware import dram
from modules.hardware import estimates as fe
from modules.quantization.export import export_qonnx_model

CLOCK = 100.0
PART = "xc7z020clg400-1"
# round figures so the expected numbers below are computed by hand
PORT = dram.DramPort("test", ddr_width_bits=16, ddr_rate_mts=1000, hp_port_bits=64, efficiency=0.5)


def single_mvau():
    """One MVAU_hls: 8 inputs x 4 outputs, INT2 weights, UINT3 input, INT32 output, SIMD 4,
    PE 2, applied to 5x5 pixels; its weights in DRAM."""
    model = one_mvau_hls(np.ones((8, 4)), 4, 2, [1, 5, 5], "UINT3", "INT2")
    return set_external_weights(model, ["MVAU_hls_0"])


def test_dram_bound_of_a_hand_computed_mvau():
    bound = dram.dram_bound(single_mvau(), PORT, CLOCK)
    # weights 8 x 4 x 2 bits = 64, read once per pixel: 25 times
    weights = 8 * 4 * 2 * 25
    # input: 5 x 5 x (8 / 4) words of 4 x 3 = 12 bits padded to 16; output 5 x 5 x (4 / 2)
    # words of 2 x 32 bits
    io = 5 * 5 * 2 * 16 + 5 * 5 * 2 * 64
    assert bound.layers[0].bits_per_frame == weights
    assert bound.io_bits_per_frame == io
    # usable: 0.5 x min(16 x 1000e6 DDR, 64 x 100e6 HP port) = 3.2e9 bits/s
    assert bound.shared_fps() == pytest.approx(3.2e9 / (weights + io))
    # its own DMA: gcd(64, 64) = 64 bits per cycle at 100 MHz
    assert bound.layers[0].interface_bits == 64
    assert bound.layers[0].dma_fps(CLOCK) == pytest.approx(6.4e9 / weights)
    assert bound.fps() == pytest.approx(3.2e9 / 5600)
    assert "HP port" in bound.limiting()


def test_fps_is_the_lower_bound_and_names_it():
    model = single_mvau()
    # the MVAU takes (8 / 4) x (4 / 2) x 25 = 100 cycles: 1e6 FPS at 100 MHz
    table = fe.layer_table(model, PART)
    assert table.loc["MVAU_hls_0", "cycles"] == 100
    slow = fe.performance(model, table, CLOCK, dram.dram_bound(model, PORT, CLOCK))
    assert slow["fps_compute_bound"] == pytest.approx(1e6)
    assert slow["fps"] == slow["fps_dram_bound"] == pytest.approx(3.2e9 / 5600)
    assert slow["bound"] == "dram"
    wide = dram.DramPort("wide", 64, 4000, 1024, 1.0)  # 102.4 Gbit/s at 100 MHz
    fast = fe.performance(model, table, CLOCK, dram.dram_bound(model, wide, CLOCK))
    # the DMA moves 64 bits a cycle: 6.4e9 / 1600 = 4e6 FPS, still above the compute bound
    assert fast["fps_dram_bound"] == pytest.approx(4e6)
    assert fast["fps"] == pytest.approx(1e6) and fast["bound"] == "compute"


def test_a_dram_bound_below_one_fps_says_by_how_much():
    assert dram.below_one_fps(2.0) is None
    # 16 bits x 500 transfers/s x 0.5 = 4000 bits/s for the MVAU's 5600 bits per frame
    slow = dram.DramPort("slow", 16, 0.0005, 64, 0.5)
    design = fe.estimate(single_mvau(), fe.PartBudget(), CLOCK, 0.9, port=slow)
    summary = design.dram_summary()
    assert summary["bound"] == "dram" and summary["dram_bits_per_frame"] == 5600
    assert "0.714 FPS" in summary["dram_warning"]
    assert "below 1 FPS by a factor of 1.4" in summary["dram_warning"]


def test_a_layer_without_weights_cannot_stream_them():
    model = single_mvau()
    model.graph.node[0].op_type = "Thresholding_hls"
    with pytest.raises(ValueError, match=r"MVAU_hls_0 \(Thresholding_hls\)"):
        set_external_weights(model, ["MVAU_hls_0"])


# ------------------------------------------------------------------ the search on a real design


class ThreeConvs(nn.Module):
    """A small conv, a big one (128 x 128 x 3 x 3 x 4 bits = 590 kbit of weights) and a small
    one, on 8x8 images: only the big layer's weights strain the memories."""

    def __init__(self):
        super().__init__()
        self.quant_in = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.body = nn.Sequential(
            *self.block(3, 128), *self.block(128, 128), *self.block(128, 8, last=True)
        )

    @staticmethod
    def block(cin, cout, last=False):
        conv = qnn.QuantConv2d(cin, cout, 3, padding=1, bias=False, weight_bit_width=4)
        act = qnn.QuantReLU(bit_width=4, return_quant_tensor=not last)
        return conv, nn.BatchNorm2d(cout), act

    def forward(self, x):
        return self.body(self.quant_in(x))


@pytest.fixture(scope="module")
def three_convs(tmp_path_factory):
    out = tmp_path_factory.mktemp("three_convs")
    torch.manual_seed(0)
    model = ThreeConvs().train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randint(0, 256, (8, 3, 8, 8)).float())
    clean = export_qonnx_model(model.eval(), 8, out / "raw.onnx", out / "clean.onnx")
    flow = finn_flow.run_flow(clean, out, PART, target_fps=100, mvau_wwidth_max=216)
    return flow.child


# the design takes about 10k LUT and 23 BRAM36, 18 of them the big layer's: in LUTRAM (590 kbit
# / 64 = 9.2k LUTs) or BRAM it breaks this budget, streamed (a weight DMA, ~1k LUT) it fits
TIGHT = fe.PartBudget(LUT=14_000, BRAM36=8, DSP=220, FF=106_400)


def test_the_search_streams_the_big_layer_when_bram_is_short(three_convs):
    best = fe.best_design(three_convs, TIGHT, 100, CLOCK, 0.9, 216, external="auto", port=PORT)
    # 128 x 128 x 9 x 4 bits, once per pixel of the 8x8 image
    big = 128 * 128 * 9 * 4 * 64
    assert best.external_layers == {"MVAU_1": big}
    assert best.choices["MVAU_1"].endswith("/external")
    assert best.fits
    # at 100 FPS the layer reads 3.8 Gbit/s of the 3.2 Gbit/s usable: the DRAM bound holds
    assert best.performance["fps_dram_bound"] < 100 < best.performance["fps_compute_bound"]
    assert best.performance["bound"] == "dram"
    owners = set(best.blocks["weights_of"].dropna())  # its specialized name: MVAU_hls_<n>
    assert len(owners) == 1 and f"{owners.pop()}_weight_dma" in best.blocks.index


def test_never_keeps_every_weight_on_chip(three_convs):
    best = fe.best_design(three_convs, TIGHT, 100, CLOCK, 0.9, 216, external="never")
    assert best.external_layers == {}
    assert not any(option.endswith("/external") for option in best.choices.values())
    assert not best.fits  # nothing on chip holds the big layer within this budget
    assert best.performance["bound"] == "compute"


def test_a_fitting_layer_moves_only_where_the_bandwidth_has_room(three_convs):
    # on chip it fits with BRAM the highest share (23 of 27 BRAM36)
    snug = fe.PartBudget(LUT=53_200, BRAM36=30, DSP=220, FF=106_400)
    best = fe.best_design(three_convs, snug, 100, CLOCK, 0.9, 216, external="auto", port=PORT)
    assert best.external_layers == {}  # streamed it would need 118 % of PORT's bandwidth
    wide = dram.DramPort("wide", 64, 4000, 1024, 1.0)  # 102 Gbit/s: 4 % of it
    best = fe.best_design(three_convs, snug, 100, CLOCK, 0.9, 216, external="auto", port=wide)
    assert set(best.external_layers) == {"MVAU_1"}  # lowers the highest share (BRAM)
    assert best.fits and best.performance["bound"] == "compute"


def test_forced_layers_stream_and_bad_names_are_errors(three_convs):
    best = fe.best_design(three_convs, TIGHT, 10, CLOCK, 0.9, 216, external=["MVAU_0"], port=PORT)
    assert set(best.external_layers) == {"MVAU_0"}  # the rest stays on chip as forced
    with pytest.raises(ValueError, match=r"Thresholding_0 \(Thresholding\)"):
        fe.option_costs(three_convs, TIGHT, 10, CLOCK, external=["Thresholding_0"], port=PORT)
    with pytest.raises(ValueError, match="not in the design"):
        fe.option_costs(three_convs, TIGHT, 10, CLOCK, external=["MVAU_9"], port=PORT)


# ------------------------------------------------------------------ config and command


def test_external_weights_key_is_checked():
    values = {
        "EXTERNAL_WEIGHTS": "auto",
        "BOARD": "Pynq-Z2",
        "BOARD_PARTS": config.BOARD_PARTS,
        "BOARD_DRAM": config.BOARD_DRAM,
    }
    check_values(values)
    check_values(values | {"EXTERNAL_WEIGHTS": ["MVAU_3"]})
    with pytest.raises(ConfigError, match="EXTERNAL_WEIGHTS = 'sometimes'"):
        check_values(values | {"EXTERNAL_WEIGHTS": "sometimes"})
    with pytest.raises(ConfigError, match="EXTERNAL_WEIGHTS.*BOARD_DRAM figures"):
        check_values(values | {"BOARD_DRAM": {}})
    with pytest.raises(ConfigError, match="BOARD_DRAM"):
        check_values(values | {"BOARD_DRAM": {"Pynq-Z2": {"efficiency": 2}}})
    port = dram.port_from_config(SimpleNamespace(BOARD="Pynq-Z2", BOARD_DRAM=config.BOARD_DRAM))
    # 16 bits x 1050 MT/s DDR3, 64-bit HP port at 100 MHz: the HP port is the narrower link
    assert port.usable_bits_per_s(100) == pytest.approx(0.75 * 6.4e9)
    assert config.EXTERNAL_WEIGHTS == "never"  # today's behaviour stays the default


def cfg_summary_fit(capsys, cfg, *settings):
    from modules.cli import main

    argv = ["cfg-summary", str(cfg), "--img-size", "16", "--fit", "--json", "--set", *settings]
    code = main([*argv, "TARGET_FPS=100"])
    return code, json.loads(capsys.readouterr().out)["fit"]


def test_cfg_summary_fit_on_a_tiny_image(capsys, tmp_path):
    from test_darknet import TINY_CFG

    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    code, fit = cfg_summary_fit(capsys, cfg, "EXTERNAL_WEIGHTS=auto")
    assert code == 0 and fit["fits"] and fit["external_layers"] == {}  # all fits on chip
    assert len(fit["frontier"]) == 1  # the first target fits
    assert fit["fps"] == fit["fps_compute_bound"] >= 100 and fit["bound"] == "compute"
    assert set(fit["resources"]) == {"LUT", "FF", "BRAM36", "DSP"}
    assert all(row["fits"] for row in fit["resources"].values())
    code, fit = cfg_summary_fit(capsys, cfg, "EXTERNAL_WEIGHTS=['MVAU_0']")
    # the first conv: 3 x 3 x 3 x 8 weights of 8 bits, read for each of the 16 x 16 pixels
    assert code == 0 and fit["external_layers"] == {"MVAU_0": 3 * 3 * 3 * 8 * 8 * 16 * 16}
    assert fit["fps"] == min(fit["fps_compute_bound"], fit["fps_dram_bound"])


def test_compile_reports_the_bound_and_streams_named_layers(tmp_path, capsys):
    from test_compile_cli import MODELS, compiled, export_raw

    from modules.cli import main

    _, report, _ = compiled("tfc_w1a1")  # EXTERNAL_WEIGHTS "never": today's design
    assert report["external_layers"] == {} and report["dram_bits_per_frame"] == 0
    assert report["bound"] == "compute" and report["fps_dram_bound"] is None
    assert report["fps_compute_bound"] == report["fps"]
    build, shape = MODELS["tfc_w1a1"]
    model = export_raw(build(), shape, tmp_path / "tfc.onnx")
    capsys.readouterr()  # torch.onnx's export progress
    argv = ["compile", str(model), "--out", str(tmp_path / "out"), "--target-fps", "1000"]
    code = main([*argv, "--json", "--set", "EXTERNAL_WEIGHTS=['MVAU_0']"])
    streamed = json.loads(capsys.readouterr().out)
    assert code == 0 and streamed["hw_only"]
    # TFC's first layer: 784 x 64 binary weights, read once per frame (no pixels)
    assert streamed["external_layers"] == {"MVAU_0": 784 * 64}
    assert streamed["dram_bits_per_frame"] > 784 * 64  # plus the input and output DMAs
    assert streamed["fps"] == min(streamed["fps_compute_bound"], streamed["fps_dram_bound"])
    assert streamed["totals"]["BRAM36"] < report["totals"]["BRAM36"]


def test_notebook_statement_names_the_bound_and_qnn_mo_pynq():
    from modules.hardware.external_weights_report import (
        QNN_MO_PYNQ_TINIER_YOLO,
        external_weights_statement,
    )

    design = fe.estimate(single_mvau(), fe.PartBudget(), CLOCK, 0.9, port=PORT)
    text = external_weights_statement(design, 0.9, "tinier-yolo")
    assert "dram-bound" in text and "MVAU_hls_0 (0 Mbit/frame)" in text
    assert "139.4 ms" in text  # QNN-MO-PYNQ's hidden layers on the PYNQ-Z1
    assert QNN_MO_PYNQ_TINIER_YOLO["accelerator_fps"] == pytest.approx(1e6 / 139_381)
    assert "QNN-MO-PYNQ" not in external_weights_statement(design, 0.9, "dfire-lpyolo")
    # demo-tinier's cfg (tinier-yolo with a 2-class head) gets the published figure beside too
    assert "139.4 ms" in external_weights_statement(design, 0.9, "tinier-yolo-dfire")


def test_a_trained_detector_is_fitted_at_the_fit_size_with_its_own_weights(tmp_path):
    from modules.hardware.detector_fit import calibrated_detector, config_fit
    from modules.models.quant_layers import BitWidths

    bits = BitWidths(weight=1, act=3)
    trained = calibrated_detector("tinier-yolo-dfire", bits, 0.125, 32, seed=7)  # stand-in
    values = config.apply("demo-tinier", TARGET_FPS=200)
    config.apply()
    cfg = SimpleNamespace(**values)
    fit = config_fit("tinier-yolo-dfire", bits, 0.125, 64, cfg, str(tmp_path), model=trained)
    clean = ModelWrapper(str(tmp_path / "clean.onnx"))
    assert clean.get_tensor_shape(clean.graph.input[0].name) == [1, 3, 64, 64]
    first = clean.get_initializer(clean.graph.node[1].input[0])  # the first conv's weights
    assert np.array_equal(first, trained.layers[0].conv.weight.detach().numpy())
    assert fit["img_size"] == 64 and fit["external_weights"] == "auto" and fit["frontier"]
    assert fit["fits"] and fit["fps"] > 0


def test_options_costed_without_stitching_equal_the_stitched_design(three_convs, monkeypatch):
    # the search costs every option after the first from the layers alone (layer_table);
    # stitching each option's whole design must give the same layer and weight-DMA costs
    search = {"mvau_wwidth_max": 216, "external": "auto", "port": PORT}
    fast, fast_rest = fe.option_costs(three_convs, TIGHT, 100, CLOCK, **search)

    def stitched(design, part, names, coefficients=None):
        return fe.resources.block_table(design, part, fifo_method=fe.FIFO_DEFAULT)

    monkeypatch.setattr(fe.resources, "layer_table", stitched)
    full, full_rest = fe.option_costs(three_convs, TIGHT, 100, CLOCK, **search)
    assert set(fast) == set(full) and any(option.endswith("/external") for option in fast)
    for option in full:
        pd.testing.assert_frame_equal(fast[option], full[option])
    pd.testing.assert_series_equal(fast_rest, full_rest)
