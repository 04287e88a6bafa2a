"""The emulator vs qonnx `execute_onnx` on the same HW-layer graphs and images, in one run.

    python benchmarks/bench_emulator.py [--size 224] [--onnx-images 4] [--emulator-images 32]
                                        [--work DIR]

Graphs: the project's classifier (MobileNetV2-mini, W4A4, `--size`, default the config's
image size) and brevitas_examples' CNV W1A1 (32x32, XNOR MVAUs, max pools, label select).
Weights are random but calibrated; speed does not depend on their values. For each graph it
prints ms/image for both, whether the outputs are identical on every compared image, and the
ratio. The machine is shared, so both sides of a ratio are measured back to back in one run.
`--work DIR` keeps the compiled graphs and reuses them on the next run.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_designs import calibrated_model, compare  # noqa: E402

import config  # noqa: E402
from modules.dataflow import flow as finn_flow  # noqa: E402
from modules.quantization.export import export_qonnx_model  # noqa: E402

PART = "xc7z020clg400-1"


def classifier(size):
    return calibrated_model(size)


def cnv(size):
    import torch
    from brevitas_examples.bnn_pynq.models import model_with_cfg
    from torch import nn

    from modules.models.architecture import ScaleInput

    torch.manual_seed(0)
    net, _ = model_with_cfg("cnv_1w1a", pretrained=False)
    net = nn.Sequential(ScaleInput(), net)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
            module.momentum = None
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(torch.randint(0, 256, (16, 3, size, size)).float())
    return net.eval()


def hw_graph(name, build, size, work):
    """The HW-layer graph of `build(size)`, compiled into work/name (reused when present)."""
    out = Path(work) / name
    path = finn_flow.stage_path(out, "hw_layers")
    if not path.is_file():
        started = time.perf_counter()
        clean = export_qonnx_model(build(size), size, out / "raw.onnx", out / "clean.onnx")
        finn_flow.run_flow(clean, out, PART)
        print(f"{name}: compiled in {time.perf_counter() - started:.0f} s ({out})")
    return ModelWrapper(str(path))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=config.IMG_SIZE)
    parser.add_argument("--onnx-images", type=int, default=4)
    parser.add_argument("--emulator-images", type=int, default=32)
    parser.add_argument("--work", default=None, help="keep/reuse compiled graphs here")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="bench_emulator_")
    graphs = [
        ("MobileNetV2-mini W4A4", classifier, args.size),
        ("CNV W1A1", cnv, 32),
    ]
    for name, build, size in graphs:
        graph = hw_graph(name.split()[0].lower(), build, size, work)
        compare(name, graph, size, args.onnx_images, args.emulator_images)


if __name__ == "__main__":
    main()
