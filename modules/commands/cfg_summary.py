"""`firesmoke cfg-summary FILE.cfg [--fit]`: what the Darknet importer builds, without training;
with --fit, whether the (untrained) model fits the board as a FINN design and how fast it is."""

import sys
import types

import config
from modules.commands._shared import add_profile_arguments, parse_overrides, print_json
from modules.hardware.detector_fit import fit_text
from modules.hardware.estimates import PartBudget
from modules.models.darknet import plan_layers
from modules.models.darknet_cfg import DarknetCfgError
from modules.models.darknet_summary import finn_notes, summary_table, summary_totals
from modules.models.quant_layers import BitWidths

NAME = "cfg-summary"
HELP = "per-layer shapes, weights, MACs and weight bits of a Darknet cfg, and its FINN issues"


def add_arguments(parser):
    parser.add_argument("cfg", help="a Darknet .cfg file or a shipped name (dfire-lpyolo, ...)")
    parser.add_argument("--img-size", type=int, default=None, help="input size ([net] default)")
    parser.add_argument("--width-mult", type=float, default=None, help="DETECTOR_WIDTH_MULT")
    add_profile_arguments(parser, default="default")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--fit",
        action="store_true",
        help="build the untrained model at the configured bit widths, run FINN and the "
        "fit-to-part search (BOARD, CLOCK_MHZ, TARGET_FPS, EXTERNAL_WEIGHTS, ...): fits, FPS, "
        "the bound that holds (compute or DRAM), external layers, resources (minutes at 416)",
    )


def main(args):
    try:
        values = config.apply(args.profile, **parse_overrides(args.set))
    finally:
        config.apply()
    width_mult = args.width_mult or values["DETECTOR_WIDTH_MULT"]
    replacements = values["DARKNET_FINN_REPLACEMENTS"]
    bits = BitWidths.from_config(types.SimpleNamespace(**values))
    try:
        plans, spec = plan_layers(args.cfg, args.img_size, width_mult)
    except (DarknetCfgError, FileNotFoundError) as error:
        print(f"cfg-summary: {error}", file=sys.stderr)
        return 2
    table = summary_table(plans, bits)
    totals = summary_totals(table)
    # every BRAM36 bit, as an upper bound: FINN's weight packing wastes some of them
    part = PartBudget()
    totals["part_bram_bits"] = part.BRAM36 * 36 * 1024
    notes = finn_notes(plans, replacements)
    img_size = args.img_size or spec.input_size[0]
    fit = _fit(args.cfg, bits, width_mult, img_size, values) if args.fit else None
    if args.json:
        print_json(
            {
                "cfg": args.cfg,
                "bit_widths": bits.as_dict(),
                "spec": spec.as_dict(),
                "layers": table.reset_index().to_dict(orient="records"),
                "totals": totals,
                "finn": notes,
            }
            | ({"fit": fit} if fit is not None else {})
        )
        return 0
    print(table.to_string())
    print(
        f"\n{args.cfg}: head {spec.head_channels} channels ({spec.num_anchors} anchors x "
        f"(5 + {spec.classes})), stride {spec.stride}; bit widths {bits.signature}"
    )
    print(
        f"weights {totals['weights']:,}; weight memory {totals['weight_memory_bits'] / 1e6:.2f} "
        f"Mbit (without first/last conv {totals['body_weight_memory_bits'] / 1e6:.2f} Mbit); "
        f"{totals['macs_per_image'] / 1e6:.1f} MMAC per image"
    )
    share = totals["weight_memory_bits"] / totals["part_bram_bits"]
    print(f"weights take {100 * share:.0f} % of the {part.part}'s {part.BRAM36} BRAM36")
    for note in notes:
        print(
            f"FINN: layer {note['layer']} (line {note['line']}, {note['type']}): "
            f"{note['issue']} -> {note['built_as']}"
        )
    if fit is not None:
        print("\n" + fit_text(fit))
    return 0


def _fit(cfg, bits, width_mult, img_size, values):
    from modules.hardware.detector_fit import config_fit

    return config_fit(cfg, bits, width_mult, img_size, types.SimpleNamespace(**values))
