"""The points a sweep runs: a grid shipped in config.SWEEP_GRIDS, or the `--search` space in
config.SWEEP_SEARCH_SPACES, checked against config.apply before any trial starts."""

import itertools

import config

# what a trial sets itself (its folder, the quantized model, PTQ at the trial's bit widths)
SET_BY_TRIAL = (
    "RUNS_DIR",
    "RUN_NAME",
    "BREVITAS_MODEL",
    "LOAD_MODEL",
    "LOAD_MODEL_FILE",
    "QAT_EPOCHS",
    "PTQ_WEIGHT_BIT_WIDTH",
    "PTQ_ACT_BIT_WIDTH",
)
METHODS = ("qat", "ptq", "gate")  # DEPLOY_MODEL values a trial takes
# keys whose value changes the FP32 model's tensors: such a point needs its own FP32 reference
FP32_MODEL_KEYS = ("MODEL", "WIDTH_MULT", "DETECTOR_CFG", "DETECTOR_WIDTH_MULT")
SHORT_NAMES = {
    "WEIGHT_BIT_WIDTH": "W",
    "ACT_BIT_WIDTH": "A",
    "FIRST_LAYER_WEIGHT_BIT_WIDTH": "first",
    "LAST_LAYER_WEIGHT_BIT_WIDTH": "last",
    "WIDTH_MULT": "x",
    "DETECTOR_WIDTH_MULT": "x",
    "DEPLOY_MODEL": "",
}


class SweepSpaceError(ValueError):
    """A grid or search space that config refuses, naming the grid, the point and the key."""


def expand(grid):
    """A list of points as given, or {key: [values]} as the product of its values."""
    if isinstance(grid, dict):
        product = itertools.product(*grid.values())
        return [dict(zip(grid, values, strict=True)) for values in product]
    return [dict(point) for point in grid]


def grid_points(grids, task, name):
    """The points of grid `name` for `task` (config.SWEEP_GRIDS[task][name])."""
    known = grids.get(task, {})
    if name not in known:
        raise SweepSpaceError(
            f"config.SWEEP_GRIDS[{task!r}] has no grid {name!r}; known: {sorted(known)}"
        )
    points = expand(known[name])
    if not points:
        raise SweepSpaceError(f"config.SWEEP_GRIDS[{task!r}][{name!r}] has no points")
    return points


def label(point):
    """A short, unique name of a point, e.g. 'W4 A4 x0.5 ptq' (the grid's Optuna parameter)."""
    parts = []
    for key, value in sorted(point.items(), key=lambda item: _order(item[0])):
        short = SHORT_NAMES.get(key, f"{key}=")
        parts.append(f"{short}{value}")
    return " ".join(parts) or "config as is"


def _order(key):
    names = list(SHORT_NAMES)
    return (names.index(key) if key in names else len(names), key)


def check_points(points, profile, overrides, where):
    """Every point through config.apply (profile, overrides, point) before a trial starts:
    an unknown key, a key the trial sets itself or a value config refuses is an error naming
    `where` (the grid), the point and the key. The config is left at the profile's values."""
    try:
        for point in points:
            fixed = sorted(set(point) & set(SET_BY_TRIAL))
            if fixed:
                raise SweepSpaceError(
                    f"{where}, point {label(point)!r}: {fixed} are set by each trial itself "
                    "(hidden layers use WEIGHT/ACT_BIT_WIDTH in PTQ and QAT alike)"
                )
            method = point.get("DEPLOY_MODEL", "qat")
            if method not in METHODS:
                raise SweepSpaceError(
                    f"{where}, point {label(point)!r}: DEPLOY_MODEL = {method!r}; a trial takes "
                    f"one of {list(METHODS)}"
                )
            try:
                config.apply(profile, **{**overrides, **point})
            except (KeyError, ValueError) as error:
                message = error.args[0] if error.args else str(error)
                raise SweepSpaceError(f"{where}, point {label(point)!r}: {message}") from None
    finally:
        config.apply(profile, **overrides)
    return points


def search_space(spaces, task):
    """config.SWEEP_SEARCH_SPACES[task] as {key: [values]}, each a non-empty list."""
    if task not in spaces:
        raise SweepSpaceError(f"config.SWEEP_SEARCH_SPACES has no space for TASK = {task!r}")
    space = spaces[task]
    empty = [key for key, values in space.items() if not list(values)]
    if not space or empty:
        raise SweepSpaceError(
            f"config.SWEEP_SEARCH_SPACES[{task!r}]: every key needs candidate values ({empty})"
        )
    return {key: list(values) for key, values in space.items()}
