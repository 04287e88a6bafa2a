"""Rebuild the network of the second calibration report (Finn_Thesis) and export it as QONNX.

    python benchmarks/finn_thesis_cnv.py OUT.onnx

github.com/Ba1tu3han/Finn_Thesis @ 89b4c46 publishes the folding and the post-synthesis
report of its design; its model (QONNX_CNV.onnx, in the repository's history) is not
redistributed here: the repository has no licence, and the copy available to us lacks it.
Its notebooks pin the topology down: 3_folding_BA.ipynb prints the cycles per layer at
PE=SIMD=1 (MW*MH*pixels of each MVAU) and FINN's LUT/BRAM estimates, which match only a
CIFAR-10 CNV-w1a1 (brevitas_examples bnn_pynq CNV) with the last 256-channel conv removed:
conv 64, 64, pool, 128, 128, pool, 256 (3x3, no padding, 32x32 input), FC 2304->512,
512->512, 512->10; 1-bit weights and activations, 8-bit input. Its build added ToTensor
(/255) before the network and a top-1 head after it. The weights here are random:
the resources depend on shapes, bit widths and folding, not on the values.

`folding_config` gives the published folding (custom_folding_config.json) under this
flow's node names (benchmarks/calibrate_resources.py applies it). FINN v0.10 made each max
pool one StreamingMaxPool_hls; finn-plus 1.6.1 makes it a ConvolutionInputGenerator_rtl +
Pool_hls pair, which shifts the generator numbering after the first pool, so the published
layers are mapped by order and type, not by name.
"""

import argparse

import torch
from brevitas.core.restrict_val import RestrictValueType
from brevitas.export import export_qonnx
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from brevitas_examples.bnn_pynq.models.common import CommonActQuant, CommonWeightQuant
from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm
from torch import nn

CONV_CHANNELS_POOL = [(64, False), (64, True), (128, False), (128, True), (256, False)]
FC_FEATURES = [(256 * 3 * 3, 512), (512, 512), (512, 10)]
BITS = 1

# custom_folding_config.json @ 89b4c46, in layer order: (PE, SIMD) of MVAU_hls_0..7 and SIMD
# of the sliding-window generators of the five convs (ConvolutionInputGenerator_rtl_0..4);
# each StreamingMaxPool_hls had PE 1. Everywhere: MVAU mem_mode internal_decoupled, ram_style
# and resType auto; generators ram_style distributed, parallel_window 0.
MVAU_PE_SIMD = [(1, 27), (8, 72), (2, 72), (4, 72), (1, 32), (2, 4), (1, 4), (1, 1)]
CONV_WINDOW_SIMD = [1, 8, 2, 2, 1]


def _binary_act():
    return QuantIdentity(act_quant=CommonActQuant, bit_width=BITS)


def _binary_weights(layer, *args, **kwargs):
    return layer(*args, bias=False, weight_quant=CommonWeightQuant, weight_bit_width=BITS, **kwargs)


class ThesisCNV(nn.Module):
    def __init__(self):
        super().__init__()
        layers = [  # Q1.7 input quantizer of bnn_pynq CNV
            QuantIdentity(
                act_quant=CommonActQuant,
                bit_width=8,
                min_val=-1.0,
                max_val=1.0 - 2.0**-7,
                narrow_range=False,
                restrict_scaling_type=RestrictValueType.POWER_OF_TWO,
            )
        ]
        channels = 3
        for out, pool in CONV_CHANNELS_POOL:
            conv = _binary_weights(QuantConv2d, channels, out, kernel_size=3)
            layers += [conv, nn.BatchNorm2d(out, eps=1e-4), _binary_act()]
            layers += [nn.MaxPool2d(2)] if pool else []
            channels = out
        self.features = nn.Sequential(*layers)
        head = []
        for in_features, out_features in FC_FEATURES[:-1]:
            head += [_binary_weights(QuantLinear, in_features, out_features)]
            head += [nn.BatchNorm1d(out_features, eps=1e-4), _binary_act()]
        head += [_binary_weights(QuantLinear, *FC_FEATURES[-1]), TensorNorm()]
        self.classifier = nn.Sequential(*head)

    def forward(self, pixels):
        x = 2.0 * (pixels / 255.0) - 1.0  # the build's ToTensor, then CNV's [-1, 1] input
        return self.classifier(torch.flatten(self.features(x), 1))


def export(path):
    torch.manual_seed(0)
    model = ThesisCNV().eval()
    export_qonnx(model, torch.randint(0, 256, (1, 3, 32, 32)).float(), str(path))
    return path


def folding_config(specialized):
    """The published folding under the node names of `specialized` (this flow's graph after
    SpecializeLayers): MVAUs in order; generators feeding an MVAU take the conv windows' SIMD
    in order, those feeding a Pool (max pool windows) SIMD 1 like StreamingMaxPool's PE 1."""
    config = {"Defaults": {}}
    mvaus = iter(MVAU_PE_SIMD)
    windows = iter(CONV_WINDOW_SIMD)
    for node in specialized.graph.node:
        if node.op_type.startswith("MVAU"):
            pe, simd = next(mvaus)
            config[node.name] = {
                "PE": pe,
                "SIMD": simd,
                "mem_mode": "internal_decoupled",
                "ram_style": "auto",
                "resType": "auto",
            }
        elif node.op_type.startswith("ConvolutionInputGenerator"):
            consumer = specialized.find_consumer(node.output[0])
            simd = next(windows) if consumer.op_type.startswith("MVAU") else 1
            config[node.name] = {"SIMD": simd, "parallel_window": 0, "ram_style": "distributed"}
        elif node.op_type.startswith("Pool"):
            config[node.name] = {"PE": 1}
    assert next(mvaus, None) is None and next(windows, None) is None, "topology differs"
    return config


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    export(parser.parse_args().out)
