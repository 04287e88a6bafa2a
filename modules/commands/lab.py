"""`firesmoke lab`: JupyterLab on the notebooks folder with this environment's kernel."""

import os
import subprocess
import sys

from modules.pipeline import NOTEBOOK_DIR

NAME = "lab"
HELP = "open the notebooks in JupyterLab with the venv's python as kernel"


def lab_command(port=None, open_browser=True, token=None):
    """The JupyterLab command line; the server runs on this interpreter, so its default
    `python3` kernel is this venv's python (no kernelspec to install by hand)."""
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={NOTEBOOK_DIR}"]
    if port is not None:
        command.append(f"--ServerApp.port={port}")
    if not open_browser:
        command.append("--no-browser")
    if os.geteuid() == 0:  # containers and CI run as root; Jupyter refuses that by default
        command.append("--allow-root")
    if token is not None:
        command.append(f"--IdentityProvider.token={token}")
    return command


def add_arguments(parser):
    parser.add_argument("--port", type=int, default=None, help="port (default: JupyterLab's)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")


def main(args):
    return subprocess.call(lab_command(args.port, not args.no_browser))
