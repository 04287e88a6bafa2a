import os
import subprocess
import sys

SCRIPT = """
from modules.dataflow.setup import ensure_finn
path = ensure_finn()
(path / "stage_files").mkdir()  # what FINN's make_build_dir leaves there
print(path)
"""


def test_temporary_finn_build_folder_is_removed_at_exit(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FINN_BUILD_DIR"}
    env["TMPDIR"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    used = out.stdout.strip().splitlines()[-1]
    assert used.startswith(str(tmp_path)) and "finn_build_" in used
    assert list(tmp_path.iterdir()) == []


def test_given_build_folder_is_kept(tmp_path):
    env = {**os.environ, "FINN_BUILD_DIR": str(tmp_path / "mine")}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "mine" / "stage_files").is_dir()
