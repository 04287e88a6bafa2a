"""Small ONNX graph rewrites that FINN needs and no library transformation does."""

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
        if node.op_type != "ReduceMean" or len(node.input) < 2:
            return False
        axes, shape = model.get_initializer(node.input[1]), model.get_tensor_shape(node.input[0])
        if axes is None or shape is None or len(shape) != 4:
            return False
        keepdims = [a.i for a in node.attribute if a.name == "keepdims"]
        return sorted(int(a) % 4 for a in np.atleast_1d(axes)) == [2, 3] and keepdims in ([], [1])
