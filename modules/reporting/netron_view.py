"""Open a saved ONNX graph in Netron (seed 000's workflow): served on localhost.

make netron FILE=runs/demo/onnx/02_brevitas_w4a4_qonnx.onnx
"""

import argparse
from pathlib import Path

import netron


def serve(path, port=None):
    """Start Netron on localhost for `path`; returns (host, port)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX file at {path}")
    address = ("localhost", port) if port else None
    return netron.start(str(path), address=address, browse=False)


def show(path, port=None, height=600):
    """An IFrame with the graph, for a notebook cell."""
    return netron.widget(serve(path, port), height=height)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Serve an ONNX file in Netron on localhost")
    parser.add_argument("file")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    host, port = serve(args.file, args.port)
    print(f"Netron: http://{host}:{port}  (Ctrl-C stops)")
    netron.wait()


if __name__ == "__main__":
    main()
