"""Published FINN builds (../shared/finn_reports): per-block figures with the blocks' node
attributes, whole-design totals, and the shell (what the builder adds around the
accelerator) as top minus the blocks.

Each report JSON holds `source` (part, FINN version, ...), `top` (totals as published) and
`blocks` (per block: LUT, FF, BRAM_36K, BRAM_18K, DSP, and `cfg` / `cfg_derived` with the
block's node attributes where the build's ONNX or folding file was readable). Reports of
out-of-context syntheses have totals only; their node attributes are in
`folding/<report>_step_create_stitched_ip_attrs.json`.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from modules.hardware.block_models import RESOURCES, Block, UnknownBlock, block_kind

SEVEN_SERIES = ("xc7",)
# A build whose routed layer blocks hold under a tenth of FINN's own HLS estimate of the same
# layers had its logic removed by synthesis (kf7lsu FACILE: four INT6 layers with 63
# thresholds each in 48-63 LUT, against 2.7-3.1 k estimated); the other builds lie at 0.25-2.1
OPTIMIZED_AWAY_RATIO = 0.1
_PARTITION = re.compile(r"^StreamingDataflowPartition_\d+_")


@dataclass
class PublishedBlock:
    block: Block
    published: dict  # LUT, FF, BRAM36, DSP


@dataclass
class PublishedBuild:
    name: str
    part: str
    finn_version: str
    top: dict  # LUT, FF, BRAM36, DSP (None where not published)
    out_of_context: bool  # accelerator alone, no shell; DSP unreliable on 7-series
    blocks: list = field(default_factory=list)  # PublishedBlock with full attributes
    partial: list = field(default_factory=list)  # block names without usable attributes
    design_blocks: list = field(default_factory=list)  # every Block of the design, if known
    shell: dict | None = None  # top minus all published blocks
    excluded: str = ""  # why its layer blocks are not fitted ("" if they are)

    @property
    def seven_series(self):
        return self.part.lower().startswith(SEVEN_SERIES)


def bram36(figures):
    """RAMB36 + RAMB18 / 2."""
    b36, b18 = figures.get("BRAM_36K"), figures.get("BRAM_18K")
    if b36 is None and b18 is None:
        return None
    return float(b36 or 0) + float(b18 or 0) / 2


def _resources(figures):
    return {
        "LUT": figures.get("LUT"),
        "FF": figures.get("FF"),
        "BRAM36": bram36(figures),
        "DSP": figures.get("DSP"),
    }


def _clean(value):
    # transcribed notes such as "auto (FINN v0.10 default)" keep the value before the note
    if isinstance(value, str) and " (" in value and not value.startswith(("INT", "UINT")):
        return value.split(" (")[0]
    return value


def _op_type(name, cfg):
    if cfg.get("op_type"):
        return cfg["op_type"]
    local = _PARTITION.sub("", name)
    return re.sub(r"_\d+$", "", local)


def _block(name, entry):
    cfg = entry.get("cfg") or entry.get("cfg_derived") or {}
    attrs = {k: _clean(v) for k, v in cfg.items() if not k.startswith("_") and k != "op_type"}
    return Block(name, _op_type(name, cfg), attrs)


def _optimized_away(report):
    """Why a build's layer blocks are not layer costs, or "": published LUTs of the blocks
    FINN's HLS estimate covers, against that estimate."""
    estimates = report.get("estimate_layer_resources_hls") or {}
    published = estimated = 0.0
    for name, entry in (report.get("blocks") or {}).items():
        node = entry.get("onnx_node") or _PARTITION.sub("", name)
        if node in estimates and entry.get("LUT") is not None:
            published += float(entry["LUT"])
            estimated += float(estimates[node].get("LUT", 0))
    if estimated and published < OPTIMIZED_AWAY_RATIO * estimated:
        return (
            f"layer blocks hold {published:.0f} LUT routed against {estimated:.0f} in FINN's HLS "
            f"estimate: synthesis removed their logic"
        )
    return ""


def load_build(path):
    path = Path(path)
    report = json.loads(path.read_text())
    source, top = report["source"], report["top"]
    ooc = "out_of_context" in source.get("report_kind", "") or "ooc" in path.stem
    build = PublishedBuild(
        name=path.stem,
        part=source["part"].split()[0],
        finn_version=source.get("finn_version", ""),
        top=_resources(top),
        out_of_context=ooc,
    )
    blocks = report.get("blocks") or {}
    for name, entry in blocks.items():
        block = _block(name, entry)
        try:
            block_kind(block.op_type)
        except UnknownBlock:
            build.partial.append(name)
            continue
        needs_attrs = block.kind not in ("IODMA",)
        if needs_attrs and not block.attrs:
            build.partial.append(name)
            continue
        build.blocks.append(PublishedBlock(block, _resources(entry)))
    build.excluded = _optimized_away(report)
    if build.excluded:  # the IODMAs are DMA engines, not layers: still comparable
        build.blocks = [item for item in build.blocks if item.block.kind == "IODMA"]
    if blocks and not ooc:
        build.shell = {
            res: (build.top[res] or 0) - sum(_resources(e)[res] or 0 for e in blocks.values())
            for res in RESOURCES
        }
    attrs_file = path.parent / "folding" / f"{path.stem}_step_create_stitched_ip_attrs.json"
    if attrs_file.is_file():
        nodes = json.loads(attrs_file.read_text())["nodes"]
        build.design_blocks = [Block(n["name"], n["op_type"], n["attrs"]) for n in nodes]
    return build


def load_builds(folder):
    """Every published build of `folder` (../shared/finn_reports), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no published reports folder {folder}")
    return [load_build(path) for path in sorted(folder.glob("*.json"))]
