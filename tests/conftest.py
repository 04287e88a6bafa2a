import os
import types

import pytest

import config


def pytest_configure():
    """Under pytest-xdist (make test), the workers share the cores: torch in each worker, and
    in the processes its tests start (CLI runs, notebook kernels), takes its share of them
    instead of one thread per core in every worker."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        import torch

        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


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
