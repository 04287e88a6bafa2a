"""Notebook 04's steps: FINN's build folder from stage 03's hand-off, the Vivado build (or a
clean skip that says what is missing), post-synthesis figures against the estimates, and the
deployment package for the board."""

import pandas as pd
from qonnx.core.modelwrapper import ModelWrapper

from modules.data.datasets import build_split
from modules.deployment.package import (
    io_spec_from_model,
    make_deployment_package,
    package_weight_streams,
    write_self_check,
)
from modules.hardware.emulator import Emulator
from modules.stages.finn_transform import load_handoff
from modules.vivado import build, reports


def write_build_folder(cfg, paths):
    """RUN/build/: the folded model of 03, its folding JSON, build config and run_build.sh."""
    handoff = load_handoff(paths)
    settings = build.build_settings(cfg)
    build.check_streamed_layers(handoff["folded_child"], handoff["folding_config"])
    return build.write_build_folder(
        settings,
        handoff["folded_child"],
        handoff["folding_config"],
        paths.build,
        handoff.get("fifo_config"),  # absent in hand-overs written before it existed
    )


def build_bitstream(folder):
    """(toolchain status, BuildResult): built, failed, or skipped with the missing tools named."""
    status = build.toolchain_status()
    return status, build.run_build(folder, status)


def synthesis_vs_estimates(paths, result):
    """(post-synthesis vs estimate table, timing) of a finished build."""
    utilization, timing = reports.read_build_reports(result.report_dir)
    estimates = pd.read_csv(paths.estimate_totals, index_col=0)
    return reports.synthesis_vs_estimates(utilization, estimates), timing


def deployment_package(cfg, paths, result):
    """RUN/deploy/ for the board, with the bitfile and driver when the build made them."""
    handoff = load_handoff(paths)
    detect_spec = paths.detect_spec if cfg.TASK == "detect" else None  # written by 02
    io_spec = io_spec_from_model(
        ModelWrapper(handoff["folded_child"]),
        cfg.CLASSES,
        parent=ModelWrapper(handoff["parent"]),
        detect_spec=detect_spec,
        part=build.fpga_part(cfg),
    )
    return make_deployment_package(
        cfg,
        paths,
        handoff["folded_child"],
        io_spec,
        bitfile=result.bitfile,
        hwh=result.hwh,
        driver_dir=result.driver_dir,
    )


def record_self_check(cfg, paths, count):
    """The emulated accelerator on `count` test images, recorded into the package for
    `run_board.py --self-check` (which replays it through the board runtime, no board needed).
    External weights come from the package's weight files, as the board's DMAs stream them."""
    handoff = load_handoff(paths)
    samples = build_split(cfg, "test")[0][:count]
    streams = package_weight_streams(paths)
    emulator = Emulator(ModelWrapper(handoff["folded_child"]), weight_streams=streams)
    return write_self_check(paths, emulator, [s.image_path for s in samples])
