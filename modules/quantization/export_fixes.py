"""Rewrites of what torch's ONNX exporter writes into what QONNX and FINN read."""

import numpy as np
from onnx import helper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_shapes import InferShapes


class ReduceMeanToGlobalAveragePool(Transformation):
    """torch's dynamo exporter writes AdaptiveAvgPool2d(1) as ReduceMean over H and W with
    keepdims; FINN only maps GlobalAveragePool (to GlobalAccPool), so rewrite it."""

    def apply(self, model):
        changed = False
        for index, node in enumerate(list(model.graph.node)):
            if not self._is_spatial_mean(model, node):
                continue
            pool = helper.make_node(
                "GlobalAveragePool", [node.input[0]], [node.output[0]], name=f"{node.name}_gap"
            )
            model.graph.node.remove(node)
            model.graph.node.insert(index, pool)
            changed = True
        return (model.transform(InferShapes()) if changed else model), False

    @staticmethod
    def _is_spatial_mean(model, node):
        if node.op_type != "ReduceMean":
            return False
        # opset >= 18 gives the axes as a second input, older opsets as an attribute
        axes = model.get_initializer(node.input[1]) if len(node.input) > 1 else None
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        axes = attributes.get("axes") if axes is None else axes
        shape = model.get_tensor_shape(node.input[0])
        if axes is None or shape is None or len(shape) != 4:
            return False
        keepdims = attributes.get("keepdims", 1)
        return sorted(int(a) % 4 for a in np.atleast_1d(axes)) == [2, 3] and keepdims == 1
