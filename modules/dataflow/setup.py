"""FINN as a library, without Vivado and without hand-made environment variables.

finn-plus expects to be started through its CLI, which creates a build folder and a settings
object. The flow functions call `ensure_finn()` first; it does the same for library use.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_BUILD_DIR = None


def ensure_finn(build_dir=None):
    """Create a FINN build folder, export FINN_BUILD_DIR and initialise FINN's settings.

    Idempotent: later calls return the folder of the first one (FINN reads the variable once
    per process, so switching folders mid-run would not take effect anyway). Without
    `build_dir` or FINN_BUILD_DIR a temporary folder is used and removed when the process exits.
    """
    global _BUILD_DIR
    if _BUILD_DIR is not None:
        return _BUILD_DIR
    if build_dir is None:
        build_dir = os.environ.get("FINN_BUILD_DIR") or temporary_build_dir()
    path = Path(build_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["FINN_BUILD_DIR"] = str(path)  # FINN's transformations make_build_dir() here
    from finn.util.settings import initialize_dummy_settings

    initialize_dummy_settings()
    _BUILD_DIR = path
    return path


def temporary_build_dir():
    """A fresh system temp folder that is deleted, with what FINN wrote in it, at exit."""
    path = tempfile.mkdtemp(prefix="finn_build_")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
