"""`firesmoke train`: notebook 01 (fp32) or 02 (qat) of the configured task (config.TASK), on one
process or, under `torchrun --nproc_per_node=N --no-python firesmoke train ...`, on N data-parallel
ranks."""

import sys
import time

import config
from modules.commands._shared import add_profile_arguments, parse_overrides, print_json
from modules.stages.train_brevitas import run_qat_training
from modules.stages.train_fp32 import run_fp32_training
from modules.training.device import resolve_device
from modules.training.distributed import (
    StalledRankError,
    destroy_process_group,
    env_local_rank,
    init_process_group,
    stalled_ranks_named,
)

NAME = "train"
HELP = "train the FP32 model (notebook 01) or the Brevitas QAT model (notebook 02)"
STAGES = {"fp32": run_fp32_training, "qat": run_qat_training}


def add_arguments(parser):
    add_profile_arguments(parser)
    parser.add_argument("--stage", required=True, choices=sorted(STAGES))
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def main(args):
    overrides = parse_overrides(args.set)
    if args.stage == "qat":
        overrides = {"BREVITAS_MODEL": True, **overrides}
    config.apply(args.profile, **overrides)
    started = time.perf_counter()
    device = resolve_device(config.DEVICE, env_local_rank())
    world = init_process_group(device, config.DDP_TIMEOUT_MIN)
    try:
        with stalled_ranks_named(world):
            summary = STAGES[args.stage](config)
    except StalledRankError as error:  # one line; torchrun then stops the other ranks
        print(f"firesmoke train: {error}", file=sys.stderr)
        return 1
    finally:
        destroy_process_group()
    if not world.is_main:
        return 0
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    if args.json:
        print_json(summary)
    else:
        metric = summary["metric"]
        print(
            f"{summary['task']} {summary['kind']}: {summary['epochs']} epochs on "
            f"{summary['world_size']} process(es) in {summary['wall_s']} s, test {metric} "
            f"{summary['test_metrics'][metric]:.4f}, best checkpoint {summary['best_checkpoint']}"
        )
        if "deployed" in summary:
            deployed = summary["deployed"]
            print(f"notebooks 03-05 use the {deployed['choice']} model: {deployed['reason']}")
    return 0
