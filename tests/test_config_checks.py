import pytest

import config
from modules.config_checks import RULES, problems


@pytest.fixture(autouse=True)
def _reset_config():
    yield
    config.apply()


@pytest.mark.parametrize(
    "key, value",
    [
        ("EPOCHS", 0),  # counts: integers >= 1
        ("EPOCHS", 2.5),
        ("BATCH_SIZE", "64"),
        ("BATCH_SIZE", True),  # a bool is not a count
        ("IMG_SIZE", -32),
        ("DS_LEN", 0),
        ("NUM_WORKERS", -1),
        ("WEIGHT_BIT_WIDTH", 33),  # bit widths FINN maps
        ("WEIGHT_BIT_WIDTH", 0),
        ("ACT_BIT_WIDTH", 1),
        ("INPUT_BIT_WIDTH", 4),
        ("BIAS_BIT_WIDTH", 33),
        ("VAL_FRACTION", 1.0),  # fractions
        ("VAL_FRACTION", -0.1),
        ("RESOURCE_BUDGET_FRACTION", 1.5),
        ("DECISION_THRESHOLD", float("nan")),
        ("LEARNING_RATE", 0),  # positive reals
        ("DATASET", "dfire2"),  # names with one owner
        ("MODEL", "resnet50"),
        ("BOARD", "ZCU104"),
        ("OPTIMIZER", "rmsprop"),
        ("ACCELERATOR_BACKEND", "gpu"),
        ("AUGMENT", "yes"),  # flags
        ("RESUME_ALLOW_CHANGES", ["LEARNIN_RATE"]),
    ],
)
def test_apply_refuses_bad_value_naming_the_key(key, value):
    before = config.snapshot()
    with pytest.raises(ValueError, match=rf"{key} = ") as error:
        config.apply("tiny", **{key: value})
    assert "expected" in str(error.value)
    assert config.snapshot() == before  # nothing was set


@pytest.mark.parametrize(
    "overrides",
    [
        {"EPOCHS": 1, "BATCH_SIZE": 1, "IMG_SIZE": 32},
        {"WEIGHT_BIT_WIDTH": 1, "ACT_BIT_WIDTH": 2, "BIAS_BIT_WIDTH": 16},
        {"OPTIMIZER": "SGD", "DATASET": "dfire+fasdd", "BOARD": "Pynq-Z1", "DS_LEN": None},
        {"RESUME_ALLOW_CHANGES": ["LEARNING_RATE", "SEED"], "QAT_EPOCHS": None},
    ],
)
def test_apply_accepts_values_at_the_edges(overrides):
    values = config.apply("tiny", **overrides)
    assert {k: values[k] for k in overrides} == overrides


def test_every_profile_and_the_file_values_pass():
    for profile in config.PROFILES:
        config.apply(profile)


def test_keys_without_a_rule_pass_and_every_rule_names_a_knob():
    assert problems({"SOME_FUTURE_KNOB": object(), "EPOCHS": 3}) == []
    assert set(RULES) <= set(config.snapshot())


def test_all_bad_keys_are_listed_at_once():
    found = problems({**config.snapshot(), "EPOCHS": 0, "SEED": "42"})
    assert [line.split(" =")[0] for line in found] == ["SEED", "EPOCHS"]


@pytest.mark.parametrize(
    "key, value",
    [("NUM_WORKERS", -1), ("NUM_WORKERS", "many"), ("TASK", "segment"), ("IMAGE_CACHE", "ram")],
)
def test_training_scale_and_task_keys_are_checked(key, value):
    with pytest.raises(ValueError, match=key):
        config.apply(**{key: value})
    config.apply()
    assert config.NUM_WORKERS == "auto"  # the word is allowed, and the file's default
