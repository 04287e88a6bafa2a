import types

import pytest

import config


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory):
    """A run folder and the tiny demo data set, generated once per test session."""
    root = tmp_path_factory.mktemp("tiny")
    return {
        "RUNS_DIR": str(root / "runs"),
        "DEMO_DIR": str(root / "demo"),
        "CACHE_DIR": str(root / "cache"),
    }


@pytest.fixture
def tiny_cfg(tiny_dirs):
    """The tiny profile as a plain namespace; the global config is left at the file's values."""
    try:
        values = config.apply("tiny", **tiny_dirs)
    finally:
        config.apply()
    return types.SimpleNamespace(**values)


@pytest.fixture(scope="session")
def mobilenet_flow(tmp_path_factory):
    """Our MobileNetV2-mini through the whole FINN flow, once per session."""
    from finn_designs import build_mobilenet_flow

    return build_mobilenet_flow(tmp_path_factory.mktemp("finn_mnv2"))


@pytest.fixture(scope="session")
def cnv_flow(tmp_path_factory):
    """brevitas_examples' CNV (W1A1, TopK head) through the whole FINN flow, once per session."""
    from finn_designs import build_cnv_flow

    return build_cnv_flow(tmp_path_factory.mktemp("finn_cnv"))
