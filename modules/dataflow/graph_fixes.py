"""Small ONNX graph rewrites that FINN needs and no library transformation does."""

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation


class RemoveTransposeBeforeFlatten(Transformation):
    """A Transpose that only moves size-1 axes (NHWC -> NCHW of the 1x1 map after global
    pooling) keeps the elements in order, so before a Reshape/Flatten it does nothing: drop
    it. FINN's AbsorbTransposeIntoFlatten does this only for Reshape(1, -1); torch's exporter
    writes the explicit shape (1, C). The Reshape left between two HW layers is then removed
    by RemoveCNVtoFCFlatten."""

    def apply(self, model):
        for node in model.graph.node:
            if node.op_type != "Transpose":
                continue
            consumers = model.find_consumers(node.output[0]) or []
            flattens = all(_is_batch_flatten(c) for c in consumers)
            shape = model.get_tensor_shape(node.input[0])
            if consumers and flattens and _keeps_order(shape, _perm(node)):
                for consumer in consumers:
                    consumer.input[0] = node.input[0]
                model.graph.node.remove(node)
                return model, True
        return model, False


def _perm(node):
    return [a.ints for a in node.attribute if a.name == "perm"][0]


def _keeps_order(shape, perm):
    if shape is None or perm[0] != 0:
        return False
    moved = [axis for axis in perm if shape[axis] != 1]
    return moved == sorted(moved)


def _is_batch_flatten(node):
    axis = [a.i for a in node.attribute if a.name == "axis"]
    return node.op_type == "Reshape" or (node.op_type == "Flatten" and axis in ([], [1]))


class BipolarOutputToBinary(Transformation):
    """A BipolarQuant head streamlines into MultiThreshold(out_dtype=BIPOLAR, out_scale=2,
    out_bias=-1), which FINN cannot turn into a Thresholding layer ("out_scale must be 1").
    Make the threshold BINARY (1 iff logit >= 0) and rebuild -1/+1 with Mul(2), Add(-1) after
    it; those two stay on the host (see `output_tail_nodes`)."""

    def apply(self, model):
        for index, node in enumerate(model.graph.node):
            if node.op_type != "MultiThreshold":
                continue
            threshold = getCustomOp(node)
            if threshold.get_nodeattr("out_dtype") != "BIPOLAR":
                continue
            threshold.set_nodeattr("out_dtype", "BINARY")
            threshold.set_nodeattr("out_scale", 1.0)
            threshold.set_nodeattr("out_bias", 0.0)
            self._append_rescale(model, index, node)
            return model, True
        return model, False

    @staticmethod
    def _append_rescale(model, index, node):
        bipolar_out, shape = node.output[0], model.get_tensor_shape(node.output[0])
        binary, doubled = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
        for name in (binary, doubled):
            model.graph.value_info.append(
                helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
            )
        two, minus_one = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
        model.set_initializer(two, np.asarray(2.0, dtype=np.float32))
        model.set_initializer(minus_one, np.asarray(-1.0, dtype=np.float32))
        node.output[0] = binary
        mul = helper.make_node("Mul", [binary, two], [doubled], name=f"{node.name}_bipolar_mul")
        add = helper.make_node(
            "Add", [doubled, minus_one], [bipolar_out], name=f"{node.name}_bipolar_add"
        )
        model.graph.node.insert(index + 1, mul)
        model.graph.node.insert(index + 2, add)
        model.set_tensor_datatype(binary, DataType["BINARY"])
        model.set_tensor_datatype(bipolar_out, DataType["BIPOLAR"])


def output_tail_nodes(model):
    """Names of the Mul/Add-by-constant chain that ends at the graph outputs (dequantisation,
    bipolar re-mapping). They belong on the host: left alone, InferElementwiseBinaryOperation
    would turn them into ElementwiseMul/Add HW layers with float operands."""
    tail, frontier = set(), [output.name for output in model.graph.output]
    while frontier:
        producer = model.find_producer(frontier.pop())
        if producer is None or producer.op_type not in ("Mul", "Add"):
            continue
        constants = [name for name in producer.input if model.get_initializer(name) is not None]
        consumers = model.find_consumers(producer.output[0]) or []
        if len(constants) != 1 or any(c.name not in tail for c in consumers):
            continue
        tail.add(producer.name)
        frontier += [name for name in producer.input if model.get_initializer(name) is None]
    return tail
