import ast
from pathlib import Path

import pytest

import config

CONFIG_FILE = Path(config.__file__)


def test_import_has_no_side_effects():
    # Only assignments, imports, function definitions and the docstring at module level.
    tree = ast.parse(CONFIG_FILE.read_text())
    allowed = (ast.Assign, ast.Import, ast.ImportFrom, ast.FunctionDef, ast.Expr)
    for node in tree.body:
        assert isinstance(node, allowed), f"line {node.lineno}: {type(node).__name__}"
        if isinstance(node, ast.Expr):
            assert isinstance(node.value, ast.Constant), f"line {node.lineno} calls something"
    text = CONFIG_FILE.read_text()
    for call in ("mkdir", "open(", "read_text", "makedirs", "torch."):
        assert call not in text


def test_apply_profile_then_overrides_and_reset():
    try:
        values = config.apply("tiny", EPOCHS=5)
        assert values["EPOCHS"] == 5 and config.EPOCHS == 5
        assert config.IMG_SIZE == config.PROFILES["tiny"]["IMG_SIZE"]
        config.apply()
        assert config.EPOCHS == config._FILE_VALUES["EPOCHS"]
        assert config.IMG_SIZE == config._FILE_VALUES["IMG_SIZE"]
    finally:
        config.apply()


def test_apply_does_not_share_mutable_values_between_runs():
    original = dict(config.PROFILES["tiny"]["DEMO_SPLITS"])
    try:
        config.apply("tiny")
        config.DEMO_SPLITS["train"] = -1
        config.apply("tiny")
        assert config.DEMO_SPLITS == original == config.PROFILES["tiny"]["DEMO_SPLITS"]
    finally:
        config.apply()


def test_unknown_key_and_profile_are_named():
    with pytest.raises(KeyError, match="EPOCH"):
        config.apply(EPOCH=3)
    with pytest.raises(ValueError, match="nosuch"):
        config.apply("nosuch")


def test_profiles_only_use_known_keys():
    known = set(config.snapshot())
    for name, values in config.PROFILES.items():
        assert set(values) <= known, name
