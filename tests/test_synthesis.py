"""Yosys synthesis of RTL layers (modules/synthesis, `firesmoke synth`) on a tiny MVAU design:
the source adjustments still match finn-rtllib, the DSPs Yosys maps equal the model's, results
are cached, and bad input gets a clear error."""

import json

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from modules import cli
from modules.dataflow.setup import ensure_finn
from modules.hardware import resources
from modules.synthesis import design as synth
from modules.synthesis import patches, yosys

PART = "xc7z020clg400-1"


def tiny_mvau(pe=2, simd=4, mw=8, mh=4):
    """One internal_decoupled MVAU_rtl (INT4 weights, UINT4 inputs): DSPs and a weight
    streamer, small enough to synthesize in seconds."""
    ensure_finn()
    from finn.transformation.fpgadataflow.minimize_accumulator_width import (
        MinimizeAccumulatorWidth,
    )
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    node = helper.make_node(
        "MVAU", ["x", "w"], ["y"], domain="finn.custom_op.fpgadataflow", backend="fpgadataflow",
        MW=mw, MH=mh, SIMD=simd, PE=pe, inputDataType="UINT4", weightDataType="INT4",
        outputDataType="INT32", ActVal=0, binaryXnorMode=0, noActivation=1,
        mem_mode="internal_decoupled", preferred_impl_style="rtl", name="MVAU_0",
    )  # fmt: skip
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, mw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, mh])],
    )
    model = ModelWrapper(qonnx_make_model(graph, producer_name="tiny"))
    model.set_tensor_datatype("x", DataType["UINT4"])
    model.set_tensor_datatype("y", DataType["INT32"])
    weights = np.random.default_rng(0).integers(-7, 8, (mw, mh)).astype(np.float32)
    model.set_initializer("w", weights)
    model.set_tensor_datatype("w", DataType["INT4"])
    model = model.transform(MinimizeAccumulatorWidth())
    return model.transform(SpecializeLayers(PART))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("synth_cache")


@pytest.fixture(scope="module")
def design_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_design")
    tiny_mvau().save(str(folder / "design_accelerator.onnx"))
    settings = {"part": PART, "clock_mhz": 100.0}
    (folder / "compile.json").write_text(json.dumps({"settings": settings}))
    return folder


def test_every_source_adjustment_applies_to_the_installed_finn_rtllib():
    source = patches.rtllib_dir()
    for patch in patches.PATCHES:
        for name in patch.files:
            text = (source / name).read_text()
            assert patch.apply(text, source / name) != text, patch.name


def test_a_changed_rtl_source_is_noticed_not_synthesized():
    patch = next(p for p in patches.PATCHES if p.name == "no_startup_watchdog")
    with pytest.raises(patches.PatchError, match="no_startup_watchdog.*mvu.sv"):
        patch.apply("module mvu; endmodule\n", "mvu/mvu.sv")


def test_mvau_dsps_from_yosys_equal_the_model_and_a_rerun_is_cached(design_dir, cache_dir):
    design = synth.load_design(design_dir)
    first = synth.synthesize(design, cache_dir, layers=["MVAU_rtl_0"], progress=False)
    row = first.table.loc["MVAU_rtl_0"]
    assert first.failures == [] and row["status"] == "synthesized"
    assert not first.complete  # only the layer asked for: its figures are not the design's
    folded = design.folded
    node = folded.graph.node[0]
    assert row["DSP"] == resources.rtl_mvau_dsp(folded, node, PART) == 2 * 4 / 2  # 2 lanes
    assert row["LUT"] == row["LUT_logic"] + row["LUT_SRL"] + row["LUT_RAM"] > 0
    assert row["FF"] > 0 and row["seconds"] > 0
    assert row["BRAM36"] == row["model_BRAM36"] == 0  # 4 words of 32 bits: LUTRAM
    second = synth.synthesize(design, cache_dir, layers=["MVAU_rtl_0"], progress=False)
    assert second.table.loc["MVAU_rtl_0", "status"] == "cached"
    assert second.table.loc["MVAU_rtl_0", "LUT"] == row["LUT"]


def test_model_bram_of_a_deep_weight_memory_equals_yosys(tmp_path, cache_dir):
    model = tiny_mvau(pe=1, simd=2, mw=512, mh=32)  # 8192 x 8-bit weight words
    design = synth.Design(model, PART, 100.0, tmp_path)
    row = synth.synthesize(design, cache_dir, ["MVAU_rtl_0"], progress=False).table.iloc[0]
    assert row["status"] in ("synthesized", "cached") and row["RAMB18"] + row["RAMB36"] > 0
    assert row["model_BRAM36"] == row["BRAM36"] and row["model_DSP"] == row["DSP"]


def test_cli_json_reports_each_layer_beside_the_model(design_dir, cache_dir, capsys):
    argv = ["synth", str(design_dir), "--layers", "MVAU_rtl_0", "--cache-dir", str(cache_dir)]
    assert cli.main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (layer,) = report["layers"]
    assert layer["block"] == "MVAU_rtl_0" and layer["DSP"] == layer["model_DSP"]
    assert report["complete"] is False and report["totals"]["DSP"] == layer["DSP"]


def test_yosys_errors_name_the_layer_and_the_log(design_dir, cache_dir, monkeypatch):
    monkeypatch.setattr(yosys, "SCRIPT", "no_such_command\n" + yosys.SCRIPT)
    report = synth.synthesize(
        synth.load_design(design_dir), cache_dir, layers=["MVAU_rtl_0"], progress=False
    )
    (failure,) = report.failures
    assert "MVAU_rtl_0" in failure and "yosys.log" in failure
    assert not report.complete and report.totals()["blocks"] == 0


def test_a_design_without_hw_layers_is_refused(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "host_only",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    ModelWrapper(qonnx_make_model(graph)).save(str(tmp_path / "design_accelerator.onnx"))
    with pytest.raises(SystemExit, match="no HW layers"):
        cli.main(["synth", str(tmp_path), "--part", PART, "--cache-dir", str(tmp_path / "c")])


def test_a_folder_without_a_design_names_what_it_looked_for(tmp_path):
    with pytest.raises(SystemExit, match="design_accelerator.onnx"):
        cli.main(["synth", str(tmp_path)])


def test_a_layer_whose_hdl_generation_fails_is_named_and_left_out(tmp_path, cache_dir):
    from qonnx.custom_op.registry import getCustomOp

    model = tiny_mvau(pe=2, simd=1, mw=4, mh=4)
    getCustomOp(model.graph.node[0]).set_nodeattr("pumpedCompute", 1)  # refused at SIMD 1
    design = synth.Design(model, PART, 100.0, tmp_path)
    report = synth.synthesize(design, cache_dir, ["MVAU_rtl_0"], progress=False)
    (failure,) = report.failures
    assert failure.startswith("MVAU_rtl_0 (MVAU_rtl): HDL generation failed") and "SIMD" in failure
    assert report.table.loc["MVAU_rtl_0", "status"] == "failed" and not report.complete
    assert "MVAU_rtl_0" in report.totals()["left_out"]


def test_differences_beyond_the_tolerance_are_explained_or_flagged():
    import pandas as pd

    from modules.synthesis.lut_differences import NOTES, explain

    kinds = pd.DataFrame({"LUT diff %": [-88.0, 3.0, 40.0]}, index=["Thresholding", "MVAU", "New"])
    why = explain(kinds)["why"]
    assert why["Thresholding"] == NOTES["Thresholding"] and why["MVAU"] == ""
    assert why["New"] == "unexplained"  # a new difference shows up, not a stale note


def thresholding(channels, pe, thresholds, input_dtype="INT12", output_dtype="UINT4"):
    """One Thresholding_rtl layer with constant `thresholds` (channels x steps)."""
    ensure_finn()
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    steps = thresholds.shape[1]
    node = helper.make_node(
        "Thresholding", ["x", "t"], ["y"], domain="finn.custom_op.fpgadataflow",
        backend="fpgadataflow", NumChannels=channels, PE=pe, numSteps=steps,
        inputDataType=input_dtype, weightDataType=input_dtype, outputDataType=output_dtype,
        preferred_impl_style="rtl", name="Thresholding_0",
    )  # fmt: skip
    graph = helper.make_graph(
        [node],
        "thresholds",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels])],
    )
    model = ModelWrapper(qonnx_make_model(graph, producer_name="thresholds"))
    model.set_tensor_datatype("x", DataType[input_dtype])
    model.set_tensor_datatype("y", DataType[output_dtype])
    model.set_initializer("t", np.sort(thresholds, axis=1).astype(np.float32))
    model.set_tensor_datatype("t", DataType[input_dtype])
    return model.transform(SpecializeLayers(PART))


def test_threshold_roms_are_the_files_finn_plus_writes(tmp_path):
    from qonnx.custom_op.registry import getCustomOp

    rng = np.random.default_rng(0)
    model = thresholding(8, 2, rng.integers(-2000, 2000, (8, 11)))  # 11 of 15: padded
    node = model.graph.node[0]
    getCustomOp(node).make_weight_file(
        model.get_initializer("t"), "internal_embedded", str(tmp_path / "memblock.dat")
    )
    roms = list(resources.threshold_stage_roms(model, node))
    assert len(roms) == 4 * 2  # 4 stages (UINT4 out) x PE 2
    for stage, pe, values in roms:
        written = (tmp_path / f"{node.name}_threshs_{pe}_{stage}.dat").read_text().split()
        assert [int(word, 16) for word in written] == values.tolist(), (stage, pe)
    assert resources.varying_bits(np.array([0b101, 0b111, 0b001]), 3) == 2  # bit 0 is 1


def test_model_bram_of_threshold_roms_equals_yosys(tmp_path, cache_dir):
    """A 1024-deep last stage (128 channels, PE 1) with 9 varying bits goes to a RAMB18 in
    Yosys; with one lane constant (all thresholds >= 0, so the sign bit is 0) it stays in
    logic: the model follows the values, not only the shape."""
    rng = np.random.default_rng(1)
    signed = rng.integers(-255, 256, (128, 15))
    both = {"varying": signed, "sign_constant": np.abs(signed)}
    for name, values in both.items():
        model = thresholding(128, 1, values, input_dtype="INT9")
        design = synth.Design(model, PART, 100.0, tmp_path)
        report = synth.synthesize(design, cache_dir, ["Thresholding_rtl_0"], progress=False)
        row = report.table.loc["Thresholding_rtl_0"]
        assert row["status"] in ("synthesized", "cached"), row["error"]
        assert row["model_BRAM36"] == row["BRAM36"] == (0.5 if name == "varying" else 0), name


# (depth, width, BRAM36) of fifo.sv FIFOs and (depth, padded width, read width, BRAM36) of
# weight memories as Yosys mapped them in the demo designs (benchmarks/synth_demo_designs.py)
YOSYS_FIFOS = [(339, 8, 0.5), (513, 8, 0.5), (790, 8, 0.5), (1284, 8, 1.0), (1415, 8, 1.0),
               (1731, 8, 0.5)]  # fmt: skip
YOSYS_WEIGHTS = [(1344, 48, 48, 2.5), (5824, 40, 36, 6.0), (384, 48, 48, 1.0), (2048, 16, 16, 1.0),
                 (576, 16, 16, 0.5), (384, 8, 8, 0.0), (4, 432, 432, 0.0)]  # fmt: skip


@pytest.mark.parametrize(("depth", "width", "bram36"), YOSYS_FIFOS)
def test_fifo_bram_follows_fifo_sv_and_yosys(depth, width, bram36):
    assert resources.fifo_bram36(depth, width) == bram36


@pytest.mark.parametrize(("depth", "width", "used", "bram36"), YOSYS_WEIGHTS)
def test_weight_memory_bram_follows_memory_libmap(depth, width, used, bram36):
    """1344 x 48 takes five RAMB18 (three 448-word banks side by side in 36-bit cells, not
    six); 5824 x 40 read as 36 bits drops the cells holding only the padding."""
    assert resources.memory_bram36(depth, width, used_width=used) == bram36
