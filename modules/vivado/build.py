"""Stage 04: FINN's builder from the folded stage-03 model to a PYNQ bitfile and driver.

The stage-03 hand-over is the specialized, folded dataflow child graph plus its folding JSON,
so the build starts at `step_apply_folding_config` (re-applying the JSON lets a user edit it
between 03 and 04) and runs FINN's remaining default steps. Without Vivado and Vitis HLS the
build folder is still written with a ready-to-run `run_build.sh`, and `run_build` reports the
bitstream as skipped instead of failing. Vivado's reports are read by modules/vivado/reports.py.

MVAUs with mem_mode "external" (weights streamed from DRAM) need nothing extra here: the
folding JSON carries their mem_mode, and the vivado_zynq shell flow's ZynqBuild runs
InsertIODMA(insert_extmemw=True), which gives each one a weight DMA (burst mode "wrap"), and
MakePYNQDriver writes their buffers to driver/runtime_weights/. `check_streamed_layers` makes
sure the folding JSON still asks for them, since the build re-applies it.
"""

import functools
import json
import os
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from modules.hardware.estimates import part_for_board

# The builder steps that follow folding, in FINN's default order (checked against
# finn.builder.build_dataflow_config.default_build_dataflow_steps in build_config).
FIRST_BUILD_STEP = "step_apply_folding_config"
LAST_BUILD_STEP = "step_deployment_package"
BUILD_CONFIG_JSON = "build_config.json"
BUILD_CONFIG_YAML = "build_config.yaml"
BUILD_SCRIPT = "run_build.sh"
FOLDING_JSON = "folding_config.json"
FIFO_JSON = "fifo_config.json"
OUTPUT_DIR = "output"  # FINN's output_dir inside the build folder


# ------------------------------------------------------------------ toolchain


@dataclass(frozen=True)
class ToolchainStatus:
    vivado: str | None  # path of the vivado binary, None if not found
    vitis_hls: str | None  # path of vitis_hls or vitis-run, None if not found
    missing: tuple = ()  # one human sentence per missing piece

    @property
    def ready(self):
        return not self.missing

    @property
    def message(self):
        if self.ready:
            return f"Vivado: {self.vivado}; Vitis HLS: {self.vitis_hls}"
        return "Bitstream build needs Vivado and Vitis HLS. Missing: " + "; ".join(self.missing)


def _find_binary(names, env, roots):
    """First of `names` found on env's PATH or in `<root>/bin` of the given tool roots."""
    search = os.pathsep.join([env.get("PATH", "")] + [str(Path(r) / "bin") for r in roots])
    for name in names:
        found = shutil.which(name, path=search)
        if found:
            return found
    return None


def toolchain_status(env=None):
    """Which of Vivado / Vitis HLS are usable, from the environment (os.environ by default)."""
    env = os.environ if env is None else env
    missing = []
    vivado_root = env.get("XILINX_VIVADO")
    if not vivado_root:
        missing.append("XILINX_VIVADO is not set (source <Xilinx>/Vivado/<version>/settings64.sh)")
    vivado = _find_binary(["vivado"], env, [vivado_root] if vivado_root else [])
    if vivado is None:
        missing.append("the `vivado` binary is not on PATH nor in $XILINX_VIVADO/bin")
    hls_roots = [env[name] for name in ("XILINX_HLS", "XILINX_VITIS") if env.get(name)]
    if not hls_roots:
        missing.append("neither XILINX_HLS nor XILINX_VITIS is set (Vitis HLS settings64.sh)")
    # Vivado > 2024.2 runs HLS through `vitis-run`, older versions through `vitis_hls`
    vitis_hls = _find_binary(["vitis_hls", "vitis-run"], env, hls_roots)
    if vitis_hls is None:
        missing.append("neither `vitis_hls` nor `vitis-run` is on PATH or in $XILINX_HLS/bin")
    return ToolchainStatus(vivado=vivado, vitis_hls=vitis_hls, missing=tuple(missing))


# ------------------------------------------------------------------ build configuration


@dataclass(frozen=True)
class BuildSettings:
    """What the build reads from config: board and its part, clock, which outputs to make."""

    board: str
    part: str
    clock_mhz: float
    generate_bitfile: bool = True
    ooc_synth: bool = True

    @property
    def clock_period_ns(self):
        return round(1000.0 / self.clock_mhz, 6)


def build_settings(cfg):
    """BuildSettings from config, checked: a FINN PYNQ board, its part, a positive clock."""
    if not cfg.CLOCK_MHZ or cfg.CLOCK_MHZ <= 0:
        raise ValueError(f"config.CLOCK_MHZ must be a positive number, got {cfg.CLOCK_MHZ!r}")
    return BuildSettings(
        board=cfg.BOARD,
        part=fpga_part(cfg),
        clock_mhz=cfg.CLOCK_MHZ,
        generate_bitfile=cfg.GENERATE_BITFILE,
        ooc_synth=cfg.OOC_SYNTH,
    )


def build_steps():
    """FINN's default steps from FIRST_BUILD_STEP to LAST_BUILD_STEP."""
    from finn.builder.build_dataflow_config import default_build_dataflow_steps as steps

    for name in (FIRST_BUILD_STEP, LAST_BUILD_STEP):
        if name not in steps:
            raise RuntimeError(
                f"modules/vivado/build.py: FINN's default_build_dataflow_steps has no {name}; "
                f"the installed FINN names its steps: {steps}"
            )
    return steps[steps.index(FIRST_BUILD_STEP) : steps.index(LAST_BUILD_STEP) + 1]


def _generate_outputs(settings):
    outputs = ["estimate_reports", "stitched_ip"]
    if settings.ooc_synth:
        outputs.append("out_of_context_synth")
    if settings.generate_bitfile:
        outputs += ["bitfile", "pynq_driver", "deployment_package"]
    return outputs


def fpga_part(cfg):
    """config.BOARD_PARTS[config.BOARD], checked against FINN's own board table."""
    from finn.util.basic import pynq_part_map

    part = part_for_board(cfg.BOARD, cfg.BOARD_PARTS)
    if cfg.BOARD not in pynq_part_map:
        raise ValueError(
            f"config.BOARD {cfg.BOARD!r} is not a FINN PYNQ board; known: {sorted(pynq_part_map)}"
        )
    if part != pynq_part_map[cfg.BOARD]:
        raise ValueError(
            f"config.BOARD_PARTS[{cfg.BOARD!r}] is {part!r}, but FINN builds {cfg.BOARD} "
            f"for {pynq_part_map[cfg.BOARD]}"
        )
    return part


def build_config(settings, model_path, folding_path, out_dir, fifo_config=None):
    """DataflowBuildConfig fields (plain JSON values) for the build of the stage-03 model.

    Paths are written as given, so relative ones stay relative to the config file (FINN's
    `construct_from` resolves them against it). Validated by constructing the FINN object.
    With `fifo_config` (stage 03's FIFO depths) the builder applies those depths instead of
    sizing the FIFOs again by simulation, so the bitstream has the FIFOs 03 estimated.
    """
    from finn.builder.build_dataflow_config import DataflowBuildConfig

    if not Path(model_path).name.endswith(".onnx"):
        raise ValueError(f"{model_path}: the stage-03 model must be an .onnx file")
    fields = {
        "output_dir": str(out_dir),
        "board": settings.board,
        "fpga_part": settings.part,
        "shell_flow_type": "vivado_zynq",
        "synth_clk_period_ns": settings.clock_period_ns,
        "folding_config_file": str(folding_path),
        "generate_outputs": _generate_outputs(settings),
        "steps": build_steps(),
        # the z7020 has no URAM, which FINN's "auto" picks for FIFOs deeper than 2028
        "large_fifo_mem_style": "block",
        "save_intermediate_models": True,
        "console_log_level": "WARNING",
    }
    if fifo_config is not None:
        fields |= {"auto_fifo_depths": False, "fifo_config_file": str(fifo_config)}
    DataflowBuildConfig.from_dict(fields)  # raises on unknown keys or values
    return fields


def build_config_yaml(fields):
    """The same fields as YAML for finn-plus' `finn build`."""
    import yaml

    return yaml.safe_dump(fields, sort_keys=False)


# ------------------------------------------------------------------ build folder


@dataclass(frozen=True)
class BuildFolder:
    root: Path
    model: Path
    folding: Path
    config_json: Path
    config_yaml: Path
    script: Path

    @property
    def output_dir(self):
        return self.root / OUTPUT_DIR


def copy_model(model_path, target_dir):
    """Copy NAME.onnx and, if present, its external weights NAME.onnx.data (same names, since
    the .onnx file refers to the data file by name)."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path}: stage-03 model not found (run notebook 03)")
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    for source in (model_path, model_path.with_name(model_path.name + ".data")):
        if source.is_file():
            shutil.copy2(source, target_dir / source.name)
    return target_dir / model_path.name


def _python_build_code(model_name):
    return (
        "import sys; from pathlib import Path; "
        "from finn.util.settings import initialize_dummy_settings; "
        "from finn.builder.build_dataflow import build_dataflow_cfg; "
        "from finn.builder.build_dataflow_config import DataflowBuildConfig; "
        "initialize_dummy_settings(); "
        f'cfg = DataflowBuildConfig.construct_from(Path("{BUILD_CONFIG_JSON}")); '
        f'sys.exit(build_dataflow_cfg("{model_name}", cfg))'
    )


def build_script(model_name, python=sys.executable):
    """run_build.sh: the builder through Python (default) or `./run_build.sh finn` (finn CLI)."""
    return f"""#!/usr/bin/env bash
# FINN bitstream build of {model_name}, written by modules/vivado/build.py.
# Needs Vivado + Vitis HLS: source <Xilinx>/Vivado/<version>/settings64.sh first.
# Outputs go to ./{OUTPUT_DIR} (bitfile/, driver/, deploy/, report/).
set -euo pipefail
cd "$(dirname "$0")"
export FINN_BUILD_DIR="${{FINN_BUILD_DIR:-$PWD/finn_tmp}}"
mkdir -p "$FINN_BUILD_DIR"
if [ "${{1:-python}}" = "finn" ]; then
    # finn-plus' CLI; it also fetches FINN's HLS/RTL dependencies on first use
    finn build --batch {BUILD_CONFIG_YAML} {model_name}
else
    "${{PYTHON:-{python}}}" -c {shlex.quote(_python_build_code(model_name))}
fi
"""


def check_streamed_layers(model_path, folding_path):
    """The layers of the model that stream weights from DRAM; an error naming the folding
    JSON when it would turn one back to on-chip weights (the build re-applies it)."""
    from qonnx.core.modelwrapper import ModelWrapper

    from modules.dataflow.external_weights import EXTERNAL, external_weight_layers

    streamed = external_weight_layers(ModelWrapper(str(model_path)))
    folding = json.loads(Path(folding_path).read_text())
    lost = [n for n in streamed if folding.get(n, {}).get("mem_mode", EXTERNAL) != EXTERNAL]
    if lost:
        raise ValueError(
            f"{folding_path}: sets another mem_mode for {', '.join(lost)}, whose weights the "
            "design streams from DRAM (mem_mode external); the build would put them on chip"
        )
    return streamed


def write_build_folder(settings, model_path, folding_path, root, fifo_config_path=None):
    """Model copy (+ .onnx.data), folding JSON, FIFO depths (if given), build config JSON +
    YAML and run_build.sh."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    model = copy_model(model_path, root)
    folding_path = Path(folding_path)
    if not folding_path.is_file():
        raise FileNotFoundError(f"{folding_path}: folding JSON from stage 03 not found")
    folding = root / FOLDING_JSON
    shutil.copy2(folding_path, folding)
    fifo_config = None
    if fifo_config_path is not None:
        if not Path(fifo_config_path).is_file():
            raise FileNotFoundError(f"{fifo_config_path}: FIFO depths from stage 03 not found")
        shutil.copy2(fifo_config_path, root / FIFO_JSON)
        fifo_config = FIFO_JSON
    fields = build_config(settings, model, FOLDING_JSON, OUTPUT_DIR, fifo_config)
    config_json = root / BUILD_CONFIG_JSON
    config_json.write_text(json.dumps(fields, indent=2))
    config_yaml = root / BUILD_CONFIG_YAML
    config_yaml.write_text(build_config_yaml(fields))
    script = root / BUILD_SCRIPT
    script.write_text(build_script(model.name))
    script.chmod(0o755)
    return BuildFolder(root, model, folding, config_json, config_yaml, script)


# ------------------------------------------------------------------ running the build


@dataclass
class BuildResult:
    status: str  # "built" | "skipped" | "failed"
    reason: str = ""
    output_dir: Path | None = None
    bitfile: Path | None = None
    hwh: Path | None = None
    driver_dir: Path | None = None
    report_dir: Path | None = None
    step_seconds: dict = field(default_factory=dict)

    @property
    def built(self):
        return self.status == "built"


def _steps_with_progress(step_names, bar):
    """The builder's step functions, each advancing `bar`; the builder reads `__name__`."""
    from finn.builder.build_dataflow_steps import build_dataflow_step_lookup

    def with_progress(step):
        @functools.wraps(step)
        def run(model, cfg):
            bar.set_description(step.__name__)
            model = step(model, cfg)
            bar.update(1)
            return model

        return run

    return [with_progress(build_dataflow_step_lookup[name]) for name in step_names]


def _run_finn_builder(folder, bar):
    from finn.builder.build_dataflow import build_dataflow_cfg
    from finn.builder.build_dataflow_config import DataflowBuildConfig

    dfbc = DataflowBuildConfig.construct_from(folder.config_json)
    dfbc.output_dir = str(folder.output_dir)  # relative output_dir would follow the cwd
    dfbc.steps = _steps_with_progress(dfbc.steps, bar)
    stdout, stderr = sys.stdout, sys.stderr
    try:
        return build_dataflow_cfg(str(folder.model), dfbc)
    finally:
        # the builder redirects stdout/stderr into its log and leaves them so on success
        sys.stdout, sys.stderr = stdout, stderr


def run_build(folder, status=None):
    """FINN's builder on a written build folder when the toolchain is ready, else "skipped"."""
    status = toolchain_status() if status is None else status
    if not status.ready:
        return BuildResult(
            "skipped",
            reason=f"{status.message}. To build later: {folder.script}",
            output_dir=folder.output_dir,
        )
    from tqdm.auto import tqdm

    from modules.dataflow.setup import ensure_finn

    ensure_finn(folder.root / "finn_tmp")
    steps = json.loads(folder.config_json.read_text())["steps"]
    with tqdm(total=len(steps), desc="FINN build", unit="step") as bar:
        exit_code = _run_finn_builder(folder, bar)
    result = collect_build_outputs(folder.output_dir)
    if exit_code != 0:
        result.status = "failed"
        result.reason = (
            f"FINN builder exit code {exit_code}; log: {folder.output_dir}/build_dataflow.log"
        )
    return result


def collect_build_outputs(output_dir):
    """BuildResult for an output folder a build wrote (also for a build run via run_build.sh)."""
    output_dir = Path(output_dir)
    report_dir = output_dir / "report"
    bitfiles = sorted((output_dir / "bitfile").glob("*.bit"))
    hwhs = sorted((output_dir / "bitfile").glob("*.hwh"))
    driver = output_dir / "driver"
    copy_ooc_reports(report_dir)
    timing_file = report_dir / "time_per_step.json"
    return BuildResult(
        "built" if bitfiles else "failed",
        reason="" if bitfiles else f"no .bit file in {output_dir / 'bitfile'}",
        output_dir=output_dir,
        bitfile=bitfiles[0] if bitfiles else None,
        hwh=hwhs[0] if hwhs else None,
        driver_dir=driver if driver.is_dir() else None,
        report_dir=report_dir if report_dir.is_dir() else None,
        step_seconds=json.loads(timing_file.read_text()) if timing_file.is_file() else {},
    )


def copy_ooc_reports(report_dir):
    """Bring the out-of-context utilisation/timing text reports next to FINN's JSON reports
    (FINN leaves them in its temporary stitched-IP project)."""
    summary = Path(report_dir) / "ooc_synth_and_timing.json"
    if not summary.is_file():
        return
    project = Path(json.loads(summary.read_text()).get("vivado_proj_folder", ""))
    for name in ("ooc_utilization.rpt", "ooc_timing.rpt"):
        if (project / name).is_file():
            shutil.copy2(project / name, Path(report_dir) / name)
