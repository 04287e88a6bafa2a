"""Darknet cfg importer, detector models (FP32 and Brevitas) and .weights files."""

import json
import types

import numpy as np
import pytest
import torch

from modules.models.darknet import (
    build_detector,
    build_detector_from_config,
    detector_spec,
    plan_layers,
    shared_quantizers,
)
from modules.models.darknet_cfg import DarknetCfgError
from modules.models.darknet_weights import load_darknet_weights, save_darknet_weights
from modules.models.quant_layers import BitWidths, QuantLayers

TINY_CFG = """[net]
width=64
height=64
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
binary=1
filters=16
size=3
stride=1
pad=1
activation=relu

[maxpool]
size=2
stride=1

[route]
layers=-1

[convolutional]
filters=14
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=1,2
anchors=5,6, 7,8, 9,10
classes=2
num=3
"""


@pytest.fixture
def tiny_cfg_file(tmp_path):
    path = tmp_path / "tiny.cfg"
    path.write_text(TINY_CFG)
    return path


def images(count, size, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, size, size), generator=generator).float()


def test_tiny_cfg_shapes_spec_and_head(tiny_cfg_file):
    plans, spec = plan_layers(tiny_cfg_file)
    assert [p.type for p in plans] == ["conv", "maxpool", "conv", "maxpool", "route", "conv"]
    assert [p.out_shape for p in plans][-1] == (14, 32, 32)
    assert spec.kind == "yolo" and spec.classes == 2 and spec.stride == 2
    assert spec.anchors == ((7.0, 8.0), (9.0, 10.0))  # mask 1,2 of the three pairs
    assert plans[2].binary and plans[0].role == "first" and plans[-1].role == "last"
    assert plans[0].replacement == "ReLU" and "MaxPool(3, 1, 1)" in plans[3].replacement
    model = build_detector(tiny_cfg_file).eval()
    assert model(images(2, 64)).shape == (2, 14, 32, 32)
    assert model(images(1, 48)).shape == (1, 14, 24, 24)  # any size that the stride divides


@pytest.mark.parametrize("name", ["tinier-yolo", "dfire-lpyolo"])
def test_shipped_cfgs_build_fp32_and_quantized(name):
    spec = detector_spec(name)
    fp32 = build_detector(name).eval()
    quant = build_detector(name, QuantLayers(BitWidths(weight=1, act=3))).eval()
    missing, unexpected = quant.load_state_dict(fp32.state_dict(), strict=False)
    assert not unexpected and all("quant" in key for key in missing)  # names match by design
    with torch.no_grad():
        out = quant(images(1, 64))
    assert out.shape == (1, spec.head_channels, 64 // spec.stride, 64 // spec.stride)


def test_tinier_yolo_is_seed_004s_network():
    plans, spec = plan_layers("tinier-yolo")
    convs = [p for p in plans if p.type == "conv"]
    assert [p.filters for p in convs] == [16, 64, 64, 128, 256, 512, 512, 512, 125]
    assert [p.binary for p in convs] == [False] + [True] * 7 + [False]
    assert spec.kind == "region" and spec.num_anchors == 5 and spec.classes == 20
    assert spec.anchors[0] == pytest.approx((1.08 * 32, 1.19 * 32))  # grid cells -> pixels
    assert plans[-1].out_shape == (125, 13, 13)
    hidden_bits = sum(p.weights for p in convs[1:-1])  # 1 bit each
    assert 6.2e6 < hidden_bits < 6.4e6


def test_dfire_lpyolo_widths_and_head():
    plans, spec = plan_layers("dfire-lpyolo")
    convs = [p.filters for p in plans if p.type == "conv"]
    assert convs == [8, 8, 16, 32, 56, 104, 208, 56, 104, 21]
    assert sum(p.type == "maxpool" for p in plans) == 5
    assert spec.head_channels == 21 and spec.grid() == (13, 13)
    assert spec.anchors == ((10.0, 14.0), (23.0, 27.0), (37.0, 58.0))
    assert spec.anchors_at(208) == ((5.0, 7.0), (11.5, 13.5), (18.5, 29.0))  # half the size


def test_width_mult_keeps_the_head(tiny_cfg_file):
    plans, _ = plan_layers(tiny_cfg_file, width_mult=0.5)
    assert [p.filters for p in plans if p.type == "conv"] == [4, 8, 14]


def test_quantized_head_is_an_integer_tensor_times_a_scale(tiny_cfg_file):
    torch.manual_seed(0)
    model = build_detector(tiny_cfg_file, QuantLayers(BitWidths())).eval()
    head = model.layers[-1].act
    with torch.no_grad():
        out = model(images(2, 64))
    scale = float(head.act_quant.scale())
    levels = out / scale
    assert torch.allclose(levels, levels.round(), atol=1e-3)
    assert levels.min() >= -128 and levels.max() <= 127
    assert model.layers[2].conv.weight_quant.bit_width() == 1  # cfg binary=1
    assert model.layers[0].conv.weight_quant.bit_width() == 8  # first layer
    assert model.layers[-1].conv.weight_quant.bit_width() == 8  # last layer


def test_no_replacements_names_the_layer_and_line(tiny_cfg_file):
    fp32 = build_detector(tiny_cfg_file, finn_replacements=False)
    assert isinstance(fp32.layers[0].act, torch.nn.LeakyReLU)  # FP32 builds the cfg as is
    with pytest.raises(ValueError, match=r"layer 0 \(conv, cfg line 6\).*leaky.*ReLU"):
        build_detector(tiny_cfg_file, QuantLayers(BitWidths()), finn_replacements=False)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[maxpool]", "[shortcut]"), r"tiny.cfg:14 \[shortcut\]: unknown section"),
        (("binary=1", "xnor=1"), r"tiny.cfg:20 \[convolutional\]: unknown key 'xnor'"),
        (("activation=relu", "activation=mish"), r"tiny.cfg:25 .*activation=mish"),
        (("filters=14", "filters=15"), r"15 filters; 2 anchors x \(5 \+ 2 classes\) = 14"),
        ((TINY_CFG[TINY_CFG.index("[yolo]") :], ""), r"0 \[region\]/\[yolo\] heads"),
    ],
)
def test_bad_cfgs_name_file_and_line(tmp_path, edit, message):
    path = tmp_path / "tiny.cfg"
    path.write_text(TINY_CFG.replace(*edit, 1))
    with pytest.raises(DarknetCfgError, match=message):
        plan_layers(path)


def test_unknown_key_in_the_head_section_is_an_error(tmp_path):
    path = tmp_path / "tiny.cfg"
    path.write_text(TINY_CFG + "colour=red\n")
    with pytest.raises(DarknetCfgError, match=r":46 \[yolo\]: unknown key 'colour'"):
        plan_layers(path)


@pytest.mark.parametrize(("major", "minor", "seen_bytes"), [(0, 2, 8), (0, 1, 4), (1000, 5, 4)])
def test_weights_round_trip(tmp_path, tiny_cfg_file, major, minor, seen_bytes):
    torch.manual_seed(0)
    source = build_detector(tiny_cfg_file)
    for bn in (m for m in source.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-1, 1)  # non-default statistics must come through too
        bn.running_var.uniform_(0.5, 2)
        bn.bias.data.uniform_(-1, 1)
    path = save_darknet_weights(source, tmp_path / "m.weights", major, minor, 3, seen=123456)
    floats = sum(p.numel() for p in source.parameters()) + 2 * (8 + 16)  # + BN mean, var
    assert path.stat().st_size == 12 + seen_bytes + 4 * floats
    torch.manual_seed(1)
    target = build_detector(tiny_cfg_file, QuantLayers(BitWidths()))
    header = load_darknet_weights(target, path)
    assert header == {"major": major, "minor": minor, "revision": 3, "seen": 123456}
    target_state = target.state_dict()
    for name, tensor in source.state_dict().items():
        if "num_batches_tracked" not in name:
            assert torch.equal(target_state[name], tensor), name


def test_wrong_length_weights_file_is_named(tmp_path, tiny_cfg_file):
    model = build_detector(tiny_cfg_file)
    path = save_darknet_weights(model, tmp_path / "m.weights")
    path.write_bytes(path.read_bytes()[:-8])
    expected = (path.stat().st_size + 8 - 20) // 4
    message = rf"m.weights: expected {expected} floats .* found {expected - 2}"
    with pytest.raises(ValueError, match=message):
        load_darknet_weights(model, path)
    wider = build_detector(tiny_cfg_file, width_mult=2.0)
    with pytest.raises(ValueError, match="another cfg"):
        load_darknet_weights(wider, save_darknet_weights(model, tmp_path / "ok.weights"))


def test_weights_file_header_is_darknets(tmp_path, tiny_cfg_file):
    path = save_darknet_weights(build_detector(tiny_cfg_file), tmp_path / "m.weights", 0, 2, 0, 7)
    raw = path.read_bytes()
    assert list(np.frombuffer(raw[:12], np.int32)) == [0, 2, 0]
    assert int(np.frombuffer(raw[12:20], np.int64)[0]) == 7


def run_cli(capsys, *argv):
    from modules.cli import main

    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cfg_summary_tinier_yolo_at_w1(capsys):
    widths = [
        "WEIGHT_BIT_WIDTH=1",
        "FIRST_LAYER_WEIGHT_BIT_WIDTH=1",
        "LAST_LAYER_WEIGHT_BIT_WIDTH=1",
    ]
    code, out, _ = run_cli(capsys, "cfg-summary", "tinier-yolo", "--json", "--set", *widths)
    summary = json.loads(out)
    # 3*16*9 + 16*64*9 + 64*64*9 + 64*128*9 + 128*256*9 + 256*512*9 + 2*512*512*9 + 512*125
    assert code == 0 and summary["totals"]["weights"] == 6_377_392
    assert summary["totals"]["weight_memory_bits"] == 6_377_392  # ~6.3 Mbit at W1
    assert summary["totals"]["part_bram_bits"] == 140 * 36 * 1024  # xc7z020: it does not fit
    assert summary["layers"][-1]["output"] == "125x13x13"
    assert summary["totals"]["macs_per_image"] == sum(r["macs"] for r in summary["layers"])
    built = {(n["type"], n["built_as"]) for n in summary["finn"]}
    assert built == {
        ("conv", "ReLU"),
        ("maxpool", "MaxPool(3, 1, 1) after the unsigned ReLU quantizer"),
    }
    assert len(summary["finn"]) == 9  # eight leaky convs and the 2/1 maxpool


def test_cfg_summary_text_and_errors(capsys, tmp_path):
    code, out, _ = run_cli(
        capsys,
        "cfg-summary",
        "dfire-lpyolo",
        "--img-size",
        "64",
        "--set",
        "DARKNET_FINN_REPLACEMENTS=False",
    )
    assert code == 0 and "21x2x2" in out and "MMAC per image" in out and "FINN:" not in out
    code, out, _ = run_cli(
        capsys, "cfg-summary", "tinier-yolo", "--set", "DARKNET_FINN_REPLACEMENTS=False"
    )
    assert "-> error" in out and "BRAM36" in out
    bad = tmp_path / "bad.cfg"
    bad.write_text(TINY_CFG.replace("[route]", "[reorg]"))
    code, _, err = run_cli(capsys, "cfg-summary", str(bad))
    assert code == 2 and "bad.cfg:31 [reorg]: unknown section" in err


CONCAT_CFG = """[net]
width=32
height=32

[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
activation=relu

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=6
size=3
pad=1
activation=relu

[upsample]
stride=2

[route]
layers=-1,0

[convolutional]
filters=7
size=1
activation=linear

[region]
anchors=1,1
classes=2
num=1
"""


def test_concat_branches_share_one_quantizer(tmp_path):
    path = tmp_path / "concat.cfg"
    path.write_text(CONCAT_CFG)
    plans, spec = plan_layers(path)
    assert plans[4].out_shape == (14, 32, 32) and spec.stride == 1
    assert plans[4].replacement == "one quantizer shared by the concatenated branches"
    torch.manual_seed(0)
    model = build_detector(path, QuantLayers(BitWidths())).eval()
    first, second = model.layers[0].act, model.layers[2].act
    assert second.act_quant is first.act_quant
    with torch.no_grad():
        out = model(images(2, 32))
        branch = model.layers[2](model.layers[1](model.layers[0](model.input_quant(images(2, 32)))))
    assert out.shape == (2, 7, 32, 32)
    levels = branch / first.act_quant.scale()  # the second branch is on the first's grid
    assert torch.allclose(levels, levels.round(), atol=1e-3)
    with pytest.raises(ValueError, match=r"layer 4 \(route, cfg line 26\): concat"):
        build_detector(path, QuantLayers(BitWidths()), finn_replacements=False)
    assert build_detector(path, finn_replacements=False)(images(1, 32)).shape == (1, 7, 32, 32)


def test_build_detector_from_config_loads_the_weights_file(tmp_path, tiny_cfg):
    torch.manual_seed(0)
    source = build_detector("dfire-lpyolo", width_mult=0.5)
    path = save_darknet_weights(source, tmp_path / "dfire.weights")
    values = vars(tiny_cfg) | {
        "DETECTOR_WIDTH_MULT": 0.5,
        "DARKNET_WEIGHTS_FILE": str(path),
        "WEIGHT_BIT_WIDTH": 1,
        "ACT_BIT_WIDTH": 3,
    }
    model = build_detector_from_config(types.SimpleNamespace(**values), quantized=True)
    assert torch.equal(model.layers[0].conv.weight, source.layers[0].conv.weight)
    assert model.layers[2].conv.weight_quant.bit_width() == 1  # WEIGHT_BIT_WIDTH
    assert model.spec.head_channels == 21
    missing = types.SimpleNamespace(**(values | {"DARKNET_WEIGHTS_FILE": "nope.weights"}))
    with pytest.raises(FileNotFoundError, match="DARKNET_WEIGHTS_FILE = 'nope.weights'"):
        build_detector_from_config(missing)


def test_chained_concats_share_one_quantizer_group(tmp_path):
    conv = "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=relu\n\n"
    head = "[convolutional]\nfilters=7\nsize=1\nactivation=linear\n\n"
    head += "[region]\nanchors=1,1\nclasses=2\n"
    text = (
        "[net]\nwidth=16\nheight=16\n\n"
        + conv  # 0
        + conv  # 1
        + "[route]\nlayers=1,0\n\n"  # 2
        + conv  # 3
        + "[route]\nlayers=-1,0\n\n"  # 4: joins 3 to the group of 0 and 1
        + head  # 5
    )
    path = tmp_path / "chain.cfg"
    path.write_text(text)
    plans, _ = plan_layers(path)
    assert shared_quantizers(plans) == {1: 0, 3: 0}
    model = build_detector(path, QuantLayers(BitWidths()))
    assert model.layers[3].act.act_quant is model.layers[0].act.act_quant
