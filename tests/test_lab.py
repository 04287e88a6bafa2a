"""`firesmoke lab` serves the notebooks folder and offers the venv's python as kernel."""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from modules.commands.lab import lab_command
from modules.pipeline import NOTEBOOK_DIR


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url, token, deadline):
    while True:
        try:
            request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def lab_server(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    command = lab_command(port, open_browser=False, token=token)
    command.append("--ServerApp.ip=127.0.0.1")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path)}
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_lab_serves_the_notebooks_with_the_venv_kernel(lab_server):
    base, token = lab_server
    deadline = time.monotonic() + 90
    listing = _get_json(f"{base}/api/contents/", token, deadline)
    served = {item["name"] for item in listing["content"]}
    assert {p.name for p in NOTEBOOK_DIR.glob("0*.ipynb")} <= served
    specs = _get_json(f"{base}/api/kernelspecs", token, deadline)
    default = specs["kernelspecs"][specs["default"]]["spec"]
    kernel_python = default["argv"][0]
    assert lab_command()[0] == sys.executable  # the server runs on this venv's python
    # "python" in a kernelspec means the server's own interpreter, i.e. this venv's
    resolved = sys.executable if kernel_python in ("python", "python3") else kernel_python
    assert Path(resolved).resolve() == Path(sys.executable).resolve()
