"""Small FINN designs shared by the flow, emulator and estimate tests: our MobileNetV2-mini
and brevitas_examples' CNV at 32x32 with calibrated random weights. The flows themselves run
once per session as the `mobilenet_flow` / `cnv_flow` fixtures in conftest.py."""

import numpy as np
import torch
from qonnx.transformation.infer_shapes import InferShapes
from torch import nn

from modules.dataflow import flow as finn_flow
from modules.models.architecture import ScaleInput
from modules.models.quant_layers import BitWidths, build_quant_model
from modules.quantization.export import export_qonnx_model

SIZE = 32
PART = "xc7z020clg400-1"
TARGET_FPS = 20000


def random_images(count, seed=0, channels=3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, channels, SIZE, SIZE)).astype(np.float32)


def calibrate(model, steps=8, seed=0):
    """Random weights with realistic statistics: BatchNorm (cumulative average) and activation
    scales from train-mode passes over random uint8 images."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
            module.momentum = None
    generator = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randint(0, 256, (16, 3, SIZE, SIZE), generator=generator).float())
    return model.eval()


def calibrated_mobilenet():
    torch.manual_seed(0)
    model = calibrate(build_quant_model("mobilenetv2_mini_resnet", 2, 1.0, BitWidths(), True))
    with torch.no_grad():  # centre the logits so the bipolar decisions vary between images
        model.classifier.bias.zero_()
        x = torch.as_tensor(random_images(32, seed=1))
        features = model.pool(model.conv(model.features(model.input_quant(x))))
        model.classifier.bias.copy_(-model.classifier(features).median(0).values)
    return model


class ArgMax(nn.Module):
    """Brevitas reference for a graph that ends in TopK(1): the index of the largest logit."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x).argmax(1, keepdim=True).float()


def calibrated_cnv():
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(0)
    net, _ = model_with_cfg("cnv_1w1a", pretrained=False)
    return calibrate(nn.Sequential(ScaleInput(), net), steps=4)


def insert_top_k(model):
    from qonnx.transformation.insert_topk import InsertTopK

    return model.transform(InsertTopK(k=1)).transform(InferShapes())


def build_mobilenet_flow(out):
    brevitas = calibrated_mobilenet()
    clean = export_qonnx_model(brevitas, SIZE, f"{out}/raw.onnx", f"{out}/clean.onnx")
    flow = finn_flow.run_flow(clean, out, PART, target_fps=TARGET_FPS, mvau_wwidth_max=216)
    return {"brevitas": brevitas, "flow": flow, "out": out, "images": random_images(8)}


def build_cnv_flow(out):
    net = calibrated_cnv()
    clean = export_qonnx_model(net, SIZE, f"{out}/raw.onnx", f"{out}/clean.onnx")
    flow = finn_flow.run_flow(
        clean, out, PART, target_fps=1000, standalone_thresholds=False, prepare=insert_top_k
    )
    return {"brevitas": ArgMax(net), "flow": flow, "out": out, "images": random_images(4)}


def one_mvau_hls(weights, simd, pe, vectors, in_dtype, weight_dtype, **attrs):
    """A graph of one MVAU_hls (no activation, INT32 out) over `vectors` (e.g. [1, 5, 5])
    pixels with `weights` (MW x MH) as initializer; `attrs`: more node attributes."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    mw, mh = weights.shape
    inp = helper.make_tensor_value_info("inp", TensorProto.FLOAT, [*vectors, mw])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [*vectors, mh])
    node = helper.make_node(
        "MVAU_hls",
        ["inp", "weights"],
        ["out"],
        name="MVAU_hls_0",
        domain="finn.custom_op.fpgadataflow.hls",
        backend="fpgadataflow",
        MW=mw,
        MH=mh,
        SIMD=simd,
        PE=pe,
        inputDataType=in_dtype,
        weightDataType=weight_dtype,
        outputDataType="INT32",
        noActivation=1,
        numInputVectors=list(vectors),
        **attrs,
    )
    model = ModelWrapper(qonnx_make_model(helper.make_graph([node], "one", [inp], [out])))
    model.set_initializer("weights", weights.astype(np.float32))
    for name, dtype in (("inp", in_dtype), ("weights", weight_dtype), ("out", "INT32")):
        model.set_tensor_datatype(name, DataType[dtype])
    return model
