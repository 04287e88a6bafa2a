import pytest
import torch

from modules.models.architecture import CFGS, build_model, make_divisible


def test_mini_resnet_follows_seed_001():
    model = build_model("mobilenetv2_mini_resnet")
    assert [row[1] for row in CFGS["mobilenetv2_mini_resnet"]] == [8, 16, 24, 32, 64]
    assert model.conv[0].out_channels == 128  # final 1x1 conv
    blocks = list(model.features)[1:]
    assert len(blocks) == sum(n for _, _, n, _ in CFGS["mobilenetv2_mini_resnet"])
    # residual blocks: second of each repeated stage, third of the 32-channel stage, 64's second
    assert [b.identity for b in blocks] == [
        False, False, True, False, True, False, True, True, False, True,
    ]  # fmt: skip


@pytest.mark.parametrize("size", [32, 64])
def test_forward_shapes_and_input_range(size):
    torch.manual_seed(0)
    model = build_model("mobilenetv2_mini_resnet").eval()
    images = torch.randint(0, 256, (3, 3, size, size)).float()
    out = model(images)
    assert out.shape == (3, 2)
    # the model scales its UINT8-range input itself: feeding 0..1 gives different logits
    assert not torch.allclose(out, model(images / 255.0))


def test_original_mobilenetv2_and_width_mult():
    assert build_model("mobilenetv2").conv[0].out_channels == 1280
    wide = build_model("mobilenetv2_mini_resnet", width_mult=1.5)
    assert wide.conv[0].out_channels == make_divisible(128 * 1.5, 8)
    assert wide.features[0][0].out_channels == make_divisible(32 * 1.5, 8)


def test_unknown_model_names_config_key():
    with pytest.raises(ValueError, match="config.MODEL"):
        build_model("resnet50")


def test_make_divisible_never_drops_more_than_ten_percent():
    for value in range(1, 400):
        for divisor in (4, 8):
            rounded = make_divisible(value, divisor)
            assert rounded % divisor == 0 and rounded >= 0.9 * value
