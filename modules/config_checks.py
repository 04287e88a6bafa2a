"""Type and range rules for config values, checked by `config.apply` before any work starts.

One rule per key in `RULES`; keys without a rule pass, so modules can add knobs without touching
this table. Choices (datasets, models, optimizers) come from the modules that implement them,
imported only when checked, so the list of valid names has one owner.
"""

import math
from numbers import Integral, Real

# Brevitas quantizes at any width; these limits are what the FINN dataflow here maps
WEIGHT_BITS = (1, 8)  # MVAU weight streams are sized for <= 8-bit weights (MVAU_WWIDTH_MAX)
ACT_BITS = (2, 8)  # thresholds grow as 2^bits; ReLU outputs need 2 bits for a non-zero level
BIAS_BITS = (2, 16)  # biases fold into float32 thresholds, exact well below 24 bits
INPUT_BITS = (8, 8)  # the input is UINT8 pixels


class ConfigError(ValueError):
    """A config value, key or profile that cannot be used; the message names the key."""


class UnknownConfigKey(ConfigError, KeyError):
    """A key config.py does not define (also a KeyError: a lookup that failed)."""

    __str__ = ValueError.__str__  # the message as written, not KeyError's quoted repr


def _is_int(value):
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def integer(low, high=None, optional=False):
    """An int in [low, high] (None allowed when `optional`)."""
    span = f">= {low}" if high is None else f"in {low}..{high}"
    what = f"an integer {span}" + (" or None" if optional else "")

    def rule(value):
        if optional and value is None:
            return None
        ok = _is_int(value) and value >= low and (high is None or value <= high)
        return None if ok else what

    return rule


def number(low=None, high=None, low_open=False, high_open=False, optional=False):
    """A finite real number within the bounds (open or closed at each end)."""
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    what = f"a number in {left}{low if low is not None else '-inf'}, "
    what += f"{high if high is not None else 'inf'}{right}" + (" or None" if optional else "")

    def rule(value):
        if optional and value is None:
            return None
        if not _is_number(value):
            return what
        above = low is None or (value > low if low_open else value >= low)
        below = high is None or (value < high if high_open else value <= high)
        return None if above and below else what

    return rule


def integer_or(word, low):
    """An int >= low, or the string `word` (e.g. "auto")."""
    as_int = integer(low)

    def rule(value):
        return None if value == word else as_int(value) and f"{as_int(value)} or {word!r}"

    return rule


def boolean(value):
    return None if isinstance(value, bool) else "True or False"


def choice(options, case_insensitive=False):
    """One of `options()` (a callable, so the owning module is imported only when checked)."""

    def rule(value):
        known = list(options())
        candidate = value.lower() if case_insensitive and isinstance(value, str) else value
        return None if candidate in known else f"one of {known}"

    return rule


def key_names(value, values):
    """A list of config key names (the resume override flag); `values` holds every key."""
    ok = isinstance(value, list | tuple) and all(isinstance(name, str) for name in value)
    unknown = sorted(set(value) - set(values)) if ok else []
    if not ok or unknown:
        return f"a list of config key names{f'; unknown: {unknown}' if unknown else ''}"
    return None


def optional_text(value):
    return None if value is None or (isinstance(value, str) and value) else "a string or None"


def nested_mapping(shape):
    """A dict of dicts (the sweep's grids and search spaces; their points are checked when a
    sweep uses them, against config.apply)."""

    def rule(value):
        ok = isinstance(value, dict) and all(isinstance(v, dict) for v in value.values())
        return None if ok else f"a dict shaped {shape}"

    return rule


def _datasets():
    from modules.data.datasets import SOURCES

    return SOURCES


def _models():
    from modules.models.architecture import CFGS

    return CFGS


def _optimizers():
    from modules.training.trainer import OPTIMIZERS

    return OPTIMIZERS


def device(value):
    """DEVICE: auto | cpu | cuda | cuda:N, and CUDA present when asked for (refused here,
    before any data is prepared, not when the model first moves to the GPU)."""
    from modules.training.device import DEVICE_PATTERN

    text = str(value).strip().lower()
    if not isinstance(value, str) or not DEVICE_PATTERN.match(text):
        return "'auto', 'cpu', 'cuda' or 'cuda:N'"
    if not text.startswith("cuda"):
        return None
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(text.split(":")[1]) if ":" in text else 0
    if index < count:
        return None
    return f"'auto' or 'cpu': this machine's torch sees {count} CUDA device(s)"


def _backends():
    from modules.board.accelerator import BACKENDS

    return BACKENDS


def _fifo_methods():
    from modules.hardware.fifo_sizing import METHODS

    return METHODS


DRAM_FIELDS = ("ddr_width_bits", "ddr_rate_mts", "hp_port_bits", "efficiency")


def board_dram_rule(value):
    """BOARD_DRAM: {board: {ddr_width_bits, ddr_rate_mts, hp_port_bits, efficiency}}, all
    positive, efficiency at most 1."""
    expected = f"{{board: {{{', '.join(DRAM_FIELDS)}}}}} with positive numbers, efficiency <= 1"
    if not isinstance(value, dict):
        return expected
    for figures in value.values():
        if not isinstance(figures, dict) or sorted(figures) != sorted(DRAM_FIELDS):
            return expected
        numbers = [figures[k] for k in DRAM_FIELDS]
        if any(isinstance(n, bool) or not isinstance(n, int | float) or n <= 0 for n in numbers):
            return expected
        if figures["efficiency"] > 1:
            return expected
    return None


RULES = {
    "DATASET": choice(_datasets),
    "DEVICE": device,
    "DS_LEN": integer(1, optional=True),
    "VAL_FRACTION": number(0, 1, low_open=True, high_open=True),
    "DEMO_SEED": integer(0),
    "DEMO_IMAGE_SIZE": integer(1),
    "IMG_SIZE": integer(1),
    "FIT_IMG_SIZE": integer(32, optional=True),
    "MODEL": choice(_models),
    "WIDTH_MULT": number(0, low_open=True),
    "BREVITAS_MODEL": boolean,
    "LOAD_MODEL": boolean,
    "SEED": integer(0),
    "OPTIMIZER": choice(_optimizers, case_insensitive=True),
    "LEARNING_RATE": number(0, low_open=True),
    "WEIGHT_DECAY": number(0),
    "MOMENTUM": number(0, 1, high_open=True),
    "SCHEDULER_FACTOR": number(0, 1, low_open=True, high_open=True),
    "SCHEDULER_PATIENCE": integer(0),
    "EPOCHS": integer(1),
    "BATCH_SIZE": integer(1),
    "NUM_WORKERS": integer_or("auto", 0),
    "DDP_TIMEOUT_MIN": number(0, low_open=True),
    "AMP": boolean,
    "SYNC_BATCHNORM": boolean,
    "CHANNELS_LAST": choice(lambda: ("auto", True, False)),
    "IMAGE_CACHE": choice(lambda: ("disk", "memory", "off")),
    "CACHE_KEY": choice(lambda: ("stat", "content")),
    "TASK": choice(lambda: ("classify", "detect")),
    "DET_OPTIMIZER": choice(_optimizers, case_insensitive=True),
    "AUGMENT": boolean,
    "SMOKE_PRECISION_WEIGHT": number(0, low_open=True),
    "DECISION_THRESHOLD": number(0, 1, low_open=True, high_open=True),
    "MIN_TEST_MEAN_F1": number(0, 1, optional=True),
    "INPUT_BIT_WIDTH": integer(*INPUT_BITS),
    "FIRST_LAYER_WEIGHT_BIT_WIDTH": integer(*WEIGHT_BITS),
    "WEIGHT_BIT_WIDTH": integer(*WEIGHT_BITS),
    "ACT_BIT_WIDTH": integer(*ACT_BITS),
    "LAST_LAYER_WEIGHT_BIT_WIDTH": integer(*WEIGHT_BITS),
    "BIAS_BIT_WIDTH": integer(*BIAS_BITS),
    "QAT_EPOCHS": integer(1, optional=True),
    "QAT_INIT_FROM_FP32": boolean,
    "QAT_INIT_ALLOW_PARTIAL": boolean,
    "EQUIVALENCE_IMAGES": integer(1),
    "CLOCK_MHZ": number(0, low_open=True),
    "TARGET_FPS": number(0, low_open=True),
    "RESOURCE_BUDGET_FRACTION": number(0, 1, low_open=True),
    "FIT_TO_PART": boolean,
    "MVAU_WWIDTH_MAX": integer(1),
    "FIFO_SIZING": choice(_fifo_methods),
    "BOARD_DRAM": board_dram_rule,
    "STANDALONE_THRESHOLDS": boolean,
    "FINN_VERIFY_IMAGES": integer(1),
    "SYNTH_CHECK": boolean,
    "SYNTH_JOBS": integer(1),
    "GENERATE_BITFILE": boolean,
    "OOC_SYNTH": boolean,
    "ACCELERATOR_BACKEND": choice(_backends),
    "DEPLOY_MODEL": choice(lambda: ("gate", "qat", "ptq", "sweep")),
    "SWEEP_QAT_EPOCHS": integer(1, optional=True),
    "SWEEP_FP32_EPOCHS": integer(1, optional=True),
    "SWEEP_GRID": optional_text,
    "SWEEP_MAX_FPS": number(0, low_open=True, optional=True),
    "SWEEP_STORAGE": optional_text,
    "SWEEP_SEED": integer(0),
    "SWEEP_HEARTBEAT_S": integer(1),
    "SWEEP_GRACE_S": integer(1),
    "SWEEP_MAX_RETRY": integer(0),
    "SWEEP_GRIDS": nested_mapping("{task: {grid name: points}}"),
    "SWEEP_SEARCH_SPACES": nested_mapping("{task: {config key: [values]}}"),
}


def board_rule(value, values):
    """BOARD must be a key of BOARD_PARTS (the part each board carries)."""
    parts = values.get("BOARD_PARTS", {})
    return None if value in parts else f"one of BOARD_PARTS {sorted(parts)}"


def external_weights_rule(value, values):
    """EXTERNAL_WEIGHTS: "never", "auto" or a list of layer names; other than "never" the
    BOARD needs its DRAM figures in BOARD_DRAM."""
    names_ok = isinstance(value, list | tuple) and all(isinstance(n, str) and n for n in value)
    if value not in ("never", "auto") and not names_ok:
        return '"never", "auto" or a list of MVAU/VVAU layer names (e.g. ["MVAU_6"])'
    board = values.get("BOARD")
    if value != "never" and board not in values.get("BOARD_DRAM", {}):
        return f"BOARD_DRAM figures for BOARD {board!r} (DDR width/rate, HP port, efficiency)"
    return None


# rules that read other keys: the board's part table, the names of every key
RULES_WITH_CONTEXT = {
    "BOARD": board_rule,
    "RESUME_ALLOW_CHANGES": key_names,
    "EXTERNAL_WEIGHTS": external_weights_rule,
}


def problems(values):
    """'KEY = value: expected ...' for every value that breaks its rule."""
    found = []
    for key, value in values.items():
        rule = RULES.get(key)
        if key in RULES_WITH_CONTEXT:
            expected = RULES_WITH_CONTEXT[key](value, values)
        else:
            expected = rule(value) if rule is not None else None
        if expected is not None:
            found.append(f"{key} = {value!r}: expected {expected}")
    return found


def check_values(values):
    """Raise one ConfigError naming every bad key; the values stay as they are."""
    found = problems(values)
    if found:
        raise ConfigError("config: " + "; ".join(found) + " (see config.py for each knob)")
