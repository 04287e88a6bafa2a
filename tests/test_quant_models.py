import types

import numpy as np
import pytest
import torch
from qonnx.core.modelwrapper import ModelWrapper

import config
from modules.models.architecture import build_model
from modules.models.quant_layers import BitWidths, build_quant_model
from modules.quantization.equivalence import equivalence_table, onnx_stage, torch_stage
from modules.quantization.export import export_qonnx_model
from modules.stages import train_fp32
from modules.tasks.classify.model import build_configured_model
from modules.training.loss import BCELoss

SIZE = 32


def _trained_step(bits, bipolar_output=False, steps=2):
    torch.manual_seed(0)
    model = build_quant_model("mobilenetv2_mini_resnet", 2, 1.0, bits, bipolar_output)
    images = torch.randint(0, 256, (8, 3, SIZE, SIZE)).float()
    targets = torch.randint(0, 2, (8, 2)).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = BCELoss(["smoke", "fire"])
    model.train()
    for _ in range(steps):
        loss, _ = loss_fn(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), images


def _residual_blocks(model):
    return [b for b in list(model.features)[1:] if b.identity]


@pytest.mark.parametrize(
    "weight,act", [(4, 4), (2, 2), (8, 8), (1, 2)], ids=["w4a4", "w2a2", "w8a8", "w1a2"]
)
def test_train_export_and_qonnx_equals_brevitas(weight, act, tmp_path):
    model, images = _trained_step(BitWidths(weight=weight, act=act))
    head = build_quant_model(
        "mobilenetv2_mini_resnet", 2, 1.0, BitWidths(weight=weight, act=act), True
    )
    head.load_state_dict(model.state_dict())
    clean = export_qonnx_model(head.eval(), SIZE, tmp_path / "raw.onnx", tmp_path / "clean.onnx")
    assert (tmp_path / "raw.onnx.data").is_file()  # the dynamo exporter's external weights
    table, outputs = equivalence_table(
        {"brevitas": torch_stage(head), "qonnx": onnx_stage(clean)}, images[:3].numpy()
    )
    assert set(np.unique(outputs["brevitas"])) <= {-1.0, 1.0}
    assert table.loc["qonnx", "identical_outputs_%"] == 100.0  # bipolar outputs: exact
    graph = ModelWrapper(str(clean))
    weight_quants = [
        n for n in graph.graph.node if graph.get_initializer(n.input[0]) is not None
    ]  # quantizers applied to stored weights
    ops = {n.op_type for n in weight_quants}
    if weight == 1:
        assert "BipolarQuant" in ops
    else:
        widths = {float(graph.get_initializer(n.input[3])) for n in weight_quants}
        assert float(weight) in widths


def test_logits_export_matches_brevitas_to_float_rounding(tmp_path):
    model, images = _trained_step(BitWidths())
    clean = export_qonnx_model(model, SIZE, tmp_path / "raw.onnx", tmp_path / "clean.onnx")
    table, outputs = equivalence_table(
        {"brevitas": torch_stage(model), "qonnx": onnx_stage(clean)}, images[:3].numpy()
    )
    scale = np.abs(outputs["brevitas"]).max() + 1e-12
    assert table.loc["qonnx", "max_abs_diff"] <= 1e-5 * scale
    assert table.loc["qonnx", "decision_agreement_%"] == 100.0


def test_residual_add_inputs_share_scale_and_zero_point(tmp_path):
    model, _ = _trained_step(BitWidths(), steps=3)
    blocks = list(model.features)
    for i, block in enumerate(blocks[1:], start=1):
        if not block.identity:
            continue
        previous = blocks[i - 1].output_quantizer()
        # the very same quantizer object, hence the same (trained) scale and zero point
        assert block.conv[-1].act_quant is previous.act_quant
        assert torch.equal(block.conv[-1].act_quant.scale(), previous.act_quant.scale())
    clean = export_qonnx_model(model, SIZE, tmp_path / "raw.onnx", tmp_path / "clean.onnx")
    graph = ModelWrapper(str(clean))
    adds = [n for n in graph.graph.node if n.op_type == "Add"]
    assert len(adds) == len(_residual_blocks(model)) == 5
    for add in adds:
        producers = [graph.find_producer(name) for name in add.input]
        assert [p.op_type for p in producers] == ["Quant", "Quant"]
        scale_a, zero_a, bits_a = (graph.get_initializer(t) for t in producers[0].input[1:4])
        scale_b, zero_b, bits_b = (graph.get_initializer(t) for t in producers[1].input[1:4])
        assert scale_a == scale_b and zero_a == zero_b and bits_a == bits_b


def test_fp32_weights_load_by_name_into_quant_model(tmp_path):
    fp32 = build_model("mobilenetv2_mini_resnet")
    quant = build_quant_model("mobilenetv2_mini_resnet", 2, 1.0, BitWidths())
    assert set(fp32.state_dict()) <= set(quant.state_dict())
    for name, tensor in fp32.state_dict().items():
        assert quant.state_dict()[name].shape == tensor.shape, name


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("WEIGHT_BIT_WIDTH", 0, "WEIGHT_BIT_WIDTH = 0"),
        ("ACT_BIT_WIDTH", -2, "ACT_BIT_WIDTH = -2"),
        ("ACT_BIT_WIDTH", 9, "at most 8 bits"),
        ("ACT_BIT_WIDTH", 1, "at least 2 bits"),
        ("BIAS_BIT_WIDTH", 2.5, "BIAS_BIT_WIDTH = 2.5"),
        ("INPUT_BIT_WIDTH", 4, "UINT8"),
    ],
)
def test_bad_bit_widths_fail_in_config_validation(key, value, match):
    values = types.SimpleNamespace(**{**config.snapshot(), key: value, "BREVITAS_MODEL": True})
    with pytest.raises(ValueError, match=match):
        build_configured_model(values)


def test_checkpoint_kind_names_every_bit_width():
    base = types.SimpleNamespace(**{**config.snapshot(), "BREVITAS_MODEL": True})
    other = types.SimpleNamespace(**{**vars(base), "LAST_LAYER_WEIGHT_BIT_WIDTH": 4})
    fp32 = types.SimpleNamespace(**{**vars(base), "BREVITAS_MODEL": False})
    kinds = {train_fp32.model_kind(c) for c in (base, other, fp32)}
    assert len(kinds) == 3 and "fp32" in kinds
