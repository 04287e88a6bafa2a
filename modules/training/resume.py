"""What a resume must agree with: the checkpoint's settings, and the epochs still to run.

A checkpoint records the config it was trained with. Resuming with other data, model or
optimisation settings would continue the old optimizer state under new names, so it is refused
with the list of differences unless config.RESUME_ALLOW_CHANGES names them.
"""

# settings that change what the resumed epochs compute (EPOCHS is checked on its own: it may grow)
RESUME_KEYS = (
    "CLASSES",
    "DFIRE_CLASS_IDS",
    "FASDD_CLASS_IDS",
    "DATASET",
    "DS_LEN",
    "VAL_FRACTION",
    "DEMO_SEED",
    "DEMO_SPLITS",
    "DEMO_IMAGE_SIZE",
    "IMG_SIZE",
    "MODEL",
    "WIDTH_MULT",
    "SEED",
    "OPTIMIZER",
    "LEARNING_RATE",
    "WEIGHT_DECAY",
    "MOMENTUM",
    "SCHEDULER_FACTOR",
    "SCHEDULER_PATIENCE",
    "BATCH_SIZE",
    "AUGMENT",
    "SMOKE_PRECISION_WEIGHT",
    "DECISION_THRESHOLD",
)
# allowed changes that live in the restored optimizer / scheduler state and must be pushed there
OPTIMIZER_FIELDS = {"LEARNING_RATE": "lr", "WEIGHT_DECAY": "weight_decay", "MOMENTUM": "momentum"}
SCHEDULER_FIELDS = {"SCHEDULER_FACTOR": "factor", "SCHEDULER_PATIENCE": "patience"}


def config_values(cfg):
    return cfg.snapshot() if hasattr(cfg, "snapshot") else dict(vars(cfg))


def setting_changes(saved, current):
    """{key: (checkpoint's value, current value)} for the RESUME_KEYS that differ (keys an older
    checkpoint does not record are not compared)."""
    return {
        key: (saved[key], current.get(key))
        for key in RESUME_KEYS
        if key in saved and saved[key] != current.get(key)
    }


def check_settings(checkpoint, cfg, path):
    """Refuse a resume whose settings differ from the checkpoint's, except the allowed keys;
    returns the allowed changes {key: (old, new)}."""
    changes = setting_changes(checkpoint.get("config", {}), config_values(cfg))
    allowed = set(getattr(cfg, "RESUME_ALLOW_CHANGES", ()) or ())
    refused = {key: values for key, values in changes.items() if key not in allowed}
    if refused:
        listed = "; ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in refused.items())
        raise ValueError(
            f"resume from {path}: settings differ from the checkpoint's ({listed}). Restore "
            f"them, or list the keys that may change in config.RESUME_ALLOW_CHANGES "
            f"(e.g. {sorted(refused)}), or start afresh with LOAD_MODEL = False"
        )
    return changes


def push_allowed_changes(changes, optimizer, scheduler, cfg):
    """An allowed new learning rate, weight decay, momentum or scheduler setting replaces the
    restored one (else the run would go on with the checkpoint's value)."""
    for key, field in OPTIMIZER_FIELDS.items():
        if key in changes:
            for group in optimizer.param_groups:
                if field in group:
                    group[field] = getattr(cfg, key)
    for key, field in SCHEDULER_FIELDS.items():
        if key in changes:
            setattr(scheduler, field, getattr(cfg, key))


def check_epochs(done, epochs, best_exists, best_path):
    """Stop before training when `epochs` is below what the checkpoint holds, or when nothing
    is left to train and this run has no best checkpoint to evaluate."""
    if epochs < done:
        raise ValueError(
            f"the checkpoint has trained {done} epochs but EPOCHS = {epochs}: EPOCHS may only "
            "grow on resume (set it to at least that, or LOAD_MODEL = False to start afresh)"
        )
    if epochs == done and not best_exists:
        raise ValueError(
            f"nothing to train ({done} of EPOCHS = {epochs} epochs done) and this run has no "
            f"best checkpoint {best_path}: raise EPOCHS to train on, or resume in the run "
            "folder the checkpoint came from (config.RUN_NAME)"
        )
