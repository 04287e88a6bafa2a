"""Weight memory of a Darknet detector against the part's BRAM, from the cfg alone."""

import pytest

from modules.hardware.detector_fit import BRAM36_BITS, weight_fit, weight_memory_bits
from modules.models.quant_layers import BitWidths

# first conv 8-bit, a binary conv, a 4-bit conv and the 8-bit head conv (3 x (5 + 2) = 21)
CFG = """[net]
width=64
height=64
channels=3

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=relu

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
binary=1
filters=256
size=3
stride=1
pad=1
activation=relu

[convolutional]
batch_normalize=1
filters=512
size=3
stride=1
pad=1
activation=relu

[convolutional]
filters=21
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=2
num=3
"""
# (out, in, kernel, bits) per conv
CONVS = [(16, 3, 3, 8), (256, 16, 3, 1), (512, 256, 3, 4), (21, 512, 1, 8)]
XC7Z020_BUDGET = 0.9 * 140 * BRAM36_BITS


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "wide.cfg"
    path.write_text(CFG)
    return path


def test_weight_bits_are_filters_channels_kernel_bits(cfg):
    expected = sum(out * inp * k * k * bits for out, inp, k, bits in CONVS)
    body = sum(out * inp * k * k * bits for out, inp, k, bits in CONVS[1:-1])
    assert weight_memory_bits(cfg, BitWidths()) == (expected, body)


def test_too_many_weight_bits_do_not_fit_and_remedies_are_named(cfg):
    fit = weight_fit(cfg, BitWidths())
    assert fit.weight_bits > XC7Z020_BUDGET and not fit.fits and not fit.body_fits
    assert fit.bram_bits == 140 * BRAM36_BITS
    # xck26 (144 BRAM36) is just too small; these three hold the weights, smallest first
    assert fit.parts_that_fit == ["xczu3eg", "xc7z030", "xczu7ev"]
    widest = fit.widest_width_mult
    assert weight_memory_bits(cfg, BitWidths(), widest)[0] <= XC7Z020_BUDGET
    assert weight_memory_bits(cfg, BitWidths(), widest + 0.002)[0] > XC7Z020_BUDGET
    assert "does NOT fit" in fit.statement
    assert f"DETECTOR_WIDTH_MULT <= {widest:g}" in fit.statement
    assert "xc7z030" in fit.statement


def test_binary_weights_fit_where_4_bit_weights_do_not(cfg):
    fit = weight_fit(cfg, BitWidths(weight=1, act=3))
    assert fit.fits and fit.widest_width_mult == 1.0
    assert "the weights fit" in fit.statement
