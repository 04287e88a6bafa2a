"""The detector's head quantization, read from the exported graph, and the host spec file.

The accelerator ends at the last conv: its output is an integer tensor that the host multiplies
by one scale. That scale (and zero point, bit width) is read here from the graph's final Quant
node, never hard-coded, and written with the anchors and decode settings into the deployment
package (`detect_spec.json`), which `modules.board.detect.load_detect_spec` reads on the board.
"""

import json
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper


def head_quantization(model):
    """Scale, zero point and bit width of the Quant node that produces the graph output."""
    wrapper = model if isinstance(model, ModelWrapper) else ModelWrapper(str(model))
    output = wrapper.graph.output[0].name
    node = wrapper.find_producer(output)
    if node is None or node.op_type != "Quant":
        found = "nothing" if node is None else node.op_type
        raise ValueError(
            f"{output} of the exported detector is produced by {found}, not a Quant node: the "
            "head conv needs an output quantizer for the accelerator to emit integers"
        )
    scale, zero_point, bit_width = (wrapper.get_initializer(name) for name in node.input[1:4])
    if scale is None or np.size(scale) != 1:
        raise ValueError(f"the head's Quant node {node.name} needs one constant scale")
    signed = next((a.i for a in node.attribute if a.name == "signed"), 1)
    return {
        "scale": float(np.asarray(scale).reshape(())),
        "zero_point": float(np.asarray(zero_point).reshape(())),
        "bit_width": int(np.asarray(bit_width).reshape(())),
        "signed": bool(signed),
    }


def write_detect_spec(path, quantization, settings, classes):
    """What the host needs besides the accelerator: dequantization, anchors, thresholds."""
    spec = {
        "head": quantization,
        "anchors": [list(map(float, anchor)) for anchor in settings.anchors],
        "img_size": int(settings.img_size),
        "conf_threshold": float(settings.conf_threshold),
        "iou_threshold": float(settings.iou_threshold),
        "max_det": int(settings.max_det),
        "classes": list(classes),
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(spec, indent=2))
    return Path(path)
