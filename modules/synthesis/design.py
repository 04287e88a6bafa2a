"""Synthesize every RTL layer of a compiled design with Yosys, beside the resource model.

The stitched design is the one the resource model costs (`resources.stitched_design`: FINN's
InsertDWC / InsertFIFO / SpecializeLayers, as the builder inserts them), so every block has
both figures. HLS layers need Vitis HLS and are listed as such; totals say whether they
cover the whole design.
"""

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from qonnx.core.modelwrapper import ModelWrapper
from tqdm.auto import tqdm

from modules.hardware import resources
from modules.synthesis import cache, hdl, patches, yosys

NEEDS_HLS = "needs Vitis HLS"
FAILED = "failed"
LAYER_FILE = "layer.json"  # top module and files of the HDL in a cache folder
COMPARED = (("LUT", "LUT"), ("FF", "FF"), ("BRAM36", "BRAM36"), ("DSP", "DSP"))


class SynthError(RuntimeError):
    """A design that cannot be synthesized as asked (the message says why)."""


@dataclass
class Design:
    folded: ModelWrapper
    part: str
    clock_mhz: float
    source: Path


@dataclass
class SynthReport:
    table: pd.DataFrame  # one row per block of the stitched design
    part: str
    source: str
    failures: list = field(default_factory=list)
    selected: bool = False  # only the blocks named by `layers`

    @property
    def complete(self):
        """True when every block of the design has a Yosys figure (all blocks asked for, no
        HLS layer, no failure)."""
        done = self.table["status"].isin(("synthesized", "cached")).all()
        return bool(done) and not self.selected

    def totals(self):
        """Sums over the synthesized blocks, and the model's sums over the same blocks;
        `complete` says whether these are the whole design."""
        done = self.table[self.table["status"].isin(("synthesized", "cached"))]
        columns = [*yosys.COUNTS, "BRAM36", *(f"model_{m}" for m, _ in COMPARED)]
        sums = {c: float(done[c].sum()) for c in columns}
        left_out = self.table[~self.table.index.isin(done.index)]
        return {
            "complete": self.complete,
            "blocks": int(len(done)),
            "left_out": {name: row["status"] for name, row in left_out.iterrows()},
            "left_out_model": {m: float(left_out[f"model_{m}"].sum()) for m, _ in COMPARED},
            **sums,
        }


# ------------------------------------------------------------------ the design folder

FOLDED_FILES = ("design_accelerator.onnx", "10_design_folded.onnx", "finn/10_design_folded.onnx")


def load_design(design_dir, part=None, clock_mhz=None, default_part=None, default_clock=100.0):
    """The folded accelerator of a `firesmoke compile --out` folder (design_accelerator.onnx,
    part and clock from compile.json) or of a run (RUN/finn/10_design_folded.onnx)."""
    folder = Path(design_dir)
    if not folder.is_dir():
        raise SynthError(f"synth: {folder} is not a folder")
    found = next((folder / f for f in FOLDED_FILES if (folder / f).is_file()), None)
    if found is None:
        raise SynthError(
            f"synth: {folder} holds no folded design (looked for {', '.join(FOLDED_FILES)}); "
            "compile one with `firesmoke compile MODEL --out DIR` or run notebook 03"
        )
    settings = {}
    report = found.parent / "compile.json"
    if report.is_file():
        settings = json.loads(report.read_text()).get("settings", {})
    return Design(
        folded=ModelWrapper(str(found)),
        part=part or settings.get("part") or default_part,
        clock_mhz=float(clock_mhz or settings.get("clock_mhz") or default_clock),
        source=found,
    )


HW_DOMAIN = "finn.custom_op.fpgadataflow"
_NO_HW = (
    "synth: {} has no HW layers (no FINN dataflow nodes); is it the folded accelerator "
    "of a compiled design?"
)


def hw_nodes(model):
    return [n for n in model.graph.node if hdl.is_rtl(n) or hdl.is_hls(n)]


def select_layers(stitched, names):
    """The HW blocks to synthesize: all, or those named (unknown names are an error)."""
    nodes = hw_nodes(stitched)
    if not nodes:
        raise SynthError(_NO_HW.format("the stitched design"))
    if not names:
        return nodes
    known = {n.name: n for n in nodes}
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise SynthError(f"synth: no layer(s) {unknown} in the design; layers: {sorted(known)}")
    return [known[name] for name in names]


# ------------------------------------------------------------------ synthesis


def flow_context(part):
    """What besides the HDL decides a layer's counts (part of every cache key); the source
    adjustments are in the HDL itself (the patched copies are hashed with it)."""
    return {
        "part": part,
        "flow": yosys.script_digest(),
        "yosys": yosys.version(),
    }


@dataclass
class _Job:
    work: Path
    hdl: hdl.LayerHDL
    layers: list  # names of the blocks with this HDL
    result: dict = None


def synthesize(design, cache_dir, layers=None, jobs=1, progress=True, timeout=None):
    """Yosys figures per block of the stitched design, beside the resource model's."""
    fam = yosys.family(design.part)
    if not any(n.domain.startswith(HW_DOMAIN) for n in design.folded.graph.node):
        raise SynthError(_NO_HW.format(design.source))
    stitched = resources.stitched_design(design.folded, design.part)
    nodes = select_layers(stitched, layers)
    model_table = resources.block_table(design.folded, design.part)
    cache_dir = Path(cache_dir).resolve()
    rtl = [node for node in nodes if hdl.is_rtl(node)]
    results = {node.name: {"status": NEEDS_HLS} for node in nodes if not hdl.is_rtl(node)}
    failures, pending = [], {}
    if rtl:
        rtllib = _patched_rtllib(cache_dir, design.part)
        context = flow_context(design.part)
        stubs = yosys.primitive_stubs(fam)
        for node in tqdm(rtl, desc="HDL", disable=not progress):
            try:
                job = _stage(stitched, node, design, rtllib, cache_dir, context, fam, stubs)
            except hdl.HDLError as error:
                results[node.name] = {"status": FAILED, "error": str(error)}
                failures.append(str(error))
                continue
            stored = cache.load(job.work)
            if stored is not None:
                results[node.name] = {**stored, "status": "cached"}
            elif job.work in pending:
                pending[job.work].layers.append(node.name)
            else:
                pending[job.work] = job
        failures += _run_jobs(list(pending.values()), jobs, progress, timeout)
    for job in pending.values():
        results |= dict.fromkeys(job.layers, job.result)
    table = _table(nodes, results, model_table)
    return SynthReport(table, design.part, str(design.source), failures, bool(layers))


def _patched_rtllib(cache_dir, part):
    folder = cache_dir / f"rtllib-{patches.patch_digest()}-{part}"
    if not (folder / ".complete").is_file():
        patches.patched_rtllib(folder, part)
        (folder / ".complete").write_text("")
    return folder


def _stage(stitched, node, design, rtllib, cache_dir, context, fam, stubs):
    """Generate the layer's HDL in a staging folder, then keep it under its key (an
    identical layer staged before keeps its folder, and its top module's name)."""
    staging = cache_dir / "staging" / str(os.getpid()) / node.name  # runs may share a cache
    if staging.exists():
        shutil.rmtree(staging)
    layer = hdl.generate(stitched, node, design.part, design.clock_mhz, staging, rtllib)
    yosys.write_script(staging, layer, fam, stubs)
    (staging / LAYER_FILE).write_text(json.dumps({"top": layer.top, "files": layer.files}))
    work = cache_dir / cache.hdl_key(staging, node.name, context)
    if (work / LAYER_FILE).is_file():
        shutil.rmtree(staging)
        staged = json.loads((work / LAYER_FILE).read_text())
        layer = hdl.LayerHDL(node.name, node.op_type, staged["top"], tuple(staged["files"]))
    else:
        staging.rename(work)
    return _Job(work, layer, [node.name])


def _run_jobs(jobs_to_run, jobs, progress, timeout):
    failures = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(_synthesize_one, job, timeout): job for job in jobs_to_run}
        bar = tqdm(as_completed(futures), total=len(futures), desc="Yosys", disable=not progress)
        for future in bar:
            job = futures[future]
            try:
                result = future.result()
                cache.store(job.work, result)
                job.result = {**result, "status": "synthesized"}
            except yosys.YosysError as error:
                job.result = {"status": FAILED, "error": str(error)}
                failures.append(str(error))
    return failures


def _synthesize_one(job, timeout):
    start = time.perf_counter()
    counts = yosys.run(job.work, job.hdl, timeout=timeout)
    return {**counts, "seconds": time.perf_counter() - start, "log": str(job.work / yosys.LOG_FILE)}


def _table(nodes, results, model_table):
    rows = []
    for node in nodes:
        result = results[node.name]
        model = model_table.loc[node.name]
        row = {
            "block": node.name,
            "op_type": node.op_type,
            "type": resources.block_type(node.op_type),
            "status": result["status"],
            **{c: result.get(c) for c in yosys.COUNTS},
            "seconds": result.get("seconds"),
            **{f"model_{m}": float(model[col]) for m, col in COMPARED},
            "log": result.get("log"),
            "error": result.get("error"),
        }
        rows.append(row)
    table = pd.DataFrame(rows).set_index("block")
    counts = [*yosys.COUNTS, "seconds"]
    table[counts] = table[counts].astype(float)
    table["BRAM36"] = table["RAMB36"] + table["RAMB18"] / 2
    for m, _ in COMPARED:
        table[f"diff_{m}"] = table[f"model_{m}"] - table[m]
    return table


def per_type(table):
    """Yosys vs model per block type over the synthesized blocks, LUT difference in %."""
    done = table[table["status"].isin(("synthesized", "cached"))]
    columns = ["LUT", "model_LUT", "FF", "model_FF", "BRAM36", "model_BRAM36", "DSP", "model_DSP"]
    grouped = done.groupby("type")[columns].sum()
    grouped.insert(0, "blocks", done.groupby("type").size())
    grouped["LUT diff %"] = 100 * (grouped["model_LUT"] - grouped["LUT"]) / grouped["LUT"]
    return grouped
