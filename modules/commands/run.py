"""`firesmoke run`: execute the numbered notebooks headless into the run folder."""

import time

from modules.commands._shared import add_profile_arguments, parse_overrides, print_json
from modules.pipeline import run_pipeline

NAME = "run"
HELP = "execute notebooks 01-06 in order (headless) and write the run report"


def add_arguments(parser):
    add_profile_arguments(parser)
    parser.add_argument("--only", nargs="*", metavar="NN", help="notebook numbers, e.g. 01 02")
    parser.add_argument("--json", action="store_true", help="print the executed notebooks as JSON")


def main(args):
    started = time.perf_counter()
    outputs = run_pipeline(args.profile, parse_overrides(args.set), args.only)
    seconds = time.perf_counter() - started
    if args.json:
        print_json({"notebooks": [str(p) for p in outputs], "wall_s": round(seconds, 1)})
    else:
        print(f"{len(outputs)} notebook(s) executed in {seconds:.0f} s")
    return 0
