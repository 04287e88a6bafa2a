"""Host split of the detector: head scale read from the exported QONNX graph, the deployment's
detect_spec.json, and host decode of the integer head == decode of the Brevitas head."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from modules.board.detect import DetectSettings, detect, detect_raw
from modules.models.darknet import build_detector
from modules.models.quant_layers import BitWidths, QuantLayers
from modules.quantization.detect_head import head_quantization, write_detect_spec
from modules.quantization.equivalence import onnx_stage, torch_stage
from modules.quantization.export import export_qonnx_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("detect_head")
    torch.manual_seed(0)
    model = build_detector("dfire-lpyolo", QuantLayers(BitWidths()))
    images = torch.rand(6, 3, 64, 64) * 255
    with torch.no_grad():
        model.train()(images)  # BN statistics, so the head is not all zeros
    model.eval()
    clean = export_qonnx_model(model, 64, folder / "raw.onnx", folder / "clean.onnx")
    return model, images.numpy(), clean, folder


def test_qonnx_head_equals_brevitas_and_is_integer_times_the_graph_scale(exported):
    model, images, clean, _ = exported
    brevitas = torch_stage(model)(images)
    qonnx = onnx_stage(clean)(images[:2]).reshape(2, *brevitas.shape[1:])
    np.testing.assert_allclose(qonnx, brevitas[:2], atol=1e-6)
    quant = head_quantization(clean)
    assert quant["bit_width"] == 8 and quant["signed"] and quant["zero_point"] == 0.0
    raw = brevitas / quant["scale"]
    np.testing.assert_allclose(raw, np.round(raw), atol=1e-3)
    assert raw.min() >= -128 and raw.max() <= 127 and np.ptp(raw) > 0


def test_board_decode_from_the_spec_file_matches_the_brevitas_head(exported):
    model, images, clean, folder = exported
    brevitas = torch_stage(model)(images)
    quant = head_quantization(clean)
    settings = DetectSettings(((10.0, 14.0), (23.0, 27.0), (37.0, 58.0)), 64, 0.001, 0.6)
    spec = write_detect_spec(folder / "deploy" / "detect_spec.json", quant, settings, ["s", "f"])
    raw = np.round(brevitas / quant["scale"]).astype(np.int8)  # what the accelerator emits
    on_board, reference = detect_raw(raw, spec), detect(brevitas, settings)
    assert sum(len(d) for d in reference) > 0
    for got, want in zip(on_board, reference, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_graph_without_output_quantizer_is_refused(tmp_path):
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ValueError, match="produced by Relu, not a Quant node"):
        head_quantization(path)
