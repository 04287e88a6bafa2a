"""Training loop shared by the FP32 and the Brevitas models.

Every epoch's randomness (shuffle order, augmentation) is derived from (seed, epoch), and the
last checkpoint is written after every epoch, so a run killed after epoch k and resumed ends
exactly where an uninterrupted run ends.
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


def make_loader(dataset, batch_size, num_workers, shuffle, seed, collate_fn=None):
    """The shuffle order has its own generator: the loader's generator also seeds the workers,
    and how many draws that takes depends on NUM_WORKERS, which must not change the order."""
    sampler = None
    if shuffle:
        sampler = torch.utils.data.RandomSampler(
            dataset, generator=torch.Generator().manual_seed(seed)
        )
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
        drop_last=False,
        collate_fn=collate_fn,
    )


def seed_epoch(loader, seed):
    """Reset the shuffle order and the worker seeds for one epoch."""
    loader.generator.manual_seed(seed)
    if isinstance(loader.sampler, torch.utils.data.RandomSampler):
        loader.sampler.generator.manual_seed(seed)


def epoch_seed(seed, epoch):
    return seed * 100_003 + epoch


@dataclass
class EvalResult:
    loss: float
    metrics: dict
    logits: np.ndarray
    targets: np.ndarray


@torch.no_grad()
def evaluate(model, loader, loss_fn, classes, threshold=0.5, desc="eval"):
    model.eval()
    logits, targets, total, count = [], [], 0.0, 0
    for images, target in tqdm(loader, desc=desc, leave=False):
        out = model(images)
        loss, _ = loss_fn(out, target)
        total, count = total + loss.item() * len(images), count + len(images)
        logits.append(out.float().numpy())
        targets.append(target.numpy())
    logits, targets = np.concatenate(logits), np.concatenate(targets)
    metrics = classification_metrics(targets, decide(logits, threshold), classes)
    return EvalResult(total / max(count, 1), metrics, logits, targets)


def train_one_epoch(model, loader, loss_fn, optimizer, desc="train", batch_scheduler=None):
    model.train()
    total, count = 0.0, 0
    bar = tqdm(loader, desc=desc, leave=False)
    for images, target in bar:
        loss, _ = loss_fn(model(images), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if batch_scheduler is not None:  # warm-up and decay per step (the detector's loop)
            batch_scheduler.step()
        total, count = total + loss.item() * len(images), count + len(images)
        bar.set_postfix(loss=f"{total / count:.4f}")
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

    def evaluate(self, model, loader, loss_fn):
        return evaluate(model, loader, loss_fn, self.cfg.CLASSES, self.cfg.DECISION_THRESHOLD)


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
        collate = self.loop.collate_fn
        self.train_loader = make_loader(
            train_set,
            cfg.BATCH_SIZE,
            cfg.NUM_WORKERS,
            shuffle=True,
            seed=cfg.SEED,
            collate_fn=collate,
        )
        self.val_loader = make_loader(
            val_set,
            cfg.BATCH_SIZE,
            cfg.NUM_WORKERS,
            shuffle=False,
            seed=cfg.SEED,
            collate_fn=collate,
        )
        self.optimizer = self.loop.optimizer(model)
        self.scheduler = self.loop.scheduler(self.optimizer, len(self.train_loader))
        self.start_epoch, self.history, self.best_f1 = 0, [], -1.0
        for stale in remove_stale_temp_files(self.best_path.parent, self.log_path.parent):
            print(f"removed {stale}, left by an interrupted write")

    @property
    def best_key(self):
        return f"val_{self.loop.metric}"

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
        print(f"resumed {self.kind} from {path} after epoch {self.start_epoch}")
        for key, (old, new) in changes.items():
            print(f"  {key}: {old!r} -> {new!r} (config.RESUME_ALLOW_CHANGES)")
        return checkpoint

    def fit(self, epochs=None, stop_after=None):
        """Train up to `epochs` (config.EPOCHS); `stop_after` ends early (to test resume)."""
        epochs = self.cfg.EPOCHS if epochs is None else epochs
        resume.check_epochs(self.start_epoch, epochs, self.best_path.is_file(), self.best_path)
        last = epochs if stop_after is None else min(epochs, stop_after)
        for epoch in tqdm(range(self.start_epoch, last), desc=f"{self.kind} epochs"):
            self._run_epoch(epoch)
        return pd.DataFrame(self.history)

    def _run_epoch(self, epoch):
        seed_epoch(self.train_loader, epoch_seed(self.cfg.SEED, epoch))
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)
        batch_scheduler = self.scheduler if self.loop.scheduler_per_batch else None
        train_loss = train_one_epoch(
            self.model,
            self.train_loader,
            self.loss_fn,
            self.optimizer,
            f"epoch {epoch + 1}",
            batch_scheduler,
        )
        val = self.loop.evaluate(self.model, self.val_loader, self.loss_fn)
        if batch_scheduler is None:
            self.scheduler.step(val.metrics[self.loop.metric])
        row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val.loss}
        row.update({f"val_{k}": v for k, v in val.metrics.items()})
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        self.history.append(row)
        self._save(epoch, row)
        tqdm.write(
            f"epoch {epoch + 1}: train loss {train_loss:.4f}  val loss {val.loss:.4f}  "
            f"val {self.loop.metric} {row[self.best_key]:.4f}"
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
