"""MobileNetV2 and seed 001's MobileNetV2-mini-ResNet, written once for FP32 and Brevitas.

The architecture (cfgs, channel rounding, residual wiring) lives here only. Which layer classes
build it comes from a `layers` object: `TorchLayers` gives plain PyTorch; the Brevitas
quantized version supplies the same methods with quantized layers, so parameter names match and
FP32 weights load into the quantized model by name.
"""

from torch import nn

# t (expansion), c (channels), n (repeats), s (first stride)
CFGS = {
    "mobilenetv2": [
        [1, 16, 1, 1],
        [6, 24, 2, 2],
        [6, 32, 3, 2],
        [6, 64, 4, 2],
        [6, 96, 3, 1],
        [6, 160, 3, 2],
        [6, 320, 1, 1],
    ],
    # seed 001: fewer inverted residuals, thinner blocks
    "mobilenetv2_mini_resnet": [
        [1, 8, 1, 1],
        [2, 16, 2, 2],
        [2, 24, 2, 2],
        [4, 32, 3, 2],
        [2, 64, 2, 1],
    ],
}
# channels of the last 1x1 conv before pooling
LAST_CHANNELS = {"mobilenetv2": 1280, "mobilenetv2_mini_resnet": 128}
STEM_CHANNELS = 32


def make_divisible(value, divisor, min_value=None):
    """Round channels to a multiple of `divisor`, never dropping more than 10 %."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ScaleInput(nn.Module):
    """Maps the UINT8-range input (0..255) to 0..1 inside the model, so exports see raw pixels."""

    def forward(self, x):
        return x * (1.0 / 255.0)


class TorchLayers:
    """Plain PyTorch building blocks. A quantized factory implements the same methods."""

    def input_quant(self):
        return ScaleInput()

    def conv(self, inp, oup, kernel, stride, groups=1, role="body", padding=None, bias=False, **_):
        # role is "first" | "body" | "last": quantized factories pick bit widths by it;
        # padding/bias serve Darknet cfgs; `weight_bits` (cfg `binary=1`) only quantized kits use
        padding = kernel // 2 if padding is None else padding
        return nn.Conv2d(inp, oup, kernel, stride, padding, groups=groups, bias=bias)

    def act(self):
        return nn.ReLU6(inplace=True)

    def linear_out_quant(self, shared_quant=None):
        # Output of a block's pw-linear conv; a residual block reuses the previous block's
        # output quantizer so both inputs of the ADD share scale and zero point.
        return nn.Identity()

    def add_quant(self):
        return nn.Identity()

    def pool(self, channels):
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))

    def classifier(self, inp, num_classes):
        return nn.Linear(inp, num_classes)

    def output_quant(self):
        return nn.Identity()

    # ---- detector (modules/models/darknet.py) additions
    def relu(self, shared_quant=None):
        # shared_quant: the quantizer of another concat branch (quantized kits reuse it)
        return nn.ReLU(inplace=True)

    def leaky_relu(self, slope=0.1):
        # FP32 only: FINN turns only ReLU-family activations into thresholds
        return nn.LeakyReLU(slope, inplace=True)

    def maxpool(self, kernel, stride, padding=0):
        return nn.MaxPool2d(kernel, stride, padding)

    def maxpool_same_stride1(self, kernel):
        # Darknet's stride-1 maxpool pads right and bottom with -inf (output size = input size)
        return nn.Sequential(
            nn.ConstantPad2d((0, kernel - 1, 0, kernel - 1), float("-inf")),
            nn.MaxPool2d(kernel, 1),
        )

    def upsample(self, scale):
        return nn.Upsample(scale_factor=scale, mode="nearest")

    def head_quant(self):
        # the last conv's output: the raw detection head tensor
        return nn.Identity()

    def unshared_concat(self):
        # a concat whose branches keep their own quantizers (Darknet route, no replacements)
        return nn.Identity()


def conv_bn_act(layers, inp, oup, kernel, stride, role="body"):
    return nn.Sequential(
        layers.conv(inp, oup, kernel, stride, role=role), nn.BatchNorm2d(oup), layers.act()
    )


class InvertedResidual(nn.Module):
    def __init__(self, layers, inp, oup, stride, expand_ratio, shared_quant=None):
        super().__init__()
        hidden = round(inp * expand_ratio)
        self.identity = stride == 1 and inp == oup
        expand = []
        if expand_ratio != 1:
            expand = [layers.conv(inp, hidden, 1, 1), nn.BatchNorm2d(hidden), layers.act()]
        self.conv = nn.Sequential(
            *expand,
            layers.conv(hidden, hidden, 3, stride, groups=hidden),  # depthwise
            nn.BatchNorm2d(hidden),
            layers.act(),
            layers.conv(hidden, oup, 1, 1),  # pw-linear: no activation
            nn.BatchNorm2d(oup),
            layers.linear_out_quant(shared_quant if self.identity else None),
        )
        self.add_quant = layers.add_quant() if self.identity else None

    def forward(self, x):
        if self.identity:
            return self.add_quant(x + self.conv(x))
        return self.conv(x)

    def output_quantizer(self):
        """The quantizer whose scale the next residual block must reuse."""
        return self.add_quant if self.identity else self.conv[-1]


class MobileNetV2(nn.Module):
    def __init__(self, cfgs, last_channels, num_classes=2, width_mult=1.0, layers=None):
        super().__init__()
        layers = layers or TorchLayers()
        divisor = 4 if width_mult == 0.1 else 8
        channels = make_divisible(STEM_CHANNELS * width_mult, divisor)
        self.input_quant = layers.input_quant()
        stem = conv_bn_act(layers, 3, channels, 3, 2, role="first")
        blocks, shared = [stem], stem[-1]
        for t, c, n, s in cfgs:
            out_channels = make_divisible(c * width_mult, divisor)
            for i in range(n):
                block = InvertedResidual(
                    layers, channels, out_channels, s if i == 0 else 1, t, shared
                )
                blocks.append(block)
                shared, channels = block.output_quantizer(), out_channels
        self.features = nn.Sequential(*blocks)
        if width_mult > 1.0:
            last_channels = make_divisible(last_channels * width_mult, divisor)
        self.conv = conv_bn_act(layers, channels, last_channels, 1, 1)
        self.pool = layers.pool(last_channels)
        self.classifier = layers.classifier(last_channels, num_classes)
        self.output_quant = layers.output_quant()
        self._init_weights()

    def forward(self, x):
        x = self.features(self.input_quant(x))
        x = self.pool(self.conv(x))
        return self.output_quant(self.classifier(x))

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)


def build_model(name, num_classes=2, width_mult=1.0, layers=None):
    """Model factory: config.MODEL -> model. `layers` selects FP32 or quantized building blocks."""
    if name not in CFGS:
        raise ValueError(
            f"config.MODEL = {name!r} is not a known model; choose from {sorted(CFGS)}"
        )
    return MobileNetV2(CFGS[name], LAST_CHANNELS[name], num_classes, width_mult, layers)


def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
