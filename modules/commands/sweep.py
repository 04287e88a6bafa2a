"""`firesmoke sweep --profile P [--grid NAME | --search --trials N] [--storage URL] [--jobs N]
[--json]`: notebook 06's design-space study from the command line (modules/stages/design_space.py).
A rerun continues the study; workers on other machines join with the same --storage URL."""

import time

import config
from modules.commands._shared import add_profile_arguments, parse_overrides, print_json
from modules.stages.design_space import SweepFailed, run_sweep
from modules.sweep.results import pareto_numbers, trials_table
from modules.sweep.space import SweepSpaceError
from modules.sweep.study import SweepStorageError

NAME = "sweep"
HELP = "design-space study (bit widths, width, QAT/PTQ) -> metric, FPS at fit, resources"
SHOWN = ["label", "method", "state", "metric", "drop_from_fp32_%", "fps", "LUT %", "FF %",
         "BRAM36 %", "DSP %", "fits", "binding_resource", "wall_s", "reason"]  # fmt: skip


def add_arguments(parser):
    add_profile_arguments(parser)
    parser.add_argument(
        "--grid", help="a grid of config.SWEEP_GRIDS[TASK] (default: config.SWEEP_GRID)"
    )
    parser.add_argument(
        "--search", action="store_true", help="NSGA-II over config.SWEEP_SEARCH_SPACES[TASK]"
    )
    parser.add_argument("--trials", type=int, help="--search: trials in the study when done")
    parser.add_argument(
        "--storage", help="Optuna RDB URL (default: sqlite in RUN/sweep/study.db), e.g. "
        "postgresql://user:pass@host/db to share the study between machines",
    )  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1, help="worker processes on this machine")
    parser.add_argument("--json", action="store_true", help="print the trials as JSON")


def main(args):
    if args.search and not args.trials:
        raise SystemExit("--search needs --trials N (how many trials the study holds when done)")
    if args.jobs < 1:
        raise SystemExit(f"--jobs {args.jobs}: at least 1")
    started = time.perf_counter()
    trials = args.trials if args.search else None
    try:
        study = run_sweep(
            args.profile, parse_overrides(args.set), args.grid, trials, args.storage, args.jobs
        )
    except (SweepSpaceError, SweepStorageError, SweepFailed, FileNotFoundError) as error:
        raise SystemExit(f"sweep: {error}") from None
    except KeyboardInterrupt:
        raise SystemExit(
            "sweep interrupted: the study keeps every finished trial; run the same command "
            "again to continue (the interrupted trial runs again)"
        ) from None
    table = trials_table(study)
    front = pareto_numbers(study)
    seconds = time.perf_counter() - started
    if args.json:
        rows = table.reset_index()
        print_json(
            {
                "study": study.study_name,
                "task": config.TASK,
                "trials": rows.astype(object).where(rows.notna(), None).to_dict("records"),
                "pareto_front": front,
                "wall_s": round(seconds, 1),
            }
        )
        return 0
    print(table[SHOWN].to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"Pareto front (metric, FPS at fit; fitting trials): {front}")
    print(f"study {study.study_name!r}: {len(table)} trial(s), {seconds:.0f} s")
    return 0
