"""Source adjustments that let Yosys' slang frontend read finn-rtllib, applied to copies.

finn-plus writes its RTL for Vivado. Yosys 0.70 with `read_slang` reads it after a few small
edits, none of which changes the logic Vivado would build. Each edit is a `Patch`: the file,
the text it expects and what replaces it, and the construct it works around. A patch whose
text is not found (a finn-plus upgrade changed the RTL) raises `PatchError` instead of
synthesizing something else than intended; `tests/test_synthesis.py` checks every patch
against the installed finn-plus.
"""

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path


class PatchError(RuntimeError):
    """A source adjustment no longer matches the finn-rtllib it is applied to."""


@dataclass(frozen=True)
class Patch:
    name: str
    files: tuple  # paths relative to finn-rtllib
    pattern: str  # regular expression (re.M)
    replacement: str
    counts: tuple  # matches expected in each file, in the order of `files`
    works_around: str

    def apply(self, text, path):
        expected = self.counts[[str(path).endswith(f) for f in self.files].index(True)]
        patched, found = re.subn(self.pattern, self.replacement, text, flags=re.M)
        if found != expected:
            raise PatchError(
                f"source adjustment {self.name!r} expected {expected} match(es) of "
                f"{self.pattern!r} in {path}, found {found}: the finn-rtllib of this finn-plus "
                "differs from the one the adjustment was written for (modules/synthesis/"
                "patches.py)"
            )
        return patched


PATCHES = (
    Patch(
        name="nettype_inside_module",
        files=("fifo/hdl/fifo.sv", "dwc/hdl/vpc.sv"),
        pattern=r"^`default_nettype \w+\n",
        replacement="",
        counts=(2, 2),
        works_around="`default_nettype between the port list and endmodule: slang rejects a "
        "directive inside a design element (it only affects implicit-net checks)",
    ),
    Patch(
        name="ram_style_attribute_case",
        files=(
            "thresholding/hdl/thresholding.sv",
            "fifo/hdl/fifo.sv",
            "memstream/hdl/memstream.sv",
        ),
        pattern=r"(\(\*.*)RAM_STYLE = ",
        replacement=r"\1ram_style = ",
        counts=(2, 3, 1),
        works_around="Yosys' memory mapping reads the attribute `ram_style` case-sensitively; "
        "Vivado accepts `RAM_STYLE`",
    ),
    Patch(
        name="no_ultra_ram_on_7series",
        files=("fifo/hdl/fifo.sv",),
        pattern=r'/\* else \*/\s+"ultra";',
        replacement='/* else */                        "block";',
        counts=(1,),
        works_around="fifo.sv picks URAM above depth 2028; 7-series parts have none and "
        "Vivado builds block RAM there (applied for xc7 parts only)",
    ),
    Patch(
        name="hoist_leaf_load_function",
        files=("mvu/add_multi.sv",),
        pattern=(
            r"^(\tuwire \[SUM_WIDTH-1:0\]  sum0;\n(?:.*\n)*?)"
            r"(\t\t// Compute the count of decendents.*\n"
            r"\t\ttypedef int unsigned  leaf_load_t\[2\*N-1\];\n"
            r"\t\tfunction leaf_load_t init_leaf_loads\(\);\n(?:.*\n)*?"
            r"\t\tendfunction : init_leaf_loads\n)"
        ),
        replacement=r"\2\1",
        counts=(1,),
        works_around="a constant function (and its return type) declared inside a generate "
        "block and called there for a localparam: slang cannot call it in a constant "
        "expression; moved unchanged to module level, before the generate block",
    ),
    Patch(
        name="no_startup_watchdog",
        files=("mvu/mvu.sv",),
        pattern=r"^\t\tinitial begin\n\t\t\t#100ns;\n\t\t\tDirty <= 0;\n\t\tend\n",
        replacement="\t\tinitial  Dirty = 0;\n",
        counts=(1,),
        works_around="a simulation-only start-up watchdog (`#100ns` in an initial block) "
        "that synthesis cannot represent; it only drives a $warning",
    ),
    Patch(
        name="reversed_part_select_in_dead_branch",
        files=("thresholding/hdl/thresholding.sv",),
        pattern=r"p\.ptr\[M-1:SN\+1\] < 2\*\*stage - SCOPE_REDUCE",
        replacement="(p.ptr[M-1:0] >> (SN+1)) < 2**stage - SCOPE_REDUCE",
        counts=(1,),
        works_around="`p.ptr[M-1:SN+1]` is a reversed part-select at stage 0 (SN = M-1), "
        "where SCOPE_REDUCE is 0 and the branch is dead; slang rejects it even there. The "
        "shift is the same value wherever the select is valid",
    ),
)


# Verilator (cycle-accurate simulation, modules/synthesis/simulate.py) reads the sources
# adjusted for Yosys after these further edits; Yosys does not need them.
VERILATOR_PATCHES = (
    Patch(
        name="fifo_geometry_without_struct_function",
        files=("fifo/hdl/fifo.sv",),
        pattern=(
            r"^\tfunction abits_t INIT_ABITS\(\);\n(?:.*\n)*?\tendfunction : INIT_ABITS\n"
            r"\tlocalparam abits_t       ABITS      = INIT_ABITS\(\);\n"
        ),
        replacement=(
            "\tlocalparam int unsigned  ABITS_FULL = $clog2(DEPTH_REQ);\n"
            "\tlocalparam int unsigned  ABITS_REST = $clog2(DEPTH_REQ - 2**(ABITS_FULL-1));\n"
            "\tlocalparam bit  ABITS_SPLIT = ABITS_FULL > MIN_ABITS && ABITS_REST < ABITS_FULL-1;\n"
            "\tlocalparam abits_t       ABITS      = '{\n"
            "\t\tlo: ABITS_SPLIT? ABITS_FULL - 1 : ABITS_FULL,\n"
            "\t\thi: !ABITS_SPLIT? 0 : ABITS_REST < 1? 1 : ABITS_REST\n"
            "\t};\n"
        ),
        counts=(1,),
        works_around="a constant function that builds and returns an unpacked struct "
        "(`'{ lo: ..., hi: 0 }`, then `abits.lo--`) for the memory geometry: Verilator 5.48 "
        "cannot evaluate struct patterns or member assignments in a constant function; the "
        "same geometry as parameter expressions",
    ),
)


def rtllib_dir():
    from finn.util.settings import get_settings

    from modules.dataflow.setup import ensure_finn

    ensure_finn()

    return Path(get_settings().finn_rtllib)


def patched_rtllib(dest, part="xc7z020clg400-1", simulation=False):
    """Copy finn-rtllib to `dest` and apply every patch for `part` (and for Verilator when
    `simulation`); returns `dest`."""
    source, dest = rtllib_dir(), Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    for patch in patches_for(part) + (VERILATOR_PATCHES if simulation else ()):
        for name in patch.files:
            path = dest / name
            path.write_text(patch.apply(path.read_text(), source / name))
    return dest


def patches_for(part):
    xc7 = part.lower().startswith("xc7")
    return tuple(p for p in PATCHES if xc7 or p.name != "no_ultra_ram_on_7series")


def patch_digest():
    """Changes when any patch changes (part of the synthesis cache key)."""
    text = repr([(p.name, p.files, p.pattern, p.replacement, p.counts) for p in PATCHES])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
