"""A fast, batched, bit-exact numpy emulator of FINN HW-layer graphs.

qonnx's `execute_onnx` runs one image at a time, node by node, with per-node overhead (FINN
graphs have batch size 1). This emulator compiles the graph once into numpy kernels that take
a whole batch, and reproduces `execute_onnx` exactly: the same float32 containers, the same
threshold semantics (count of thresholds <= x), the same layouts (NHWC, im2col order
kernel-row, kernel-column, channel). It runs the generic HW graph (before specialization), a
parent graph with its StreamingDataflowPartition (the child is emulated too), and
specialized or folded graphs (an X_hls / X_rtl layer computes what X does; PE and SIMD do not
change results). Notebook 05 and `firesmoke emulate` use it as the off-board accelerator.

Integer arithmetic runs on BLAS in float where that is exact: per layer, the accumulator
bound terms * max|x| * max|w| (from the input and weight datatypes) picks float32 (exact
below 2**24), float64 (below 2**53) or int64 (`accumulator_dtype`). Inputs outside the graph
input's datatype are refused (`check_input_range`).

An MVAU with mem_mode "external" gets its weights from DRAM on the board: the emulator decodes
them from the bytes its weight DMA streams (`weight_streams`: layer name -> bytes, e.g. the
deployment package's runtime_weights files; by default the buffer FINN's flow would write), so
a layout or packing error changes the outputs. FINN's python execution reads the initializer.
"""

import itertools

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.util.basic import get_by_name
from threadpoolctl import threadpool_limits

from modules.dataflow import external_weights

FLOAT32_EXACT = 2**24  # integers up to this magnitude are exact in float32 arithmetic
FLOAT64_EXACT = 2**53  # ... and in float64; beyond that, int64
LOOKUP_MAX_ENTRIES = 2**24  # threshold tables up to this size (and float32-exact indices)
SMALL_TABLE = 2**16  # smaller tables hold float32 counts (no conversion); larger ones uint8


def generic_op_type(node):
    for suffix in ("_hls", "_rtl"):
        if node.op_type.endswith(suffix):
            return node.op_type[: -len(suffix)]
    return node.op_type


def _attr(node, name, default=None):
    attribute = get_by_name(node.attribute, name)
    if attribute is None:
        return default
    value = helper.get_attribute_value(attribute)
    return value.decode() if isinstance(value, bytes) else value


class InputRangeError(ValueError):
    """Inputs outside the datatype (or of another shape than) the graph declares."""


def check_input_shape(model, inputs):
    """Raise InputRangeError unless each input has the graph input's size (batch first)."""
    name = model.graph.input[0].name
    shape = model.get_tensor_shape(name)
    if inputs.ndim == 0 or int(np.prod(inputs.shape[1:])) != int(np.prod(shape[1:])):
        raise InputRangeError(
            f"graph input {name!r} takes (N, {', '.join(map(str, shape[1:]))}); got inputs of "
            f"shape {tuple(inputs.shape)}"
        )


def require_exact_input_shape(model, inputs):
    """Raise InputRangeError unless `inputs` is a non-empty batch of exactly the graph input's
    shape; an array whose dimensions are a permutation of it is named as transposed (the
    element count alone lets an NHWC array pass for NCHW and gives wrong outputs)."""
    name = model.graph.input[0].name
    expected, got = tuple(model.get_tensor_shape(name)[1:]), tuple(inputs.shape[1:])
    wanted = f"graph input {name!r} takes (N, {', '.join(map(str, expected))})"
    if inputs.ndim == 0 or len(inputs) == 0:
        raise InputRangeError(f"{wanted}; got an empty batch {tuple(inputs.shape)}")
    if got == expected:
        return
    order = next((p for p in itertools.permutations(range(len(got)))
                  if tuple(got[i] for i in p) == expected), None)  # fmt: skip
    if order is not None:
        axes = ", ".join(str(i + 1) for i in order)
        raise InputRangeError(
            f"{wanted}; got {tuple(inputs.shape)}, the same dimensions in another order: a "
            f"transposed array (another layout); use x.transpose(0, {axes})"
        )
    raise InputRangeError(f"{wanted}; got inputs of shape {tuple(inputs.shape)}")


def check_input_range(model, inputs):
    """Raise InputRangeError unless every value of `inputs` is allowed by the datatype of the
    graph input (a UINT8 input takes integers 0..255; FLOAT32 takes anything)."""
    name = model.graph.input[0].name
    dtype = model.get_tensor_datatype(name)
    allowed = dtype.allowed(inputs)
    if np.all(allowed):
        return
    bad = inputs[~np.asarray(allowed, dtype=bool)]
    kind = "integers " if dtype.is_integer() else ""
    raise InputRangeError(
        f"graph input {name!r} is {dtype.name} ({kind}{dtype.min()}..{dtype.max()}); got "
        f"values in {inputs.min()}..{inputs.max()}, {bad.size} of {inputs.size} not allowed "
        f"(e.g. {bad.flat[0]}). Feed the values the model was compiled for, or compile with "
        "--input-dtype FLOAT32"
    )


class Emulator:
    """`Emulator(model)(batch)` == stacked `execute_onnx(model, {input: image})[output]`.

    `threads`: BLAS threads while emulating (None: the library default). One thread is the
    default because the batches are small and a busy machine makes BLAS threads spin-wait.
    `weight_streams`: layer name -> the uint8 buffer its weight DMA streams, for layers with
    mem_mode "external" (default: FINN's buffer of the graph's own weights); shared with the
    dataflow partition's child.
    """

    def __init__(self, model, batch_size=8, threads=1, weight_streams=None):
        self.model = model if isinstance(model, ModelWrapper) else ModelWrapper(str(model))
        self.batch_size = batch_size  # 224x224 activations: a few MB per image and layer
        self.threads = threads
        self.weight_streams = dict(weight_streams or {})
        self.input_name = self.model.graph.input[0].name
        self.output_name = self.model.graph.output[0].name
        self.steps = [self._compile(node) for node in self.model.graph.node]

    def _compile(self, node):
        op_type = generic_op_type(node)
        builder = KERNELS.get(op_type)
        if builder is None:
            raise NotImplementedError(
                f"emulator: no kernel for {node.op_type} (node {node.name}); supported: "
                f"{', '.join(sorted(KERNELS))}"
            )
        shapes = [self.model.get_tensor_shape(name) for name in node.output]
        if op_type == "StreamingDataflowPartition":
            return node, _partition(node, self.model, self.weight_streams), shapes
        if op_type == "MVAU" and _streams_weights(node):
            return node, _mvau(node, self.model, self._streamed_weights(node)), shapes
        return node, builder(node, self.model), shapes

    def _streamed_weights(self, node):
        stream = self.weight_streams.get(node.name)
        if stream is None:
            stream = external_weights.weight_stream(self.model, node)
        return external_weights.weights_from_stream(self.model, node, stream)

    def __call__(self, inputs):
        """All of `inputs`, in batches (values checked against the input datatype first)."""
        inputs = np.asarray(inputs, dtype=np.float32)
        check_input_shape(self.model, inputs)
        check_input_range(self.model, inputs)
        with threadpool_limits(self.threads):
            batches = [
                self.run_batch(inputs[start : start + self.batch_size])
                for start in range(0, len(inputs), self.batch_size)
            ]
        return np.concatenate(batches)

    def run_batch(self, inputs):
        """One batch through the graph; returns the first graph output (batch first)."""
        batch = len(inputs)
        shape = self.model.get_tensor_shape(self.input_name)
        values = {self.input_name: np.asarray(inputs, np.float32).reshape(batch, *shape[1:])}
        for node, kernel, shapes in self.steps:
            inputs = [values[name] for name in node.input if name in values]
            if generic_op_type(node) not in READS_WINDOWS:
                inputs = [_dense(x) for x in inputs]
            outputs = kernel(*inputs)
            for name, value, out_shape in zip(node.output, outputs, shapes, strict=True):
                # FINN executes with each tensor's declared shape; batch replaces dimension 0
                values[name] = (
                    value
                    if isinstance(value, Windows)
                    else np.asarray(value).reshape(batch, *out_shape[1:])
                )
        return values[self.output_name]


# ------------------------------------------------------------------ thresholds


class Thresholds:
    """y = number of thresholds <= x, per channel (last axis), times scale plus bias.

    Integer inputs use a look-up table of counts over the threshold span (one gather instead
    of one comparison per threshold; a wide span's table holds uint8 counts, to stay in
    cache) unless it would exceed LOOKUP_MAX_ENTRIES; then thresholds are compared column by
    column.
    """

    def __init__(self, thresholds, integer_input, scale=1.0, bias=0.0):
        self.thresholds = np.asarray(thresholds, dtype=np.float32)
        self.scale, self.bias = np.float32(scale), np.float32(bias)
        low, high = np.floor(self.thresholds.min()), np.ceil(self.thresholds.max())
        self.table = None
        table_size = len(self.thresholds) * (high - low + 2)
        if integer_input and table_size < LOOKUP_MAX_ENTRIES:
            self.low, self.high = int(low) - 1, int(high)
            levels = np.arange(self.low, self.high + 1, dtype=np.float32)
            counts = [np.searchsorted(np.sort(t), levels, "right") for t in self.thresholds]
            narrow = table_size > SMALL_TABLE and self.thresholds.shape[1] < 256
            count_dtype = np.uint8 if narrow else np.float32
            self.table = np.stack(counts).astype(count_dtype).ravel()
            # flat index = clipped x + channel * span - low, in float32 (exact below 2**24)
            channels, span = len(self.thresholds), len(levels)
            self.offsets = np.arange(channels, dtype=np.float32) * span - self.low

    def __call__(self, x):
        if self.table is None:
            count = np.zeros(x.shape, dtype=np.float32)
            for column in self.thresholds.T:
                count += x >= column
        else:
            index = np.clip(x, self.low, self.high)
            index += self.offsets if len(self.offsets) > 1 else self.offsets[0]
            count = self.table[index.astype(np.int32)].astype(np.float32, copy=False)
        if self.scale == 1 and self.bias == 0:
            return count
        return self.scale * count + self.bias


def _is_integer(model, tensor):
    return model.get_tensor_datatype(tensor).is_integer()


def _initializer(model, node, index):
    value = model.get_initializer(node.input[index])
    if value is None:
        raise NotImplementedError(f"emulator: {node.name} input {index} must be a constant")
    return value


def _output_thresholds(node, model, thresholds, integer_input):
    bipolar = _attr(node, "outputDataType") == "BIPOLAR"
    scale, bias = (2.0, -1.0) if bipolar else (1.0, float(_attr(node, "ActVal", 0)))
    return Thresholds(thresholds, integer_input, scale, bias)


# ------------------------------------------------------------------ HW layers


def _thresholding(node, model):
    thresholds = Thresholds(
        _initializer(model, node, 1),
        _is_integer(model, node.input[0]),
        bias=float(_attr(node, "ActVal", 0)),
    )
    if _attr(node, "outputDataType") == "BIPOLAR":  # adds ActVal first, then binary -> bipolar
        return lambda x, *_: (2 * thresholds(x) - 1,)
    return lambda x, *_: (thresholds(x),)


def exact_dtype(bound):
    """The cheapest dtype in which every integer sum up to |bound| is exact: float32 below
    2**24, float64 below 2**53 (BLAS kernels either way), else int64 (numpy, slow)."""
    if bound < FLOAT32_EXACT:
        return np.float32
    return np.float64 if bound < FLOAT64_EXACT else np.int64


def _magnitude(model, tensor):
    """Largest |value| the tensor's datatype allows; None for float datatypes."""
    dtype = model.get_tensor_datatype(tensor)
    return max(abs(dtype.min()), abs(dtype.max())) if dtype.is_integer() else None


def accumulator_dtype(model, tensor, terms, weight_magnitude=1.0):
    """Dtype for a sum of `terms` products of `tensor` values and weights up to
    `weight_magnitude`: bound = terms * max|x| * max|w| (checked per layer). A float input
    keeps float32, as execute_onnx computes it."""
    largest = _magnitude(model, tensor)
    if largest is None:
        return np.float32
    return exact_dtype(terms * largest * float(weight_magnitude))


def _exact(dtype, compute):
    """`compute` in `dtype`, result in the float32 containers FINN's execution uses."""
    if dtype == np.float32:
        return compute

    def wrapped(*arrays):
        return compute(*(a.astype(dtype) for a in arrays)).astype(np.float32)

    return wrapped


def _streams_weights(node):
    return _attr(node, "mem_mode") == external_weights.EXTERNAL


def _mvau(node, model, weights=None):
    """`weights`: the (MW, MH) matrix when it does not come from the graph (a weight stream)."""
    weights = (_initializer(model, node, 1) if weights is None else weights).astype(np.float32)
    idt, wdt = _attr(node, "inputDataType"), _attr(node, "weightDataType")
    if _attr(node, "binaryXnorMode", 0) or (idt == "BIPOLAR" and wdt == "BIPOLAR"):
        xnor = bool(_attr(node, "binaryXnorMode", 0))
        binary = weights if xnor else (weights + 1) / 2
        rows, weight_ones = binary.shape[0], binary.sum(axis=0)

        def product(x):  # xnor-popcount: positions where input and weight agree, counted as
            b = x if xnor else (x + 1) / 2  # b.w + (1-b).(1-w) = K - sum b - sum w + 2 b.w
            ones = b.sum(axis=-1, keepdims=True)
            return (rows - weight_ones) - ones + 2 * (b @ binary)
    else:
        dtype = accumulator_dtype(model, node.input[0], weights.shape[0], np.abs(weights).max())
        typed = weights.astype(dtype)

        def product(x):
            return (x.astype(dtype, copy=False) @ typed).astype(np.float32)

    if _attr(node, "noActivation", 0):
        return lambda x, *_: (product(x),)
    integer = _is_integer(model, node.input[0])
    thresholds = _output_thresholds(node, model, _initializer(model, node, 2), integer)
    return lambda x, *_: (thresholds(product(x)),)


def _vvau(node, model):
    k_h, k_w = _attr(node, "Kernel")
    channels = _attr(node, "Channels")
    producer = model.find_producer(node.input[0])
    # execute_node un-interleaves PE groups unless the SWG feeds it (then PE = channels)
    from_swg = producer is not None and producer.op_type in ("Im2Col", "ConvolutionInputGenerator")
    pe = channels if from_swg else _attr(node, "PE")
    weights = _initializer(model, node, 1).reshape(channels, k_h * k_w).T
    dtype = accumulator_dtype(model, node.input[0], k_h * k_w, np.abs(weights).max())
    weights = weights.astype(dtype)
    bipolar = (
        _attr(node, "inputDataType") == "BIPOLAR" and _attr(node, "weightDataType") == "BIPOLAR"
    )
    thresholds = None
    if not _attr(node, "noActivation", 0):
        integer = _is_integer(model, node.input[0])
        thresholds = _output_thresholds(node, model, _initializer(model, node, 2), integer)

    def windows(x):
        if isinstance(x, Windows):  # already in (kh, kw, c) order: PE = channels
            return list(x.views())
        n, h, w, _c = x.shape
        x = x.reshape(n, h, w, channels // pe, k_h * k_w, pe).transpose(0, 1, 2, 4, 3, 5)
        x = x.reshape(n, h, w, k_h * k_w, channels)
        return [x[:, :, :, k] for k in range(k_h * k_w)]

    def kernel(x, *_):
        views = windows(x)
        acc = views[0].astype(dtype, copy=False) * weights[0]
        for k in range(1, k_h * k_w):
            acc += views[k].astype(dtype, copy=False) * weights[k]
        acc = acc.astype(np.float32, copy=False)
        if bipolar:
            acc = (acc + k_h * k_w) / 2
        return (acc if thresholds is None else thresholds(acc),)

    return kernel


def _fm_padding(node, model):
    top, left, bottom, right = _attr(node, "Padding")
    return lambda x: (np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0))),)


class Windows:
    """The sliding windows of a ConvolutionInputGenerator, not yet copied out.

    Materialized they are (N, OH, OW, KH*KW*C) in FINN's order (kh, kw, c); a depthwise VVAU
    or a pool reads the KH*KW shifted views directly, without the KH*KW-fold copy.
    """

    def __init__(self, x, kernel, stride, dilation, out_dim):
        self.x, self.kernel, self.stride, self.dilation, self.out_dim = (
            x,
            kernel,
            stride,
            dilation,
            out_dim,
        )

    def views(self):
        (k_h, k_w), (s_h, s_w), (d_h, d_w), (out_h, out_w) = (
            self.kernel,
            self.stride,
            self.dilation,
            self.out_dim,
        )
        for i in range(k_h):
            for j in range(k_w):
                rows = slice(i * d_h, i * d_h + s_h * (out_h - 1) + 1, s_h)
                columns = slice(j * d_w, j * d_w + s_w * (out_w - 1) + 1, s_w)
                yield self.x[:, rows, columns]

    def dense(self):
        stacked = np.stack(list(self.views()), axis=3)
        return stacked.reshape(*stacked.shape[:3], -1)


def _dense(x):
    return x.dense() if isinstance(x, Windows) else x


def _swg(node, model):
    kernel = _attr(node, "ConvKernelDim")
    stride, dilation = _attr(node, "Stride"), _attr(node, "Dilation", [1, 1])
    out_dim = _attr(node, "OFMDim")
    return lambda x: (Windows(x, kernel, stride, dilation, out_dim),)


def _duplicate(node, model):
    return lambda x: tuple(x for _ in node.output)


def _elementwise(node, model):
    op = getCustomOp(node)
    constant = model.get_initializer(node.input[1])
    lhs_int, rhs_int = op.lhs_dtype.is_integer(), op.rhs_dtype.is_integer()

    def kernel(lhs, rhs=None):
        rhs = constant if rhs is None else rhs
        lhs = lhs.astype(np.int64) if lhs_int else lhs
        rhs = rhs.astype(np.int64) if rhs_int else rhs
        return (op.npy_op(lhs, rhs).astype(np.float32),)

    return kernel


def _global_acc_pool(node, model):
    _n, height, width, _c = model.get_tensor_shape(node.input[0])
    dtype = accumulator_dtype(model, node.input[0], height * width)
    sum_pixels = _exact(dtype, lambda x: x.sum(axis=(1, 2)))
    return lambda x: (sum_pixels(x),)


def _pool(node, model):
    function = _attr(node, "Function")
    k_h, k_w = _attr(node, "KernelSize")
    channels = _attr(node, "Channels")
    reducers = {"MaxPool": np.max, "AccPool": np.sum, "AvgPool": np.mean}
    if function not in reducers:
        raise NotImplementedError(f"emulator: Pool Function {function} (node {node.name})")

    def kernel(x):
        x = _dense(x)
        x = x.reshape(*x.shape[:-1], k_h * k_w, channels)
        return (reducers[function](x, axis=-2).astype(np.float32),)

    return kernel


def _top_k_indices(x, k):
    # onnxruntime's TopK keeps the lower index first among equal values
    return np.argsort(-x, axis=-1, kind="stable")[..., :k]


def _label_select(node, model):
    k = _attr(node, "K")
    return lambda x: (_top_k_indices(x, k).astype(np.float32),)


def _partition(node, model, weight_streams=None):
    child = Emulator(ModelWrapper(_attr(node, "model")), weight_streams=weight_streams)
    return lambda x: (child.run_batch(x),)


# ------------------------------------------------------------------ host (non-HW) nodes


def _binary_numpy(function):
    def build(node, model):
        constant = [model.get_initializer(name) for name in node.input]

        def kernel(*inputs):
            it = iter(inputs)
            a, b = (c if c is not None else next(it) for c in constant)
            return (function(np.float32(a) if np.ndim(a) == 0 else a, b).astype(np.float32),)

        return kernel

    return build


def _transpose(node, model):
    perm = _attr(node, "perm")
    return lambda x: (np.ascontiguousarray(x.transpose(perm)),)


def _reshape(node, model):
    return lambda x, *_: (x,)  # the output's declared shape is applied by the emulator


def _multithreshold(node, model):
    thresholds = Thresholds(
        _initializer(model, node, 1),
        _is_integer(model, node.input[0]),
        _attr(node, "out_scale", 1.0),
        _attr(node, "out_bias", 0.0),
    )
    channels_last = _attr(node, "data_layout", "NCHW") in ("NHWC", "NWC", "NC")

    def kernel(x, *_):
        if channels_last or x.ndim == 2:
            return (thresholds(x),)
        moved = np.moveaxis(x, 1, -1)
        return (np.moveaxis(thresholds(moved), -1, 1),)

    return kernel


def _top_k(node, model):
    k = int(_initializer(model, node, 1).item())

    def kernel(x, *_):
        indices = _top_k_indices(x, k)
        return np.take_along_axis(x, indices, axis=-1), indices.astype(np.int64)

    return kernel


READS_WINDOWS = ("VVAU", "Pool")  # kernels that take ConvolutionInputGenerator views

KERNELS = {
    "MVAU": _mvau,
    "VVAU": _vvau,
    "Thresholding": _thresholding,
    "FMPadding": _fm_padding,
    "ConvolutionInputGenerator": _swg,
    "DuplicateStreams": _duplicate,
    "ElementwiseAdd": _elementwise,
    "ElementwiseSub": _elementwise,
    "ElementwiseMul": _elementwise,
    "GlobalAccPool": _global_acc_pool,
    "Pool": _pool,
    "LabelSelect": _label_select,
    "StreamingDataflowPartition": _partition,
    "Transpose": _transpose,
    "Reshape": _reshape,
    "Flatten": _reshape,
    "Mul": _binary_numpy(np.multiply),
    "Add": _binary_numpy(np.add),
    "Sub": _binary_numpy(np.subtract),
    "Div": _binary_numpy(np.divide),
    "MultiThreshold": _multithreshold,
    "TopK": _top_k,
}
