"""`firesmoke emulate DIR --inputs X.npy --out Y.npy`: run a compiled design (host nodes +
the emulated accelerator, bit-exact to FINN's execution) on a batch of inputs."""

import os
import time
from pathlib import Path

import numpy as np

from modules.board.array_files import load_npy
from modules.commands._shared import print_json
from modules.hardware.compile import load_design
from modules.hardware.emulator import Emulator, InputRangeError, require_exact_input_shape

NAME = "emulate"
HELP = "run a design compiled by `firesmoke compile` on inputs (.npy, batch first)"


def add_arguments(parser):
    parser.add_argument("design", help="the --out folder of `firesmoke compile`")
    parser.add_argument(
        "--inputs",
        required=True,
        help=".npy, shape (N, *graph input shape[1:]) exactly (same layout)",
    )
    parser.add_argument("--out", required=True, help=".npy to write the outputs to")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print a summary as JSON")


def check_writable(out):
    """Fail before the run, not after it, when the outputs cannot be written to `out`."""
    out = Path(out)
    if out.is_dir():
        raise SystemExit(f"emulate: --out {out} is a folder; give a .npy file name")
    if not out.parent.is_dir():
        raise SystemExit(f"emulate: --out {out}: no folder {out.parent}")
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise SystemExit(f"emulate: --out {out} cannot be written (permissions)")


def main(args):
    check_writable(args.out)
    try:
        emulator = Emulator(load_design(args.design), batch_size=args.batch_size)
        inputs = load_npy(args.inputs)
        require_exact_input_shape(emulator.model, inputs)
    except InputRangeError as error:
        raise SystemExit(f"emulate: {args.inputs}: {error}") from None
    except (OSError, ValueError) as error:  # no design / no, empty or unreadable .npy
        raise SystemExit(f"emulate: {error}") from None
    started = time.perf_counter()
    try:
        outputs = emulator(inputs)
    except InputRangeError as error:
        raise SystemExit(f"emulate: {args.inputs}: {error}") from None
    seconds = time.perf_counter() - started
    np.save(args.out, outputs)
    summary = {
        "inputs": len(inputs),
        "output_shape": list(outputs.shape),
        "out": args.out,
        "ms_per_input": round(1e3 * seconds / max(len(inputs), 1), 3),
    }
    if args.json:
        print_json(summary)
    else:
        print(
            f"{len(inputs)} input(s) -> {args.out} {outputs.shape}, "
            f"{summary['ms_per_input']} ms each"
        )
    return 0
