"""The process-group helpers on two real gloo processes (spawned, CPU)."""

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from modules.training import distributed as ddp


def _ranks(rank, store_file, results):
    dist.init_process_group("gloo", init_method=f"file://{store_file}", rank=rank, world_size=2)
    try:
        world = ddp.current_world()
        torch.manual_seed(rank)  # different weights and running statistics on each rank
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
        model[1].running_mean.uniform_()
        try:
            ddp.check_ranks_in_sync(model, world)
            results[f"diverged_{rank}"] = "no error"
        except RuntimeError as error:
            results[f"diverged_{rank}"] = str(error)
        ddp.broadcast_buffers(model, world)
        results[f"running_mean_{rank}"] = model[1].running_mean.tolist()
        share = np.array(ddp.eval_shard(5, world)) * 10  # rows of a 5-image set, strided
        results[f"gathered_{rank}"] = ddp.gather_rows(share[:, None], world)[:, 0].tolist()
        shard_objects = [f"image {i}" for i in ddp.eval_shard(5, world)]  # e.g. detections
        results[f"objects_{rank}"] = ddp.gather_objects(shard_objects, world)
        results[f"sum_{rank}"] = ddp.sum_over_ranks([1.0, rank], torch.device("cpu"), world)
    finally:
        dist.destroy_process_group()


def test_sync_check_buffers_gather_and_sum_on_two_ranks(tmp_path):
    results = mp.Manager().dict()
    mp.spawn(_ranks, args=(str(tmp_path / "store"), results), nprocs=2, join=True)
    for rank in (0, 1):
        assert "model weights differ between ranks" in results[f"diverged_{rank}"]
        assert results[f"gathered_{rank}"] == [0, 10, 20, 30, 40]  # dataset order, no padding
        assert results[f"objects_{rank}"] == [f"image {i}" for i in range(5)]
        assert results[f"sum_{rank}"] == [2.0, 1.0]
    assert results["running_mean_1"] == results["running_mean_0"]
