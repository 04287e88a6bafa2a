"""A frozen rank (SIGSTOP) of a 2-process gloo run ends the run with an error naming it,
within the process-group timeout (config.DDP_TIMEOUT_MIN), instead of hanging it."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_MIN = 0.05  # 3 s: the config key is in minutes, fractions allowed
RANK_SCRIPT = """
import sys, time, torch
from modules.training import distributed as ddp
world = ddp.init_process_group(torch.device("cpu"), float(sys.argv[1]))
print("ready", flush=True)
try:
    with ddp.stalled_ranks_named(world):
        end = time.monotonic() + 120
        while time.monotonic() < end:  # what training does between steps: collectives
            ddp.sum_over_ranks([1.0], torch.device("cpu"), world)
            time.sleep(0.02)
except ddp.StalledRankError as error:
    print(error, file=sys.stderr, flush=True)
    sys.exit(3)
"""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_rank(rank, port):
    env = os.environ | {
        "PYTHONPATH": str(REPO), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
        "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "OMP_NUM_THREADS": "1",
    }  # fmt: skip
    argv = [sys.executable, "-c", RANK_SCRIPT, str(TIMEOUT_MIN)]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_a_frozen_rank_ends_the_run_naming_it_within_the_timeout():
    port = free_port()
    ranks = [start_rank(rank, port) for rank in (0, 1)]
    try:
        for process in ranks:
            assert process.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # both are exchanging all-reduces now
        os.kill(ranks[1].pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            code = ranks[0].wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("rank 0 still waits for the frozen rank after 60 s")
        ended_after = time.monotonic() - frozen_at
        err = ranks[0].stderr.read()
    finally:
        for process in ranks:
            process.kill()
            process.wait()
    print(f"run ended {ended_after:.1f} s after rank 1 froze (timeout {60 * TIMEOUT_MIN:g} s)")
    assert code == 3, err
    assert "rank 0: a collective got no answer within DDP_TIMEOUT_MIN = 0.05 min" in err
    assert "Rank 1" in err  # torch's monitored barrier: the rank that did not answer
    # the collective's timeout, then the monitor's (of the same length), and some slack
    assert ended_after < 2 * 60 * TIMEOUT_MIN + 5
