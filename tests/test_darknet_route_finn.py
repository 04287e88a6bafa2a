"""A Darknet cfg with [upsample] and a two-layer [route] (concat) through the repo's FINN flow:
one HW partition with UpsampleNearestNeighbour and StreamingConcat layers, bit-exact from
Brevitas to the folded graph (about half a minute)."""

import functools
import tempfile

import numpy as np

from modules.dataflow import flow as finn_flow
from modules.dataflow import stage_check
from modules.hardware.detector_fit import calibrated_detector
from modules.models.quant_layers import BitWidths
from modules.quantization.export import export_qonnx_model

SIZE = 32
CONV = "[convolutional]\nbatch_normalize=1\nfilters={}\nsize=3\nstride=1\npad=1\nactivation=relu\n"
# conv 2 forks: into the maxpool and, 2x upsampled conv 4 beside it, into the concat (route 6)
CFG = (
    f"[net]\nwidth={SIZE}\nheight={SIZE}\nchannels=3\n\n"
    + CONV.format(8)
    + "\n[maxpool]\nsize=2\nstride=2\n\n"
    + CONV.format(8)
    + "\n[maxpool]\nsize=2\nstride=2\n\n"
    + CONV.format(8)
    + "\n[upsample]\nstride=2\n\n[route]\nlayers=-1,2\n\n"
    + "[convolutional]\nfilters=21\nsize=1\nstride=1\npad=1\nactivation=linear\n\n"
    + "[yolo]\nmask=0,1,2\nanchors=10,14, 23,27, 37,58\nclasses=2\nnum=3\n"
)


@functools.cache
def route_flow():
    out = tempfile.mkdtemp(prefix="finn_route_")
    cfg = f"{out}/route.cfg"
    with open(cfg, "w") as file:
        file.write(CFG)
    model = calibrated_detector(cfg, BitWidths(), 1.0, SIZE, images=8, steps=4)
    clean = export_qonnx_model(model, SIZE, f"{out}/raw.onnx", f"{out}/clean.onnx")
    flow = finn_flow.run_flow(clean, out, "xc7z020clg400-1", target_fps=1000)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 3, SIZE, SIZE)).astype(np.float32)
    return model, flow, out, images


def test_route_and_upsample_become_hw_layers():
    _, flow, _, _ = route_flow()
    assert all(finn_flow.is_hw_node(node) for node in flow.child.graph.node)
    counts = finn_flow.node_counts(flow.child)
    assert counts["UpsampleNearestNeighbour"] == 1 and counts["StreamingConcat"] == 1
    assert set(finn_flow.node_counts(flow.parent)) == {
        "Transpose",
        "StreamingDataflowPartition",
        "Mul",
    }


def test_route_and_upsample_bit_exact_from_brevitas_to_folded():
    model, flow, out, images = route_flow()
    stages = stage_check.flow_stages(flow, model, out)
    table, outputs = stage_check.stage_equivalence(stages, images)
    stage_check.assert_identical(table)
    grid = SIZE // model.spec.stride
    assert outputs["folded"].shape == (3, model.spec.head_channels * grid * grid)
