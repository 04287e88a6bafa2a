"""Brevitas vs its QONNX export, layer by layer: differences that are level flips at float
rounding ties are told apart from export bugs (tinier-yolo with the demo-tinier head, W8A8,
real demo pictures)."""

import functools
import tempfile

import numpy as np
import pandas as pd
import pytest
import torch
from qonnx.core.modelwrapper import ModelWrapper
from test_darknet_finn import SIZE, calibrate, demo_images

from modules.dataflow import stage_check
from modules.models.darknet import build_detector
from modules.models.quant_layers import BitWidths, QuantLayers
from modules.quantization import rounding_ties
from modules.quantization.equivalence import onnx_stage, torch_stage
from modules.quantization.export import export_qonnx_model
from modules.reporting import summary


@functools.cache
def exported():
    torch.manual_seed(0)
    images = demo_images(8)
    model = build_detector("tinier-yolo-dfire", QuantLayers(BitWidths(weight=8, act=8)), 0.5)
    model = calibrate(model, images)
    out = tempfile.mkdtemp(prefix="ties_")
    clean = export_qonnx_model(model, SIZE, f"{out}/raw.onnx", f"{out}/clean.onnx")
    return model, clean, images


def shifted_first_layer(clean, steps):
    """The export with the first activation's input moved by `steps` quantization steps (a
    stand-in for a different float order of operations when tiny, for an export bug when not)."""
    wrapper = ModelWrapper(str(clean))
    quant = rounding_ties.activation_quant_nodes(wrapper)[0]
    scale = float(np.asarray(wrapper.get_initializer(quant.input[1])).max())
    relu = wrapper.find_producer(quant.input[0])
    norm = wrapper.find_producer(relu.input[0])
    assert norm.op_type == "BatchNormalization"
    bias = wrapper.get_initializer(norm.input[2])
    wrapper.set_initializer(norm.input[2], (bias + steps * scale).astype(np.float32))
    return wrapper


def test_layerwise_comparison_pairs_every_activation_and_the_export_matches():
    model, clean, images = exported()
    table = rounding_ties.layerwise_flips(model, clean, images)
    assert len(table) == len(rounding_ties.activation_quant_nodes(ModelWrapper(str(clean))))
    assert (table["elements"] > 0).all()
    assert table["flips_elsewhere"].sum() == 0


def test_flips_within_float_error_of_a_tie_are_explained():
    model, clean, images = exported()
    nudged = shifted_first_layer(clean, 8e-4)
    brevitas, qonnx = torch_stage(model)(images), onnx_stage(nudged)(images)
    explained, table = rounding_ties.ties_explain(model, nudged, images, brevitas, qonnx)
    assert len(rounding_ties.differing_images(brevitas, qonnx)) > 0  # flips propagate
    assert explained
    plain = rounding_ties.layerwise_flips(model, clean, images)  # the export's own ties
    assert table["flips_at_ties"].iloc[0] > plain["flips_at_ties"].iloc[0]


def test_an_export_bug_is_not_explained_and_fails_the_stage_check():
    model, clean, images = exported()
    broken = shifted_first_layer(clean, 0.3)
    explained, table = rounding_ties.ties_explain(
        model, broken, images, torch_stage(model)(images), onnx_stage(broken)(images)
    )
    assert not explained and table["flips_elsewhere"].iloc[0] > 0
    stages = {"brevitas": model, "qonnx": broken}
    result, _ = stage_check.stage_equivalence(stages, images, diagnose=False)
    assert result.loc["qonnx", "explained_by_ties"] in (False, np.False_)
    with pytest.raises(AssertionError, match="differ"):
        stage_check.assert_identical(result)


def test_the_stage_check_and_the_run_summary_accept_tie_flips(tmp_path):
    model, clean, images = exported()
    stages = {"brevitas": model, "qonnx": shifted_first_layer(clean, 8e-4)}
    table, _ = stage_check.stage_equivalence(stages, images, diagnose=False)
    assert table.loc["qonnx", "identical_outputs_%"] < 100.0
    assert table.loc["qonnx", "flips_at_ties"] > 0
    stage_check.assert_identical(table)  # does not raise
    paths = type("Paths", (), {"table": lambda self, name: tmp_path / f"{name}.csv"})()
    table.to_csv(paths.table("03_stage_equivalence"))
    assert summary.stages_identical(paths) is True
    table.loc["qonnx", "explained_by_ties"] = False
    table.to_csv(paths.table("03_stage_equivalence"))
    assert summary.stages_identical(paths) is False
    assert isinstance(pd.read_csv(paths.table("03_stage_equivalence")), pd.DataFrame)


def test_graph_pairs_accept_float_noise_in_shared_tensors_only():
    _, clean, images = exported()
    first = ModelWrapper(str(clean))
    noisy = shifted_first_layer(clean, 1e-6)  # the first layer's float arithmetic reordered
    explained, tensors = rounding_ties.float_noise_explains(first, noisy, images[0])
    assert explained and tensors >= 1  # at least the batch norm's output, replaced
    broken = shifted_first_layer(clean, 0.3)  # a real change: a third of a step
    explained, _ = rounding_ties.float_noise_explains(first, broken, images[0])
    assert not explained
    stages = {"qonnx": first, "changed": broken}
    table, _ = stage_check.stage_equivalence(stages, images, diagnose=False)
    assert table.loc["changed", "must_be_identical"]  # a graph after a graph
    assert table.loc["changed", "identical_outputs_%"] < 100.0
    assert str(table.loc["changed", "explained_by_ties"]) == "False"
    with pytest.raises(AssertionError, match="differ"):
        stage_check.assert_identical(table)


@functools.cache
def finn_graphs():
    from modules.dataflow import flow as finn_flow

    _, clean, images = exported()
    flow = finn_flow.run_flow(clean, tempfile.mkdtemp(prefix="ties_flow_"), "xc7z020clg400-1")
    return flow.models["finn_onnx"], flow.models["streamlined"], images


def moved_threshold(streamlined, image, offset):
    """The streamlined graph with one threshold of its first MultiThreshold moved onto the
    largest input below it in that channel (+ `offset`), so that exactly the elements with
    that input change level."""
    copy = ModelWrapper(streamlined.model.__deepcopy__())
    node = copy.get_nodes_by_op_type("MultiThreshold")[0]
    context = execute_onnx_context(copy, image)
    values = np.moveaxis(context[node.input[0]], -1, 1)[0]  # NHWC -> (C, H, W)
    thresholds = copy.get_initializer(node.input[1]).copy()
    for channel, row in enumerate(thresholds):
        above = row[row > values[channel].min()]
        below = values[channel][values[channel] < above.min()] if len(above) else []
        if len(below):
            step = int(np.argmax(row == above.min()))
            thresholds[channel, step] = below.max() + offset
            copy.set_initializer(node.input[1], thresholds)
            return copy
    raise AssertionError("no threshold to move")


def execute_onnx_context(model, image):
    from qonnx.core.onnx_exec import execute_onnx

    feed = {model.graph.input[0].name: np.asarray(image[None], dtype=np.float32)}
    return execute_onnx(model, feed, return_full_exec_context=True)


def test_a_threshold_flip_at_a_tie_is_explained_and_one_off_it_is_not():
    finn_onnx, streamlined, images = finn_graphs()
    assert rounding_ties.float_noise_explains(finn_onnx, streamlined, images[0])[0]
    on_tie = moved_threshold(streamlined, images[0], 0.0)  # the input now equals a threshold
    first = on_tie.get_nodes_by_op_type("MultiThreshold")[0].output[0]
    moved, before = (execute_onnx_context(g, images[0])[first] for g in (on_tie, streamlined))
    assert 0 < np.count_nonzero(moved != before) < moved.size // 100  # a few elements flip
    explained, replaced = rounding_ties.float_noise_explains(finn_onnx, on_tie, images[0])
    assert explained and replaced >= 1
    off_tie = moved_threshold(streamlined, images[0], -0.5)  # half a unit below the input
    assert not rounding_ties.float_noise_explains(finn_onnx, off_tie, images[0])[0]


def test_layers_pair_up_in_the_residual_classifier(tmp_path):
    from finn_designs import SIZE as CLASSIFIER_SIZE
    from finn_designs import calibrated_mobilenet, random_images

    model = calibrated_mobilenet()  # residual adds: shared quantizers, called twice
    clean = export_qonnx_model(
        model, CLASSIFIER_SIZE, tmp_path / "raw.onnx", tmp_path / "clean.onnx"
    )
    images = random_images(2, seed=3)
    table = rounding_ties.layerwise_flips(model, clean, images)
    assert len(table) > 10 and (table["elements"] > 0).all()
    assert table["flips_elsewhere"].sum() == 0
