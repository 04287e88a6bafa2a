"""Data-parallel training on PyTorch's own engine: torchrun starts one process per rank and
sets RANK / WORLD_SIZE / LOCAL_RANK; this file joins the process group (NCCL on CUDA, gloo on
CPU), shards the data, wraps the model and gathers results. Without torchrun every function
here is the single-process identity, so the notebooks run the same code."""

import contextlib
import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def distributed(self):
        return self.size > 1


def launched_by_torchrun():
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def env_local_rank():
    """This process's GPU slot on its node, as torchrun sets it (0 without torchrun)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def current_world():
    """This process's place in the process group (rank 0 of 1 when there is none)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), env_local_rank())
    return World()


# a gloo group beside the training group, made at init by every rank (groups cannot be made
# later, when a rank may be frozen): its monitored_barrier names the ranks that do not answer
_monitor = {}


def init_process_group(device, timeout_min=30.0):
    """Join torchrun's group: NCCL when this rank trains on a GPU, gloo on CPU. A collective
    that waits longer than `timeout_min` minutes (config.DDP_TIMEOUT_MIN) raises instead of
    hanging (see `stalled_ranks_named`)."""
    if not launched_by_torchrun() or dist.is_initialized():
        return current_world()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = timedelta(minutes=timeout_min)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timeout)
    _monitor["group"] = dist.new_group(backend="gloo", timeout=timeout)
    _monitor["timeout"] = timeout
    return current_world()


def destroy_process_group():
    _monitor.clear()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def leave_process_group():
    """Every rank leaves the group after the data-parallel part and gets the World it had; rank 0
    then works alone (libraries such as Brevitas' bias correction all-reduce whenever a group
    exists, and would wait for ranks that have finished)."""
    world = current_world()
    destroy_process_group()
    return world


class StalledRankError(RuntimeError):
    """A collective timed out: a rank is frozen, stalled or gone (the message names it)."""


def is_timeout(error):
    text = str(error).lower()
    return "timed out" in text or "timeout" in text


def unanswering_ranks():
    """What the monitor group's barrier says about the ranks that do not answer (rank 0 lists
    them; another rank learns that rank 0 does not answer), or None when all answer."""
    try:
        dist.monitored_barrier(_monitor["group"], timeout=_monitor["timeout"], wait_all_ranks=True)
    except RuntimeError as error:
        return str(error).strip().splitlines()[0]
    return None


@contextlib.contextmanager
def stalled_ranks_named(world):
    """A collective timeout inside the block becomes a StalledRankError naming this rank, the
    timeout and the ranks that did not answer (a frozen rank would otherwise hang the run)."""
    try:
        yield
    except (RuntimeError, dist.DistBackendError) as error:
        if not world.distributed or "group" not in _monitor or not is_timeout(error):
            raise
        minutes = _monitor["timeout"].total_seconds() / 60
        found = unanswering_ranks() or "every rank answers the monitor now"
        raise StalledRankError(
            f"rank {world.rank}: a collective got no answer within DDP_TIMEOUT_MIN = "
            f"{minutes:g} min; {found} (a rank frozen, stalled or killed?)"
        ) from error


def barrier():
    if current_world().distributed:
        dist.barrier()


@contextlib.contextmanager
def main_process_first():
    """Rank 0 runs the block first (it writes generated data and caches); the others wait and
    then read what it wrote."""
    world = current_world()
    if not world.is_main:
        barrier()
    yield
    if world.is_main:
        barrier()


def check_shardable(dataset_len, global_batch, world, what="train"):
    if world.size > dataset_len:
        raise ValueError(
            f"torchrun world size {world.size} exceeds the {dataset_len} {what} images: every "
            "rank needs at least one image (use fewer processes or more data, config.DS_LEN)"
        )
    if global_batch % world.size:
        raise ValueError(
            f"config.BATCH_SIZE = {global_batch} does not divide over {world.size} ranks; "
            "BATCH_SIZE is the global batch, make it a multiple of the process count"
        )


def train_sampler(dataset, world, seed):
    """Every rank draws its share of one (seed, epoch) permutation, so the union of the ranks'
    k-th batches is the k-th batch of a single process with the same global batch."""
    return torch.utils.data.DistributedSampler(
        dataset, num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed
    )


def eval_shard(dataset_len, world):
    """Indices of this rank's evaluation share: strided, not padded (no image counted twice)."""
    return list(range(world.rank, dataset_len, world.size))


def gather_rows(array, world):
    """Reassemble a strided shard's per-image rows from every rank in dataset order."""
    if not world.distributed:
        return array
    parts = [None] * world.size
    dist.all_gather_object(parts, array)
    total = sum(len(part) for part in parts)
    out = np.empty((total, *array.shape[1:]), dtype=array.dtype)
    for rank, part in enumerate(parts):
        out[rank :: world.size] = part
    return out


def gather_objects(items, world):
    """Reassemble a strided shard's per-image Python objects (a list) from every rank in
    dataset order; every rank gets the whole list."""
    if not world.distributed:
        return items
    parts = [None] * world.size
    dist.all_gather_object(parts, list(items))
    out = [None] * sum(len(part) for part in parts)
    for rank, part in enumerate(parts):
        out[rank :: world.size] = part
    return out


def sum_over_ranks(values, device, world):
    """Element-wise sum of a list of numbers over the ranks of `world`."""
    if not world.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def wrap_model(model, device, world, sync_batchnorm):
    """DDP around the model on its device (the unwrapped model keeps the weights to save);
    SyncBatchNorm when asked for and on CUDA."""
    if not world.distributed:
        return model
    # torch's SyncBatchNorm runs on CUDA only; on CPU (gloo) each rank normalises its own batch
    if sync_batchnorm and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def revert_sync_batchnorm(module):
    """SyncBatchNorm -> BatchNorm2d with the same state, in place (export and evaluation after
    training expect the plain layer)."""
    for name, child in module.named_children():
        if isinstance(child, torch.nn.SyncBatchNorm):
            plain = torch.nn.BatchNorm2d(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
            )
            plain.load_state_dict(child.state_dict())
            plain.train(child.training)
            setattr(module, name, plain.to(child.weight.device if child.affine else "cpu"))
        else:
            revert_sync_batchnorm(child)
    return module


def broadcast_buffers(model, world):
    """Rank 0's batch-norm running statistics to every rank: without SyncBatchNorm each rank
    updates them from its own batches, and evaluation and checkpoints need one set."""
    if world.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def weights_digest(model):
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def check_ranks_in_sync(model, world):
    """Raise unless every rank holds bit-identical weights and buffers (a diverged rank would
    otherwise train on silently, and rank 0's checkpoint would not be what the others had)."""
    if not world.distributed:
        return
    digests = [None] * world.size
    dist.all_gather_object(digests, weights_digest(model))
    if len(set(digests)) > 1:
        raise RuntimeError(f"model weights differ between ranks: {dict(enumerate(digests))}")
