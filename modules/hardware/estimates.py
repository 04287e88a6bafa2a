"""Estimates of a folded design, the budget check against the part, and the search for the
fastest design that fits.

The budget check uses the whole stitched design (`resources.py`: layers, FIFOs, data-width
converters, DMA engines, AXI infrastructure, calibrated on published post-synthesis reports);
FINN's own per-layer figures stay beside it as a second column. The search varies what FINN
leaves to the user: per MVAU/VVAU the compute implementation (RTL on DSP slices, HLS on DSPs,
HLS on LUTs) and the weight memory (BRAM or LUTRAM, or DRAM where config.EXTERNAL_WEIGHTS
allows: the weights stream in through a weight DMA, `dram.py`), for a sequence of target FPS
values. The costs of every option are read once per target from whole-design variants (per
compute layer, plus the rest of the design) and the per-layer choice is a local search that
lowers the most used resource, the DRAM bandwidth share at the target being one of them; the
chosen design is then estimated as a whole. No Vivado is involved.

Throughput here is the accelerator's: the lower of the compute bound (frames per second the
slowest layer allows at the clock) and, with external weights, the DRAM bound (`dram.py`); the
estimate names which binds. It excludes the host's pre/post-processing, packing and DMA
set-up per call, which notebook 05 measures end to end.
"""

import copy
import json
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from qonnx.custom_op.registry import getCustomOp

from modules.dataflow import flow as finn_flow
from modules.dataflow.external_weights import set_external_weights
from modules.dataflow.setup import ensure_finn
from modules.hardware import block_models, dram, fifo_sizing, resources
from modules.hardware.design_estimate import holdout_text

# FINN has no LUT model for these (the estimate is 0): totals underestimate LUTs by their cost.
NO_LUT_MODEL = (
    "MVAU_rtl",
    "FMPadding_rtl",
    "DuplicateStreams_hls",
    "ElementwiseAdd_hls",
    "GlobalAccPool_hls",
)
RESOURCES = ("LUT", "BRAM36", "DSP")  # FINN's per-layer estimate
BUDGET_RESOURCES = ("LUT", "FF", "BRAM36", "DSP")  # whole-design model and the budget
FIFO_DEFAULT = fifo_sizing.METHODS[0]  # config.FIFO_SIZING
EXCLUDES = "host pre/post-processing, input/output packing and DMA set-up per call"

# Per-layer implementation options for MVAU/VVAU: (preferred_impl_style, resType).
IMPLEMENTATIONS = {"rtl_dsp": ("rtl", "dsp"), "hls_dsp": ("hls", "dsp"), "hls_lut": ("hls", "lut")}
# ram_style of internal_decoupled weights; "packed": block RAM with the HLS layer's SIMD
# widened to the memory shape that needs the fewest BRAM36 (`pack_weights`)
PACKED = "packed"
PACK_WIDENING = 4
WEIGHT_MEMORIES = ("block", PACKED, "distributed")
EXTERNAL = "external"  # the fourth weight memory: mem_mode external, weights from DRAM
DRAM = "DRAM"  # the search's extra resource: bits/s at the target FPS vs the usable bandwidth


@dataclass(frozen=True)
class PartBudget:
    """Resources of an FPGA part (defaults: the xc7z020 of PYNQ-Z1/Z2; `for_part` reads the
    part table in resources.py)."""

    part: str = "xc7z020clg400-1"
    LUT: int = 53_200
    BRAM36: int = 140
    DSP: int = 220
    FF: int = 106_400

    @classmethod
    def for_part(cls, part):
        table = resources.part_resources(part)
        return cls(part, table.LUT, table.BRAM36, table.DSP, table.FF)

    def limits(self, fraction):
        return {name: fraction * getattr(self, name) for name in BUDGET_RESOURCES}


def part_for_board(board, board_parts):
    if board not in board_parts:
        raise ValueError(f"config.BOARD = {board!r}; known boards: {sorted(board_parts)}")
    return board_parts[board]


def budget_from_config(cfg):
    return PartBudget.for_part(part_for_board(cfg.BOARD, cfg.BOARD_PARTS))


# ------------------------------------------------------------------ per-layer table


def _attributes(node):
    instance = getCustomOp(node)
    known = instance.get_nodeattr_types()
    names = ("PE", "SIMD", "resType", "ram_style", "mem_mode")
    return {name: instance.get_nodeattr(name) for name in names if name in known}


def layer_table(folded, part):
    """One row per HW layer of a specialized, folded graph: cycles, LUT, BRAM36, DSP, URAM,
    folding attributes, and a note where FINN's LUT estimate is missing."""
    ensure_finn()
    from finn.analysis.fpgadataflow.exp_cycles_per_layer import exp_cycles_per_layer
    from finn.analysis.fpgadataflow.res_estimation import res_estimation

    cycles = folded.analysis(exp_cycles_per_layer)
    resources = folded.analysis(partial(res_estimation, fpgapart=part))
    rows = []
    for node in folded.graph.node:
        estimate = resources.get(node.name, {})
        rows.append(
            {
                "layer": node.name,
                "op_type": node.op_type,
                "cycles": int(cycles.get(node.name, 0)),
                "LUT": float(estimate.get("LUT", 0)),
                "BRAM36": float(estimate.get("BRAM_18K", 0)) / 2,
                "DSP": float(estimate.get("DSP", 0)),
                "URAM": float(estimate.get("URAM", 0)),
                **_attributes(node),
                "note": "no LUT model in FINN (LUT=0)" if node.op_type in NO_LUT_MODEL else "",
            }
        )
    table = pd.DataFrame(rows).set_index("layer")
    if table["URAM"].sum() > 0:  # the xc7z020 has none; FINN still reports it for some modes
        table.loc[table["URAM"] > 0, "note"] += " URAM estimated but the part has none"
    return table


def totals(blocks, layers, budget, fraction):
    """Whole design vs the part: used (whole-design model), FINN's per-layer sum, available,
    limit (fraction of the part), % of part, fits and the model's hold-out error, per
    resource."""
    used = resources.totals(blocks)
    accelerator = resources.totals(blocks[blocks["type"] != "AXI"])
    holdout = block_models.load_coefficients().get("holdout", {})
    rows = []
    for name in BUDGET_RESOURCES:
        available = getattr(budget, name)
        error = holdout.get(name, {})
        rows.append(
            {
                "resource": name,
                "used": used[name],
                "accelerator only": accelerator[name],
                "FINN per-layer": float(layers[name].sum()) if name in layers else None,
                "available": available,
                "limit": fraction * available,
                "% of part": 100.0 * used[name] / available,
                "fits": used[name] <= fraction * available,
                # how far to trust `used`: its largest error on published designs held out
                "hold-out error %": error.get("max_abs_error_pct"),
                "hold-out error": holdout_text(
                    name, error.get("max_abs_error_pct"), error.get("max_abs_error")
                ),
            }
        )
    return pd.DataFrame(rows).set_index("resource")


def over_budget(totals_table):
    """The rows of a totals table that exceed the budget (empty when the design fits)."""
    return totals_table[~totals_table["fits"]]


def performance(folded, table, clock_mhz, dram_bound=None):
    """Accelerator throughput: the lower of the compute bound (the slowest layer) and the DRAM
    bound (`dram_bound`, a dram.DramBound; none without external weights), with `bound`
    naming which holds; latency from FINN's critical path, at the clock (excludes the host's
    share: see EXCLUDES)."""
    from finn.analysis.fpgadataflow.dataflow_performance import dataflow_performance
    from finn.transformation.fpgadataflow.annotate_cycles import AnnotateCycles

    critical = folded.transform(AnnotateCycles()).analysis(dataflow_performance)
    bottleneck = table["cycles"].idxmax()
    max_cycles = int(table["cycles"].max())
    compute_fps = clock_mhz * 1e6 / max_cycles
    dram_fps = dram_bound.fps() if dram_bound is not None else float("inf")
    return {
        "clock_MHz": clock_mhz,
        "bottleneck_layer": bottleneck,
        "bottleneck_cycles": max_cycles,
        "fps": min(compute_fps, dram_fps),
        "fps_compute_bound": compute_fps,
        "fps_dram_bound": dram_fps,
        "bound": "dram" if dram_fps < compute_fps else "compute",
        "critical_path_cycles": int(critical["critical_path_cycles"]),
        "latency_ms": critical["critical_path_cycles"] / (clock_mhz * 1e3),
        "excludes": EXCLUDES,
    }


@dataclass
class Estimate:
    """A folded design with its estimates: FINN's layer table, the whole-design block table
    (layers, FIFOs, converters, DMA, AXI) and the totals against the part."""

    folded: object
    layers: pd.DataFrame
    blocks: pd.DataFrame
    totals: pd.DataFrame
    performance: dict
    choices: dict  # layer -> option name (empty: FINN's defaults)
    dram: object = None  # dram.DramBound of the external layers
    names: dict = field(default_factory=dict)  # folded layer -> generic HW layer name

    def generic_name(self, layer):
        return self.names.get(layer, layer)

    @property
    def fits(self):
        return bool(self.totals["fits"].all())

    @property
    def external_layers(self):
        """External layer -> bits it reads from DRAM per frame."""
        layers = self.dram.layers if self.dram else []
        return {self.generic_name(t.layer): t.bits_per_frame for t in layers}

    def dram_summary(self):
        """The figures `firesmoke compile --json` and notebook 03 report (module doc);
        fps_dram_bound None: no DRAM traffic."""
        perf = self.performance
        summary = {
            "external_layers": self.external_layers,
            "dram_bits_per_frame": self.dram.bits_per_frame if self.external_layers else 0,
            "fps_compute_bound": perf["fps_compute_bound"],
            "fps_dram_bound": None if np.isinf(perf["fps_dram_bound"]) else perf["fps_dram_bound"],
            "bound": perf["bound"],
            "dram_limited_by": self.dram.limiting() if self.external_layers else None,
        }
        warning = dram.below_one_fps(perf["fps_dram_bound"])
        return summary | ({"dram_warning": warning} if warning else {})

    def limiting(self):
        """The most-used resource (share of its limit) and the block using most of it."""
        share = self.totals["used"] / self.totals["limit"]
        resource = share.idxmax()
        return {
            "resource": resource,
            "share_of_limit": float(share.max()),
            "layer": self.blocks[resource].idxmax(),
        }


def estimate(
    folded, budget, clock_mhz, fraction, choices=None, fifo_method=FIFO_DEFAULT, port=None
):
    """The Estimate of a folded design; `port` (dram.DramPort, config.BOARD_DRAM) gives the
    DRAM bound of its external-weight layers (a design with some needs one)."""
    layers = layer_table(folded, budget.part)
    blocks = resources.block_table(folded, budget.part, fifo_method=fifo_method)
    bound = dram.dram_bound(folded, port, clock_mhz)
    return Estimate(
        folded,
        layers,
        blocks,
        totals(blocks, layers, budget, fraction),
        performance(folded, layers, clock_mhz, bound),
        choices or {},
        bound,
    )


# ------------------------------------------------------------------ implementation search


def compute_layers(model):
    """Names of the MVAU/VVAU layers of a generic (not yet specialized) HW graph."""
    return [n.name for n in model.graph.node if n.op_type in ("MVAU", "VVAU")]


def _option_names(external=False):
    memories = (*WEIGHT_MEMORIES, EXTERNAL) if external else WEIGHT_MEMORIES
    return [
        f"{impl}/{memory}"
        for impl in IMPLEMENTATIONS
        for memory in memories
        if not (memory == PACKED and IMPLEMENTATIONS[impl][0] == "rtl")  # HLS layers only
    ]


def pack_weights(instance):
    """Widen an HLS MVAU's SIMD (to a multiple of its folded SIMD, at most PACK_WIDENING
    times it, that divides MW) to the weight memory shape needing the fewest BRAM36, the
    narrowest such: e.g. 48b x 49152 (two 32Kx1 columns per bit, 96 BRAM36) becomes
    144b x 16384 (16Kx2, 72 BRAM36). A folding a designer short of BRAM would pick by hand;
    the layer runs faster, with more LUTs for its wider datapath (hence the cap), which the
    search weighs against the BRAM saved."""
    mw, mh = instance.get_nodeattr("MW"), instance.get_nodeattr("MH")
    pe, simd = instance.get_nodeattr("PE"), instance.get_nodeattr("SIMD")
    bits = instance.get_input_datatype(1).bitwidth()

    def bram(width):
        return block_models.bram_tiles(pe * width * bits, mw * mh // (pe * width))

    widths = [w for w in range(simd, min(mw, PACK_WIDENING * simd) + 1, simd) if mw % w == 0]
    instance.set_nodeattr("SIMD", min(widths, key=lambda w: (bram(w), w)))


def external_choice(setting, generic):
    """(external option allowed, layers forced external) for config.EXTERNAL_WEIGHTS:
    "never", "auto" (the search decides) or a list of the generic HW graph's layer names
    (MVAU_3, ...: those external, the search decides the rest among the on-chip memories).
    A name not in the graph, or of a layer that is no MVAU/VVAU, is an error naming it."""
    if setting == "never":
        return False, []
    if setting == "auto":
        return True, []
    try:
        set_external_weights(copy.deepcopy(generic), setting)
    except ValueError as error:
        raise ValueError(f"{error} (MVAU/VVAU layers: {compute_layers(generic)})") from None
    return True, list(setting)


def place_named_weights(generic, folded, setting):
    """Stream the weights of the layers EXTERNAL_WEIGHTS names (generic names, as the search
    uses them) in a design folded outside the search; returns folded -> generic layer names.
    "auto" needs the search, so it is an error here."""
    names = original_names(generic, folded)
    if setting == "auto":
        raise ValueError(
            "EXTERNAL_WEIGHTS = 'auto' needs the per-layer search; with a fixed folding "
            "(FOLDING_CONFIG_FILE / --folding) name the layers to stream instead"
        )
    if setting != "never":
        external_choice(setting, generic)  # every name checked, errors name the layer
        folded_names = {name: folded_name for folded_name, name in names.items()}
        set_external_weights(folded, [folded_names[name] for name in setting])
    return names


def build_design(generic, part, target_fps, clock_mhz, choices, mvau_wwidth_max=36):
    """Specialize and fold `generic` with per-layer options (layer -> "impl/memory"; memory
    "external" streams the layer's weights from DRAM)."""
    vvaus = {n.name for n in generic.graph.node if n.op_type == "VVAU"}
    styles = {
        # FINN has RTL VVAUs only on Versal: ask for HLS (DSP) rather than get a fallback warning
        layer: "hls" if layer in vvaus else IMPLEMENTATIONS[option.split("/")[0]][0]
        for layer, option in choices.items()
    }
    specialized, _ = finn_flow.specialize(generic, part, impl_styles=styles)
    folded, _ = finn_flow.fold(
        specialized, target_fps=target_fps, clock_mhz=clock_mhz, mvau_wwidth_max=mvau_wwidth_max
    )
    originals = original_names(generic, specialized)
    external = []
    for node in folded.graph.node:
        option = choices.get(originals.get(node.name, ""))
        if option is None:
            continue
        impl, memory = option.split("/")
        instance = getCustomOp(node)
        if node.op_type.endswith("_hls"):  # RTL MVAUs are DSP-only; resType applies to HLS
            instance.set_nodeattr("resType", IMPLEMENTATIONS[impl][1])
        if memory == EXTERNAL:
            external.append(node.name)
        elif memory == PACKED:
            instance.set_nodeattr("ram_style", "block")
            if node.op_type == "MVAU_hls":
                pack_weights(instance)
        else:
            instance.set_nodeattr("ram_style", memory)
    return set_external_weights(folded, external)


def original_names(generic, specialized):
    """Specialized (folded) layer name -> the generic HW graph's name.
    SpecializeLayers keeps node order and renames X_n to X_hls_m / X_rtl_m."""
    return {s.name: g.name for g, s in zip(generic.graph.node, specialized.graph.node, strict=True)}


def option_costs(
    generic,
    budget,
    target_fps,
    clock_mhz,
    mvau_wwidth_max=36,
    fifo_method=FIFO_DEFAULT,
    external="never",
    port=None,
):
    """Per compute layer and option: LUT, FF, BRAM36, DSP of the whole-design model, the
    weight DMA of an external layer included, and DRAM: the bits per second an external
    layer reads at `target_fps` (inf where its own DMA cannot feed that rate, or where
    `external` rules the option out). The second return value is the rest of the design with
    FINN defaults (FIFOs, converters, I/O DMAs and AXI included; DRAM: the I/O DMAs' traffic
    once any layer may stream). `external`: config.EXTERNAL_WEIGHTS."""
    layers = compute_layers(generic)
    allowed, forced = external_choice(external, generic)
    if allowed and port is None:
        raise ValueError("EXTERNAL_WEIGHTS other than 'never' needs the board's config.BOARD_DRAM")
    names = list(BUDGET_RESOURCES)
    costs, rest = {}, None
    for option in _option_names(allowed):
        design = build_design(
            generic,
            budget.part,
            target_fps,
            clock_mhz,
            dict.fromkeys(layers, option),
            mvau_wwidth_max,
        )
        originals = original_names(generic, design)
        if rest is None:  # the whole stitched design once, for the blocks around the layers
            blocks = resources.block_table(design, budget.part, fifo_method=fifo_method)
        else:
            specialized = [name for name, layer in originals.items() if layer in layers]
            blocks = resources.layer_table(design, budget.part, specialized)
        per_block = blocks.rename(index=originals)
        table = per_block.loc[layers, names].copy()
        dmas = per_block[per_block["weights_of"].notna()]
        for owner, rows in dmas.groupby("weights_of"):  # a weight DMA counts to its layer
            table.loc[originals[owner], names] += rows[names].sum()
        table[DRAM] = _dram_rates(design, originals, port, clock_mhz, target_fps, layers)
        costs[option] = _forced(table, option, forced)
        if rest is None:
            rest = per_block.drop(index=[*layers, *dmas.index])[names].sum()
            io_bits = dram.io_bits_per_frame(design) if allowed else 0
            rest[DRAM] = io_bits * target_fps
    return costs, rest


def _dram_rates(design, originals, port, clock_mhz, target_fps, layers):
    """Bits per second each layer reads from DRAM at the target (0 on chip), scaled up where
    its own DMA is narrower than the shared bandwidth, so that its share is at least its
    DMA's share."""
    rates = pd.Series(0.0, index=layers)
    if port is None:
        return rates
    usable = port.usable_bits_per_s(clock_mhz)
    for traffic in dram.dram_bound(design, port, clock_mhz).layers:
        narrow = usable / (traffic.interface_bits * clock_mhz * 1e6)
        rates[originals[traffic.layer]] = traffic.bits_per_frame * target_fps * max(1.0, narrow)
    return rates


def _forced(table, option, forced):
    """Rule out what EXTERNAL_WEIGHTS forbids: on-chip options for the layers it names, the
    external option for the others."""
    if not forced:
        return table
    table = table.copy()
    external = option.endswith(f"/{EXTERNAL}")
    ruled_out = [layer for layer in table.index if (layer in forced) != external]
    table.loc[ruled_out, :] = np.inf
    return table


def choose_options(costs, rest, budget, fraction, dram_bits_per_s=None):
    """Local search: start every layer at its smallest-LUT option, then repeatedly make the one
    switch that most lowers the highest resource share (share of its limit), or when no single
    switch does, the best pair of switches, until none does.
    With `dram_bits_per_s` (the usable DRAM bandwidth) the costs' DRAM column (bits/s at the
    target) is one more resource: a layer moves off chip where that is needed to fit the part,
    or where it lowers the highest share, DRAM's included. Returns (layer -> option, totals as
    a Series)."""
    names = list(BUDGET_RESOURCES)
    limits = pd.Series(budget.limits(fraction))
    if dram_bits_per_s is not None:
        names.append(DRAM)
        limits[DRAM] = dram_bits_per_s
    options = list(costs)
    layers = list(costs[options[0]].index)
    cube = np.stack([costs[o].loc[layers, names].to_numpy() for o in options])  # O,L,R
    # smallest LUT among the options allowed (a ruled-out option costs inf everywhere)
    chosen = np.where(np.isfinite(cube).all(axis=2), cube[:, :, 0], np.inf).argmin(axis=0)
    # a resource with no budget at all (e.g. DSP=0) gets a tiny limit: any use dominates
    limit = np.maximum(limits[names].to_numpy(), 1e-6)

    hardware = np.array([name != DRAM for name in names])

    def score(total):
        return _score(total / limit, hardware)

    total = rest[names].to_numpy() + cube[chosen, np.arange(len(layers))].sum(axis=0)
    while True:
        moves = _best_switches(cube, chosen, total, score, pairs=False)
        if not moves:  # a pair of switches: one layer off chip, another back on, and the like
            moves = _best_switches(cube, chosen, total, score, pairs=True)
        if not moves:
            break
        for layer, option in moves:
            total = total - cube[chosen[layer], layer] + cube[option, layer]
            chosen[layer] = option
    choices = {layer: options[o] for layer, o in zip(layers, chosen, strict=True)}
    return choices, pd.Series(total, index=names)


def _score(share, hardware):
    """Fitting the part comes first (DRAM beyond its limit only lowers the FPS), then the
    highest share, DRAM's included, then the sum. `share`: (..., resources); returns the three
    keys, each of shape `share.shape[:-1]`."""
    return (
        np.maximum(share[..., hardware].max(axis=-1), 1.0),
        share.max(axis=-1),
        share.sum(axis=-1),
    )


def choose_placement(costs, rest, budget, fraction, dram_bits_per_s):
    """EXTERNAL_WEIGHTS "auto": the local search alone can stop where a layer that should go
    back on chip cannot without another going off, so the sets of external layers are also
    tried in order of the DRAM traffic they need, least first, each with the local search
    deciding the rest on chip (sets that cannot fit even at every layer's smallest option are
    skipped); the first set that fits the part is kept when it scores better than the local
    search's answer (`_score`). Returns (choices, totals)."""
    names = [*BUDGET_RESOURCES, DRAM]
    limit = pd.Series(budget.limits(fraction))[list(BUDGET_RESOURCES)].to_numpy()
    limits = np.append(limit, dram_bits_per_s)
    hardware = np.array([name != DRAM for name in names])

    def score(totals):
        return _score(totals[names].to_numpy() / np.maximum(limits, 1e-6), hardware)

    greedy = choose_options(costs, rest, budget, fraction, dram_bits_per_s)
    external = [o for o in costs if o.endswith(f"/{EXTERNAL}")]
    layers = list(costs[external[0]].index)

    def smallest(options):
        return np.stack([costs[o].loc[layers, names].to_numpy() for o in options]).min(axis=0)

    off, on = smallest(external), smallest([o for o in costs if o not in external])
    sets = np.array(list(np.ndindex(*(2,) * len(layers))), dtype=float)  # 2^L x L
    bound = rest[names].to_numpy() + sets @ off + (1 - sets) @ on  # lowest totals per set
    feasible = (bound[:, : len(limit)] <= limit).all(axis=1)
    for index in np.argsort(bound[:, -1], kind="stable"):
        if not feasible[index]:
            continue
        forced = [layer for layer, out in zip(layers, sets[index], strict=True) if out]
        masked = {option: _on_chip(costs[option], option, forced) for option in costs}
        choices, totals = choose_options(masked, rest, budget, fraction, dram_bits_per_s)
        if (totals[list(BUDGET_RESOURCES)].to_numpy() <= limit).all():
            return (choices, totals) if score(totals) < score(greedy[1]) else greedy
    return greedy


def _on_chip(table, option, external):
    """`table` with the external option ruled out for every layer not in `external` and the
    on-chip ones for those in it."""
    return _forced(table, option, external) if external else _forced_on_chip(table, option)


def _forced_on_chip(table, option):
    if not option.endswith(f"/{EXTERNAL}"):
        return table
    table = table.copy()
    table.loc[:, :] = np.inf
    return table


def _best_switches(cube, chosen, total, score, pairs):
    """The one switch (layer, option), or with `pairs` the two switches of different layers,
    that most lower the score; [] when none does (the first such move in layer, option order
    on a tie). Vectorised: every candidate's totals at once, then one `score` call."""
    layers = np.arange(cube.shape[1])
    deltas = cube - cube[chosen, layers][None]  # O,L,R: change in totals per switch
    option, layer = np.nonzero(np.arange(cube.shape[0])[:, None] != chosen[None, :])
    order = np.lexsort((option, layer))  # layer-major, as the moves are listed
    option, layer, change = option[order], layer[order], deltas[option[order], layer[order]]
    if not pairs:
        keys = score(total + change)
        moves = [[(layer[i], option[i])] for i in range(len(layer))]
    else:
        first, second = np.triu_indices(len(layer), k=1)
        keep = layer[first] != layer[second]
        first, second = first[keep], second[keep]
        keys = score(total + change[first] + change[second])
        moves = [
            [(layer[a], option[a]), (layer[b], option[b])]
            for a, b in zip(first, second, strict=True)
        ]
    if not moves:
        return []
    best = np.lexsort(keys[::-1])[0]  # lexicographic minimum, first index on a tie
    current = score(total[None])
    if tuple(k[best] for k in keys) < tuple(k[0] for k in current):
        return moves[best]
    return []


def best_design(
    generic,
    budget,
    target_fps,
    clock_mhz,
    fraction=0.9,
    mvau_wwidth_max=36,
    fifo_method=FIFO_DEFAULT,
    external="never",
    port=None,
):
    """The per-layer options that best fit the part at one target FPS, estimated.
    `external`: config.EXTERNAL_WEIGHTS; `port`: the board's dram.DramPort."""
    costs, rest = option_costs(
        generic, budget, target_fps, clock_mhz, mvau_wwidth_max, fifo_method, external, port
    )
    bandwidth = port.usable_bits_per_s(clock_mhz) if external != "never" else None
    if external == "auto":
        choices, _ = choose_placement(costs, rest, budget, fraction, bandwidth)
    else:
        choices, _ = choose_options(costs, rest, budget, fraction, bandwidth)
    folded = build_design(generic, budget.part, target_fps, clock_mhz, choices, mvau_wwidth_max)
    result = estimate(folded, budget, clock_mhz, fraction, choices, fifo_method, port)
    result.names = original_names(generic, folded)
    return result


def target_sequence(target_fps, floor_fps=1.0, step=0.8):
    """The target, then lower targets geometrically (step) down to floor_fps."""
    targets, value = [], float(target_fps)
    while value >= floor_fps:
        targets.append(round(value, 1))
        value *= step
    return targets


def fit_to_part(
    generic,
    budget,
    target_fps,
    clock_mhz,
    fraction=0.9,
    fit=True,
    mvau_wwidth_max=36,
    step=0.8,
    floor_fps=1.0,
    refine=3,
    fifo_method=FIFO_DEFAULT,
    external="never",
    port=None,
):
    """Lower the target FPS until the best per-layer options fit the budget (fit=True), then
    bisect `refine` times between the last failing and the first fitting target; fit=False
    only evaluates `target_fps`. When the target does not fit, the lowest target (floor_fps)
    is tried next: resources grow with the target, so if it does not fit either, none between
    will and the search stops there. With external weights a target counts as met only when
    the DRAM bound reaches it too; the best is the fastest fitting design of all tried.
    Returns (best fitting Estimate or None, frontier).

    Each frontier row: target, achieved FPS (FINN's folding may not reach the target), LUT /
    FF / BRAM36 / DSP % of part (whole design) and FINN's per-layer LUT/BRAM36/DSP %, fits,
    limiting resource and block.
    """
    rows, best, failing, fitting, seen = [], None, None, None, {}

    def evaluate(target):
        nonlocal best
        if target in seen:
            return seen[target]
        result = best_design(
            generic,
            budget,
            target,
            clock_mhz,
            fraction,
            mvau_wwidth_max,
            fifo_method,
            external,
            port,
        )
        rows.append(_frontier_row(target, result))
        if result.fits and (best is None or result.performance["fps"] > best.performance["fps"]):
            best = result
        # a design that fits only by streaming more weights than the DRAM can feed at this
        # target runs slower than it: a lower target may stream fewer and run faster
        seen[target] = result.fits and result.performance["fps_dram_bound"] >= target
        return seen[target]

    targets = target_sequence(target_fps, floor_fps, step) if fit else [target_fps]
    if len(targets) > 1 and not evaluate(targets[0]) and not evaluate(targets[-1]):
        targets = []  # not even the lowest target fits
    for target in targets:
        if evaluate(target):
            fitting = target
            break
        failing = target
    if fit and best is not None and failing is not None:
        low, high = fitting, failing
        for _ in range(refine):
            middle = round((low + high) / 2, 1)
            low, high = (middle, high) if evaluate(middle) else (low, middle)
    return best, pd.DataFrame(rows).sort_values("target_fps").reset_index(drop=True)


def _frontier_row(target, result):
    share = result.totals["% of part"]
    finn_share = 100 * result.totals["FINN per-layer"] / result.totals["available"]
    limiting = result.limiting()
    return {
        "target_fps": target,
        "fps": result.performance["fps"],
        **{f"{name} %": float(share[name]) for name in BUDGET_RESOURCES},
        **{f"FINN {name} %": float(finn_share[name]) for name in RESOURCES},
        "FIFO BRAM36": float(result.blocks.loc[result.blocks["type"] == "FIFO", "BRAM36"].sum()),
        "fits": result.fits,
        "limiting_resource": limiting["resource"],
        "limiting_layer": limiting["layer"],
        "bottleneck_layer": result.performance["bottleneck_layer"],
        "fps_compute_bound": result.performance["fps_compute_bound"],
        "fps_dram_bound": result.performance["fps_dram_bound"],
        "bound": result.performance["bound"],
        "external_layers": len(result.external_layers),
    }


def frontier(generic, budget, targets, clock_mhz, *options):
    """Best-fitting resource use at each target FPS (the FPS/resource trade-off); `options`:
    best_design's arguments after clock_mhz."""
    rows = [_frontier_row(t, best_design(generic, budget, t, clock_mhz, *options)) for t in targets]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ reports and charts


def save_report(result, out_dir, budget, fraction, frontier_table=None, fifo_method=FIFO_DEFAULT):
    """JSON (summary), CSV (per-layer, totals, frontier), PNG charts; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "layers_csv": out_dir / "estimates_layers.csv",
        "blocks_csv": out_dir / "estimates_blocks.csv",
        "block_types_csv": out_dir / "estimates_block_types.csv",
        "totals_csv": out_dir / "estimates_totals.csv",
        "calibration_csv": out_dir / "calibration_vs_published.csv",
        "summary_json": out_dir / "estimates.json",
    }
    result.layers.to_csv(paths["layers_csv"])
    result.blocks.to_csv(paths["blocks_csv"])
    resources.type_totals(result.blocks).to_csv(paths["block_types_csv"])
    result.totals.to_csv(paths["totals_csv"])
    calibration_table().to_csv(paths["calibration_csv"])
    summary = {
        "budget": asdict(budget),
        "fraction": fraction,
        "performance": result.performance,
        "totals": result.totals.reset_index().to_dict(orient="records"),
        "fits": result.fits,
        "limiting": result.limiting(),
        "choices": result.choices,
        "dram": result.dram_summary(),
        "model": MODEL_NOTE,
        "fifo_sizing": " ".join(fifo_sizing.__doc__.split()),  # method and assumptions
        "fifo_method": fifo_method,
        "holdout_error": block_models.load_coefficients().get("holdout", {}),
        "notes": sorted({n for n in result.layers["note"] if n}),
    }
    if frontier_table is not None:
        paths["frontier_csv"] = out_dir / "frontier.csv"
        frontier_table.to_csv(paths["frontier_csv"], index=False)
        paths["frontier_png"] = plot_frontier(frontier_table, out_dir / "frontier.png", fraction)
    paths["summary_json"].write_text(json.dumps(summary, indent=2, default=str))
    paths["layers_png"] = plot_layers(result, out_dir / "estimates_layers.png")
    paths["totals_png"] = plot_totals(result.totals, out_dir / "estimates_totals.png")
    return paths


MODEL_NOTE = (
    "used = whole stitched design: every block (layers, FIFOs sized by FIFO_SIZING, "
    "data-width converters, IODMAs) by its block model (DSP and BRAM counted from the node "
    "attributes, LUT/FF fitted on published per-block reports) plus the shell; "
    "'FINN per-layer' = FINN's own estimate, layers only"
)


def calibration_table():
    """The block model against each published design it was not fitted on (leave one design
    out: estimate, published, error % per resource), as benchmarks/calibrate_resources.py
    stored it."""
    rows = block_models.load_coefficients().get("holdout_table", [])
    return pd.DataFrame(rows).set_index(["design", "resource"]) if rows else pd.DataFrame()


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def plot_layers(result, path=None):
    """Cycles per layer (bottleneck in red) and LUT/BRAM36/DSP per layer."""
    layers = result.layers
    fig, axes = _figure(4, 1, figsize=(max(10, 0.25 * len(layers)), 12), sharex=True)
    positions = np.arange(len(layers))
    bottleneck = result.performance["bottleneck_layer"]
    colors = ["tab:red" if name == bottleneck else "tab:blue" for name in layers.index]
    axes[0].bar(positions, layers["cycles"], color=colors)
    axes[0].set_ylabel("cycles / frame")
    axes[0].set_title(
        f"bottleneck {bottleneck}: {result.performance['fps']:.0f} FPS at "
        f"{result.performance['clock_MHz']:g} MHz"
    )
    for axis, name in zip(axes[1:], RESOURCES, strict=True):
        axis.bar(positions, layers[name])
        axis.set_ylabel(name)
    missing = layers["note"].str.contains("no LUT model")
    axes[1].plot(positions[missing], np.zeros(missing.sum()), "kx", label="no LUT model (0)")
    axes[1].legend(loc="upper right")
    axes[-1].set_xticks(positions, layers.index, rotation=90, fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_totals(totals_table, path=None):
    fig, axis = _figure(figsize=(6, 3.5))
    share = totals_table["% of part"]
    colors = ["tab:green" if fits else "tab:red" for fits in totals_table["fits"]]
    axis.bar(share.index, share, color=colors)
    limit = 100.0 * totals_table["limit"].iloc[0] / totals_table["available"].iloc[0]
    axis.axhline(limit, color="k", linestyle="--", label=f"budget {limit:.0f} %")
    axis.axhline(100, color="grey", linestyle=":", label="part")
    axis.set_ylabel("% of part")
    finn = 100.0 * totals_table["FINN per-layer"] / totals_table["available"]
    axis.plot(finn.index, finn, "kx", label="FINN per-layer only")
    axis.set_title("whole design vs part (x: FINN's per-layer estimate)", fontsize=9)
    axis.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_frontier(frontier_table, path=None, fraction=0.9):
    fig, axis = _figure(figsize=(7, 4))
    for name in BUDGET_RESOURCES:
        axis.plot(frontier_table["fps"], frontier_table[f"{name} %"], "o-", label=name)
    fitting = frontier_table[frontier_table["fits"]]
    if len(fitting):
        best = fitting["fps"].max()
        axis.axvline(best, color="tab:green", linestyle="--", label=f"best fit {best:.0f} FPS")
    axis.axhline(100 * fraction, color="k", linestyle=":", label="budget")
    axis.set_xlabel("estimated FPS")
    axis.set_ylabel("% of part (best per-layer options)")
    axis.set_xscale("log")
    axis.legend()
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path):
    if path is None:
        return fig
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return Path(path)
