"""Stage-to-stage equivalence on real images: Brevitas, QONNX and (later) FINN graphs.

A stage is a name and a function from a float batch (N,3,H,W, values 0..255) to outputs (N,C).
`equivalence_table` runs every stage on the same images and reports, for each stage, the
largest absolute difference to the previous stage, how many outputs are bit-identical, and the
share of identical [smoke, fire] decisions.
"""

import numpy as np
import pandas as pd
import torch
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx

from modules.board.decisions import agreement_percent, decide


def torch_stage(model):
    def run(images):
        model.eval()
        with torch.no_grad():
            return model(torch.as_tensor(images, dtype=torch.float32)).numpy()

    return run


def onnx_stage(model):
    """qonnx execution of an ONNX/QONNX/FINN graph (path or ModelWrapper), one image at a time
    (FINN graphs have batch size 1)."""
    wrapper = model if isinstance(model, ModelWrapper) else ModelWrapper(str(model))
    input_name, output_name = wrapper.graph.input[0].name, wrapper.graph.output[0].name

    def run(images):
        outputs = [
            execute_onnx(wrapper, {input_name: np.asarray(image[None], dtype=np.float32)})[
                output_name
            ]
            for image in images
        ]
        return np.concatenate([o.reshape(1, -1) for o in outputs])

    return run


def equivalence_table(stages, images):
    """`stages`: dict name -> run function, compared to the stage before it, or name ->
    (run function, name of the stage to compare to). Returns (table, outputs by stage)."""
    outputs, rows, previous = {}, [], None
    for name, spec in stages.items():
        run, reference = spec if isinstance(spec, tuple) else (spec, previous)
        out = np.asarray(run(images), dtype=np.float64).reshape(len(images), -1)
        outputs[name] = out
        row = {"stage": name, "images": len(images)}
        if reference is not None:
            ref = outputs[reference]
            row["compared_to"] = reference
            row["max_abs_diff"] = float(np.abs(out - ref).max())
            row["identical_outputs_%"] = 100.0 * float(np.mean(np.all(out == ref, axis=1)))
            row["decision_agreement_%"] = agreement_percent(decide(out), decide(ref))
        rows.append(row)
        previous = name
    return pd.DataFrame(rows).set_index("stage"), outputs
