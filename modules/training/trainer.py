"""Training loop shared by the FP32 and the Brevitas models.

Every epoch's randomness (shuffle order, augmentation) is derived from (seed, epoch), and the
last checkpoint is written after every epoch, so a run killed after epoch k and resumed ends
exactly where an uninterrupted run ends. Under torchrun the same loop trains with
DistributedDataParallel (modules/training/distributed.py); rank 0 alone writes files.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from modules.board.decisions import decide
from modules.training import resume
from modules.training.checkpoints import (
    atomic_write_text,
    load_checkpoint,
    remove_stale_temp_files,
    restore_rng_states,
    save_checkpoint,
)
from modules.training.device import (
    Precision,
    choose_precision,
    loader_workers,
    resolve_device,
    set_compute_threads,
    use_channels_last,
    worker_init,
)
from modules.training.distributed import (
    World,
    broadcast_buffers,
    check_ranks_in_sync,
    check_shardable,
    current_world,
    eval_shard,
    gather_rows,
    revert_sync_batchnorm,
    sum_over_ranks,
    train_sampler,
    wrap_model,
)
from modules.training.metrics import classification_metrics

OPTIMIZERS = ("adam", "sgd")


def build_optimizer(model, cfg):
    name = cfg.OPTIMIZER.lower()
    if name == "adam":
        return torch.optim.Adam(
            model.parameters(), lr=cfg.LEARNING_RATE, weight_decay=cfg.WEIGHT_DECAY
        )
    if name == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=cfg.LEARNING_RATE,
            momentum=cfg.MOMENTUM,
            weight_decay=cfg.WEIGHT_DECAY,
        )
    raise ValueError(f"config.OPTIMIZER = {cfg.OPTIMIZER!r}; choose 'adam' or 'sgd'")


def build_scheduler(optimizer, cfg):
    # mode="max": the scheduler watches validation mean F1
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=cfg.SCHEDULER_FACTOR, patience=cfg.SCHEDULER_PATIENCE
    )


def make_loader(dataset, batch_size, workers, sampler=None, pin_memory=False, collate_fn=None):
    """Workers persist across epochs (forking a fresh set every epoch costs seconds and the
    old ones linger); the dataset's shared epoch counter keeps their augmentation current.
    The order comes from `sampler` alone (seeded by (SEED, epoch)), so NUM_WORKERS cannot
    change it."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=workers,
        persistent_workers=workers > 0,
        worker_init_fn=worker_init if workers > 0 else None,
        pin_memory=pin_memory,
        drop_last=False,
        collate_fn=collate_fn,
    )


def to_device(images, target, device, channels_last):
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    images = images.to(device, non_blocking=True, memory_format=memory_format)
    return images, target.to(device, non_blocking=True)


@dataclass
class EvalResult:
    loss: float
    metrics: dict
    logits: np.ndarray
    targets: np.ndarray


@dataclass(frozen=True)
class Placement:
    """Where and how a step runs: device, autocast, memory layout, and this rank's place."""

    device: torch.device = torch.device("cpu")
    precision: Precision = Precision(False)
    channels_last: bool = False
    world: World = World()

    def autocast(self):
        return self.precision.autocast()


CPU = Placement()  # one process on the CPU: the default placement


@torch.no_grad()
def evaluate(model, loader, loss_fn, classes, threshold=0.5, desc="eval", place=Placement()):
    """Metrics over the loader's images; under torchrun each rank holds a strided shard and
    the logits are gathered, so every rank gets the metrics of the whole set."""
    model.eval()
    logits, targets, total, count = [], [], 0.0, 0
    for images, target in tqdm(loader, desc=desc, leave=False, disable=not place.world.is_main):
        images, target = to_device(images, target, place.device, place.channels_last)
        with place.autocast():
            out = model(images)
        loss, _ = loss_fn(out.float(), target)
        total, count = total + loss.item() * len(images), count + len(images)
        logits.append(out.float().cpu().numpy())
        targets.append(target.cpu().numpy())
    logits = gather_rows(np.concatenate(logits), place.world)
    targets = gather_rows(np.concatenate(targets), place.world)
    total, count = sum_over_ranks([total, count], place.device, place.world)
    metrics = classification_metrics(targets, decide(logits, threshold), classes)
    return EvalResult(total / max(count, 1), metrics, logits, targets)


def train_one_epoch(
    model,
    loader,
    loss_fn,
    optimizer,
    desc="train",
    place=Placement(),
    scaler=None,
    batch_scheduler=None,
):
    """One pass over the loader; returns the mean loss over every rank's images.
    `batch_scheduler` steps after every batch (the detector's warm-up and decay)."""
    model.train()
    total, count = 0.0, 0
    bar = tqdm(loader, desc=desc, leave=False, disable=not place.world.is_main)
    for images, target in bar:
        images, target = to_device(images, target, place.device, place.channels_last)
        with place.autocast():
            out = model(images)
        loss, _ = loss_fn(out.float(), target)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None and scaler.is_enabled():
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if batch_scheduler is not None:
            batch_scheduler.step()
        total, count = total + loss.item() * len(images), count + len(images)
        bar.set_postfix(loss=f"{total / count:.4f}")
    total, count = sum_over_ranks([total, count], place.device, place.world)
    return total / max(count, 1)


class ClassifyLoop:
    """The parts of the loop that depend on the task; this is the classifier's, the detector's
    is `modules.tasks.detect.DetectLoop` (same attributes and methods)."""

    metric = "mean_f1"  # validation metric: picks the best checkpoint, drives the scheduler
    collate_fn = None
    scheduler_per_batch = False

    def __init__(self, cfg):
        self.cfg = cfg

    def optimizer(self, model):
        return build_optimizer(model, self.cfg)

    def scheduler(self, optimizer, steps_per_epoch):
        return build_scheduler(optimizer, self.cfg)

    def evaluate(self, model, loader, loss_fn, place=Placement()):
        cfg = self.cfg
        return evaluate(model, loader, loss_fn, cfg.CLASSES, cfg.DECISION_THRESHOLD, place=place)


def placement(cfg, world=None):
    """The Placement config.DEVICE / AMP / CHANNELS_LAST ask for (FP32 for Brevitas models)."""
    world = world or current_world()
    device = resolve_device(cfg.DEVICE, world.local_rank)
    precision = choose_precision(device, cfg.AMP, cfg.BREVITAS_MODEL)
    return Placement(device, precision, use_channels_last(cfg.CHANNELS_LAST, device), world)


class Trainer:
    """Fits a model, logging per-epoch metrics to CSV and keeping best and last checkpoints."""

    def __init__(self, model, loss_fn, train_set, val_set, cfg, paths, kind, loop=None):
        self.model, self.loss_fn, self.cfg, self.paths, self.kind = (
            model,
            loss_fn,
            cfg,
            paths,
            kind,
        )
        self.train_set, self.loop = train_set, loop or ClassifyLoop(cfg)
        self.place = place = placement(cfg)
        world = place.world
        check_shardable(len(train_set), cfg.BATCH_SIZE, world)
        check_shardable(len(val_set), cfg.BATCH_SIZE, world, what="val")
        workers = loader_workers(cfg.NUM_WORKERS, world.size)
        set_compute_threads(workers, world.size)
        # on the device before the optimizer exists: a resumed optimizer state follows the weights
        self._to_device()
        self.loss_fn = loss_fn.to(place.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=place.precision.needs_scaler)
        self.optimizer = self.loop.optimizer(model)
        self.sampler = train_sampler(train_set, world, cfg.SEED)
        batch, pin = cfg.BATCH_SIZE // world.size, place.device.type == "cuda"
        collate = self.loop.collate_fn
        self.train_loader = make_loader(train_set, batch, workers, self.sampler, pin, collate)
        val_share = torch.utils.data.Subset(val_set, eval_shard(len(val_set), world))
        self.val_loader = make_loader(val_share, batch, workers, None, pin, collate)
        self.scheduler = self.loop.scheduler(self.optimizer, len(self.train_loader))
        self.start_epoch, self.history, self.best_f1 = 0, [], -1.0
        if world.is_main:  # the one rank that writes; another could remove its live temp file
            for stale in remove_stale_temp_files(self.best_path.parent, self.log_path.parent):
                print(f"removed {stale}, left by an interrupted write")

    @property
    def best_key(self):
        return f"val_{self.loop.metric}"

    def _to_device(self):
        memory_format = torch.channels_last if self.place.channels_last else torch.preserve_format
        self.model.to(self.place.device, memory_format=memory_format)

    @property
    def last_path(self):
        return self.paths.checkpoint(self.kind, "last")

    @property
    def best_path(self):
        return self.paths.checkpoint(self.kind, "best")

    @property
    def log_path(self):
        return self.paths.train_log(self.kind)

    def resume(self, path=None):
        """Continue from a checkpoint (default: this run's last one) trained with the same
        settings (resume.check_settings); the log is rewritten from the checkpoint."""
        path = path or self.last_path
        checkpoint = load_checkpoint(path, expected_kind=self.kind)
        changes = resume.check_settings(checkpoint, self.cfg, path)
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        resume.push_allowed_changes(changes, self.optimizer, self.scheduler, self.cfg)
        restore_rng_states(checkpoint["rng"])
        self.start_epoch = checkpoint["epoch"] + 1
        self.history = list(checkpoint["metrics"]["history"])
        self._write_log()
        # from another run folder: this run's best is the best of the epochs trained here
        if self.best_path.is_file():
            self.best_f1 = max((row[self.best_key] for row in self.history), default=-1.0)
        if self.place.world.is_main:
            print(f"resumed {self.kind} from {path} after epoch {self.start_epoch}")
            for key, (old, new) in changes.items():
                print(f"  {key}: {old!r} -> {new!r} (config.RESUME_ALLOW_CHANGES)")
        return checkpoint

    def fit(self, epochs=None, stop_after=None):
        """Train up to `epochs` (config.EPOCHS); `stop_after` ends early (to test resume).
        The model is back on the CPU afterwards, as the later steps (plots, export) expect."""
        epochs = self.cfg.EPOCHS if epochs is None else epochs
        resume.check_epochs(self.start_epoch, epochs, self.best_path.is_file(), self.best_path)
        last = epochs if stop_after is None else min(epochs, stop_after)
        self._to_device()
        network = wrap_model(
            self.model, self.place.device, self.place.world, self.cfg.SYNC_BATCHNORM
        )
        world = self.place.world
        try:
            for epoch in tqdm(
                range(self.start_epoch, last), desc=f"{self.kind} epochs", disable=not world.is_main
            ):
                self._run_epoch(network, epoch)
        finally:
            revert_sync_batchnorm(self.model).to("cpu")
        return pd.DataFrame(self.history)

    def _run_epoch(self, network, epoch):
        self.sampler.set_epoch(epoch)  # its permutation is seeded by (SEED, epoch)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)
        per_batch = self.scheduler if self.loop.scheduler_per_batch else None
        train_loss = train_one_epoch(
            network,
            self.train_loader,
            self.loss_fn,
            self.optimizer,
            f"epoch {epoch + 1}",
            self.place,
            self.scaler,
            per_batch,
        )
        broadcast_buffers(self.model, self.place.world)
        check_ranks_in_sync(self.model, self.place.world)
        # no gradient sync needed to evaluate: every rank's unwrapped model has the same weights
        val = self.loop.evaluate(self.model, self.val_loader, self.loss_fn, self.place)
        if per_batch is None:
            self.scheduler.step(val.metrics[self.loop.metric])
        row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val.loss}
        row.update({f"val_{k}": v for k, v in val.metrics.items()})
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        self.history.append(row)
        if not self.place.world.is_main:
            return
        self._save(epoch, row)
        in_sync = f"  (weights identical on {self.place.world.size} ranks)"
        tqdm.write(
            f"epoch {epoch + 1}: train loss {train_loss:.4f}  val loss {val.loss:.4f}  "
            f"val {self.loop.metric} {row[self.best_key]:.4f}"
            + (in_sync if self.place.world.distributed else "")
        )

    def _save(self, epoch, row):
        metrics = {"history": self.history, "last": row}
        args = (self.model, self.optimizer, self.scheduler, epoch, metrics)
        snapshot = self.cfg.snapshot() if hasattr(self.cfg, "snapshot") else vars(self.cfg)
        if row[self.best_key] > self.best_f1:
            self.best_f1 = row[self.best_key]
            save_checkpoint(self.best_path, *args, snapshot, self.kind)
        save_checkpoint(self.last_path, *args, snapshot, self.kind)
        self._write_log()

    def _write_log(self):
        atomic_write_text(pd.DataFrame(self.history).to_csv(index=False), self.log_path)
