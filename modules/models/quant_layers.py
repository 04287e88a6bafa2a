"""Brevitas building blocks for the MobileNetV2 of modules/models/architecture.py (QAT).

The architecture is not repeated here: `QuantLayers` implements the layer-factory methods of
`TorchLayers`, and `build_quant_model` hands it to the one `build_model`. Quantizers are declared
once below and reused; bit widths are data (`BitWidths`, from config).
"""

import warnings
from dataclasses import asdict, dataclass

from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8BiasPerTensorFloatInternalScaling,
    Int8WeightPerTensorFloat,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
    Uint8ActPerTensorFloat,
)
from torch import nn

from modules.models.architecture import ScaleInput, build_model

FINN_MAX_ACT_BITS = 8  # FINN thresholds grow as 2^bits; wider activations do not map well
HEAD_BITS = 8  # detector head tensor: INT8 as LPYOLO's accelerator output


class WeightQuant(Int8WeightPerTensorFloat):
    """Per-output-channel integer weights; FINN folds the float scales into thresholds."""

    scaling_per_output_channel = True
    scaling_min_val = 2e-16


class BinaryWeightQuant(SignedBinaryWeightPerTensorConst):
    """1-bit weights are +-1 (a signed 1-bit integer has no non-zero level); the BatchNorm
    after every conv supplies the scale."""


class BiasQuant(Int8BiasPerTensorFloatInternalScaling):
    """Own scale: the classifier input (a float average) carries no quantization scale."""


class UnsignedActQuant(Uint8ActPerTensorFloat):
    """After ReLU: unsigned, max initialised at ReLU6's 6."""

    scaling_min_val = 2e-16
    max_val = 6.0


class SignedActQuant(Int8ActPerTensorFloat):
    """pw-linear outputs and residual sums: signed, no activation before them."""

    scaling_min_val = 2e-16


@dataclass(frozen=True)
class BitWidths:
    input: int = 8
    first_weight: int = 8
    weight: int = 4
    act: int = 4
    last_weight: int = 8
    bias: int = 8

    @classmethod
    def from_config(cls, cfg):
        widths = cls(
            input=cfg.INPUT_BIT_WIDTH,
            first_weight=cfg.FIRST_LAYER_WEIGHT_BIT_WIDTH,
            weight=cfg.WEIGHT_BIT_WIDTH,
            act=cfg.ACT_BIT_WIDTH,
            last_weight=cfg.LAST_LAYER_WEIGHT_BIT_WIDTH,
            bias=cfg.BIAS_BIT_WIDTH,
        )
        widths.validate()
        return widths

    def validate(self):
        keys = {
            "input": "INPUT_BIT_WIDTH",
            "first_weight": "FIRST_LAYER_WEIGHT_BIT_WIDTH",
            "weight": "WEIGHT_BIT_WIDTH",
            "act": "ACT_BIT_WIDTH",
            "last_weight": "LAST_LAYER_WEIGHT_BIT_WIDTH",
            "bias": "BIAS_BIT_WIDTH",
        }
        for field, key in keys.items():
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"config.{key} = {value!r}: bit widths are integers >= 1")
        if self.act > FINN_MAX_ACT_BITS or self.input > FINN_MAX_ACT_BITS:
            raise ValueError(
                f"config.ACT_BIT_WIDTH = {self.act} / INPUT_BIT_WIDTH = {self.input}: FINN "
                f"maps activations of at most {FINN_MAX_ACT_BITS} bits"
            )
        if self.act < 2:
            raise ValueError(
                f"config.ACT_BIT_WIDTH = {self.act}: unsigned activations after ReLU need "
                "at least 2 bits here (1 bit would leave a single non-zero level)"
            )
        if self.input != 8:
            raise ValueError(f"config.INPUT_BIT_WIDTH = {self.input}: the input is UINT8 pixels")

    @property
    def tag(self):
        return f"w{self.weight}a{self.act}"

    @property
    def signature(self):
        """Every width, for checkpoint kinds: another config must not load these weights."""
        return (
            f"{self.tag}-in{self.input}-first{self.first_weight}"
            f"-last{self.last_weight}-bias{self.bias}"
        )

    def as_dict(self):
        return asdict(self)


class QuantLayers:
    """Brevitas version of modules.models.TorchLayers."""

    def __init__(self, bits, bipolar_output=False):
        self.bits, self.bipolar_output = bits, bipolar_output

    def input_quant(self):
        # No input quantizer: the pixels already are UINT8 values. FINN marks the graph input
        # UINT8 and streamlines the 1/255 into the stem's thresholds, so no 255-level input
        # threshold layer is built.
        return ScaleInput()

    def conv(
        self,
        inp,
        oup,
        kernel,
        stride,
        groups=1,
        role="body",
        padding=None,
        bias=False,
        weight_bits=None,
    ):
        # first/last layers: their own widths; body: a Darknet `binary=1` layer's 1 bit or the
        # configured width. The classifier's last layer is a QuantLinear (classifier()).
        roles = {"first": self.bits.first_weight, "last": self.bits.last_weight}
        bits = roles.get(role, weight_bits or self.bits.weight)
        weight_quant = BinaryWeightQuant if bits == 1 else WeightQuant
        return QuantConv2d(
            inp,
            oup,
            kernel,
            stride,
            kernel // 2 if padding is None else padding,
            groups=groups,
            bias=bias,
            weight_quant=weight_quant,
            weight_bit_width=bits,
            # a Darknet conv without BN keeps a float bias: the signed quantizer after it
            # requantizes, so FINN absorbs the bias into those thresholds exactly (a quantized
            # per-tensor bias trips qonnx's ExtractBiasFromConv)
        )

    def act(self):
        return QuantReLU(act_quant=UnsignedActQuant, bit_width=self.bits.act)

    def linear_out_quant(self, shared_quant=None):
        if shared_quant is not None:  # same quantizer object: same scale on both ADD inputs
            with warnings.catch_warnings():  # brevitas warns that a proxy ignores defaults
                warnings.filterwarnings("ignore", "Keyword arguments are being passed")
                return QuantIdentity(act_quant=shared_quant.act_quant)
        return QuantIdentity(act_quant=SignedActQuant, bit_width=self.bits.act)

    def add_quant(self):
        return QuantIdentity(act_quant=SignedActQuant, bit_width=self.bits.act)

    def pool(self, channels):
        # FINN maps the global average to GlobalAccPool (an integer sum) and folds the 1/N
        # into the classifier's thresholds; the export fix turns ReduceMean into
        # GlobalAveragePool for that (modules/quantization/export.py).
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))

    def classifier(self, inp, num_classes):
        return QuantLinear(
            inp,
            num_classes,
            bias=True,  # FINN absorbs the bias into the output thresholds
            weight_quant=WeightQuant,
            weight_bit_width=self.bits.last_weight,
            bias_quant=BiasQuant,
            bias_bit_width=self.bits.bias,
        )

    def output_quant(self):
        if self.bipolar_output:
            return QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
        return nn.Identity()

    # ---- detector (modules/models/darknet.py) additions
    def relu(self, shared_quant=None):
        if shared_quant is not None:  # concat branches: one scale (as residual adds)
            if not isinstance(shared_quant, QuantReLU):
                raise ValueError("a concat joins a ReLU branch and a linear branch")
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Keyword arguments are being passed")
                return QuantReLU(act_quant=shared_quant.act_quant)
        return QuantReLU(act_quant=UnsignedActQuant, bit_width=self.bits.act)

    def leaky_relu(self, slope=0.1):
        raise ValueError(
            "leaky ReLU has no FINN mapping (only ReLU-family activations become thresholds); "
            "set config.DARKNET_FINN_REPLACEMENTS = True to build it as ReLU"
        )

    def maxpool(self, kernel, stride, padding=0):
        # after the unsigned ReLU quantizer: FINN moves the scale past it and pads with 0
        return nn.MaxPool2d(kernel, stride, padding)

    def maxpool_same_stride1(self, kernel):
        raise ValueError(
            f"maxpool size={kernel} stride=1 pads right/bottom only; FINN pads symmetrically. "
            "Set config.DARKNET_FINN_REPLACEMENTS = True to build MaxPool(3, 1, 1) instead"
        )

    def upsample(self, scale):
        return nn.Upsample(scale_factor=scale, mode="nearest")

    def unshared_concat(self):
        raise ValueError(
            "a concat of branches with their own scales has no FINN mapping; set "
            "config.DARKNET_FINN_REPLACEMENTS = True to share one quantizer across the branches"
        )

    def head_quant(self):
        # signed 8-bit head: the accelerator's output is an INT8 tensor times one scale
        return QuantIdentity(act_quant=SignedActQuant, bit_width=HEAD_BITS)


def build_quant_model(name, num_classes, width_mult, bits, bipolar_output=False):
    return build_model(name, num_classes, width_mult, QuantLayers(bits, bipolar_output))
