"""FIFO depths for a folded FINN design without Vivado.

`fifo_depths(model, method)`, with `method` the config key FIFO_SIZING:

- "backpressure" (default): in a linear chain a full FIFO stalls its producer, so a layer
  faster than the bottleneck upstream of it just waits: every chain edge keeps FINN's
  minimum depth. Depth goes where back-pressure alone would cost throughput. At a fork:
  where a DuplicateStreams feeds two branches that meet again (a residual AddStreams, a
  route/concat), the short branch must hold what the fork sends it while the long branch
  buffers its lag (a sliding window's (K-1) rows + K pixels, a pixel per layer, the long
  branch's own FIFOs), measured in fork pixels. And in front of a layer that pauses reading
  (a padder between frames, a sliding window replaying a row): a FIFO that holds what the
  layers upstream produce during a pause, where their spare cycles per frame do not cover
  the pauses. `token_sim` checks the rules (tests/test_fifo_sizing.py): the folded graph at
  these depths runs at the rate it reaches with unbounded FIFOs; the skip depths are an
  upper bound (about twice the simulated minimum on the test design).
- "finn": FINN's free-running sizing, reproduced analytically (FINN sizes by rtlsim, which
  needs Vivado/XSI):
  1. Rate mismatch (the input is pushed as fast as the upstream layers allow, the output is
     drained at once, as the builder's simulation does): on an edge producer -> consumer, the
     producer delivers its `N` words of a frame in `U` cycles, where `U` is the slowest layer
     up to and including the producer; the consumer takes `C` cycles. When `C > U` the queue
     peaks at `N * (1 - U / C)` words (the frame arrives before it can be consumed).
  2. Residual joins (AddStreams/ElementwiseAdd): the short branch must hold what the fork
     sends it while the long branch fills its pipeline: a sliding window's line buffer
     ((K-1) rows + K pixels) and each layer's time to its first output pixel.

  Depths are in stream words, at least 2 (FINN's minimum). The model ignores start-up
  latencies of a few cycles and back-pressure stalls inside a layer, so it is a lower bound on
  the largest FIFOs of a simulation-sized build and exact for the shallow ones.
"""

import math

from qonnx.custom_op.registry import getCustomOp

MIN_DEPTH = 2
# back-pressure chains keep FINN's minimum: with the FIFOs in front of pausing layers sized,
# the token simulation runs the test design at its unbounded rate (a 32-deep chain FIFO costs
# about 20 LUT more in fifo.sv's model and gains nothing there)
CHAIN_DEPTH = MIN_DEPTH
JOIN_OPS = ("AddStreams", "ElementwiseAdd")
MERGE_OPS = (*JOIN_OPS, "StreamingConcat")  # layers that read several streams in step
METHODS = ("backpressure", "finn")


def _words(instance):
    """Stream words per frame at the node's output (every dimension but the last)."""
    return int(math.prod(instance.get_folded_output_shape()[:-1]))


def _first_output_cycles(node, instance, frame_cycles):
    """Cycles until the node emits its first output pixel when the frame streams through at
    `frame_cycles` per frame (the pipeline's rate at that node): one output pixel's time,
    plus for a sliding window its line buffer, (K-1) rows + K pixels of its input."""
    shape = instance.get_normal_output_shape()
    fill = frame_cycles / (int(math.prod(shape[1:-1])) or 1)
    if node.op_type.startswith("ConvolutionInputGenerator"):
        kernel = instance.get_nodeattr("ConvKernelDim")
        ifm = instance.get_nodeattr("IFMDim")
        line_buffer = (kernel[0] - 1) * ifm[1] + kernel[1]
        fill += frame_cycles * line_buffer / max(1, ifm[0] * ifm[1])
    return fill


def _upstream_cycles(model):
    """Per node: cycles per frame of the slowest layer up to and including it."""
    upstream = {}
    for node in model.graph.node:  # FINN graphs are topologically sorted
        own = int(getCustomOp(node).get_exp_cycles())
        producers = [model.find_producer(name) for name in node.input]
        before = [upstream[p.name] for p in producers if p is not None and p.name in upstream]
        upstream[node.name] = max([own, *before])
    return upstream


def _branch_fill(model, start, upstream):
    """Fill cycles of the branch that ends in `start`, back to its fork."""
    chain, node = [], start
    while node is not None and not node.op_type.startswith("DuplicateStreams"):
        chain.append(node)
        node = model.find_producer(node.input[0])
    fill = 0.0
    for node in chain:
        fill += _first_output_cycles(node, getCustomOp(node), upstream[node.name])
    return fill


def _join_depths(model, upstream):
    """Extra words the short branch of each residual join must hold: {(producer, consumer)}."""
    extra = {}
    for join in model.graph.node:
        if not join.op_type.startswith(JOIN_OPS):
            continue
        branches = [model.find_producer(name) for name in join.input]
        if any(b is None for b in branches):
            continue
        fills = [
            0.0 if b.op_type.startswith("DuplicateStreams") else _branch_fill(model, b, upstream)
            for b in branches
        ]
        # a branch that is the fork itself has no layers: it waits for the other one
        short = int(fills[1] < fills[0])
        producer = branches[short]
        instance = getCustomOp(producer)
        cycles_per_word = upstream[producer.name] / max(1, _words(instance))
        extra[(producer.name, join.name)] = math.ceil(max(fills) / cycles_per_word)
    return extra


def fifo_depths(model, method="backpressure"):
    """{(producer name, consumer name): depth in words} for every edge between HW layers,
    sized by `method` (module doc)."""
    if method == "backpressure":
        return backpressure_depths(model)
    if method == "finn":
        return free_running_depths(model)
    raise ValueError(f"FIFO_SIZING = {method!r}; known: {', '.join(METHODS)}")


def free_running_depths(model):
    """FINN's free-running sizing (module doc, "finn")."""
    upstream = _upstream_cycles(model)
    joins = _join_depths(model, upstream)
    depths = {}
    for consumer in model.graph.node:
        own = int(getCustomOp(consumer).get_exp_cycles())
        for name in consumer.input:
            producer = model.find_producer(name)
            if producer is None:
                continue
            words = _words(getCustomOp(producer))
            up = upstream[producer.name]
            queue = words * (1 - up / own) if own > up else 0
            depth = math.ceil(queue) + joins.get((producer.name, consumer.name), 0)
            depths[(producer.name, consumer.name)] = max(MIN_DEPTH, depth)
    return depths


def apply_depths(model, depths):
    """Write the depths to the producers' outFIFODepths and consumers' inFIFODepths, where
    FINN's InsertFIFO reads them."""
    for node in model.graph.node:
        instance = getCustomOp(node)
        outs = []
        for name in node.output:
            consumers = model.find_consumers(name) or []
            sized = [depths.get((node.name, c.name), MIN_DEPTH) for c in consumers]
            outs.append(max(sized, default=MIN_DEPTH))  # graph output: FINN's minimum
        ins = []
        for name in node.input:
            producer = model.find_producer(name)
            ins.append(depths.get((producer.name, node.name), MIN_DEPTH) if producer else MIN_DEPTH)
        instance.set_nodeattr("outFIFODepths", outs)
        instance.set_nodeattr("inFIFODepths", ins)
    return model


# ------------------------------------------------------------------ back-pressure sizing


def _pixels(shape):
    return int(math.prod(shape[:-1])) or 1


def _held_pixels(node, instance):
    """Input pixels a layer holds before it emits the output pixel they belong to: its
    window ((K-1) rows + K pixels) or row (upsampling), or one pixel, plus the next input
    pixel it reads while emitting (token_sim's lookahead)."""
    if node.op_type.startswith("ConvolutionInputGenerator"):
        kernel, ifm = instance.get_nodeattr("ConvKernelDim"), instance.get_nodeattr("IFMDim")
        return (kernel[0] - 1) * ifm[1] + kernel[1] + 1
    if node.op_type.startswith("UpsampleNearestNeighbour"):
        return instance.get_nodeattr("WI") + 1
    return 2


def _branch(model, producer):
    """Layers from the fork (exclusive) to `producer` (inclusive), in stream order, and the
    fork; (None, None) when the stream does not start at a DuplicateStreams."""
    chain, node = [], producer
    while node is not None and not node.op_type.startswith("DuplicateStreams"):
        chain.append(node)
        node = model.find_producer(node.input[0])
    return list(reversed(chain)), node


def _branch_lag(model, chain, fork_pixels, depths):
    """Fork pixels a branch absorbs beyond what it has emitted: each layer's held pixels and
    each FIFO inside the branch, scaled from the layer's input pixels to the fork's."""
    lag = 0.0
    for position, node in enumerate(chain):
        instance = getCustomOp(node)
        in_pixels = _pixels(instance.get_normal_input_shape())
        scale = fork_pixels / in_pixels
        lag += _held_pixels(node, instance) * scale
        if position > 0:  # the FIFO between the previous layer and this one
            words = int(math.prod(instance.get_folded_input_shape()[:-1]))
            fifo = depths.get((chain[position - 1].name, node.name), CHAIN_DEPTH)
            lag += math.ceil(fifo / max(1, words // in_pixels)) * scale
    return lag


def _merge_depths(model, depths):
    """Depth of each merge's short-branch input: the lag difference in its words."""
    extra = {}
    for merge in model.graph.node:
        if not merge.op_type.startswith(MERGE_OPS):
            continue
        producers = [model.find_producer(name) for name in merge.input]
        if len(producers) < 2 or any(p is None for p in producers):
            continue
        branches = [_branch(model, p) for p in producers]
        forks = {fork.name for _, fork in branches if fork is not None}
        if len(forks) != 1 or any(fork is None for _, fork in branches):
            continue  # not a fork that meets again here
        fork = branches[0][1]
        fork_pixels = _pixels(getCustomOp(fork).get_normal_output_shape())
        lags = [_branch_lag(model, chain, fork_pixels, depths) for chain, _ in branches]
        for producer, lag in zip(producers, lags, strict=True):
            instance = getCustomOp(producer)
            words_per_fork_pixel = _words(instance) / fork_pixels
            words = math.ceil((max(lags) - lag) * words_per_fork_pixel)
            if words > 0:  # the merge's own read slot and the fork's write: 2 more words
                extra[(producer.name, merge.name)] = words + MIN_DEPTH
    return extra


def read_pauses(node, instance):
    """(cycles, count): the longest stretch a layer does not read its input and how often per
    frame: a padder emitting its bottom and top padding rows between frames, a sliding window
    emitting a row of windows longer than reading the next input row (FINN's cycle model)."""
    if node.op_type.startswith("FMPadding"):
        top, left, bottom, right = instance.get_nodeattr("Padding")
        width = instance.get_nodeattr("ImgDim")[1] + left + right
        words = int(math.prod(instance.get_folded_output_shape()[:-1]))
        per_pixel = words // _pixels(instance.get_normal_output_shape())
        return ((top + bottom) * width + left + right) * per_pixel, 1
    if (
        node.op_type.startswith("ConvolutionInputGenerator_rtl")
        and min(instance.get_nodeattr("IFMDim")) > 1
    ):
        kernel, ofm = instance.get_nodeattr("ConvKernelDim"), instance.get_nodeattr("OFMDim")
        fold = instance.get_nodeattr("IFMChannels") // instance.get_nodeattr("SIMD")
        write = ofm[1] * kernel[0] * kernel[1] * fold
        read = instance.get_nodeattr("Stride")[0] * instance.get_nodeattr("IFMDim")[1] * fold
        return max(0, write - read), ofm[0]
    return 0, 0


def _pause_depth(model, producer, consumer, upstream, bottleneck):
    """Words the FIFO in front of `consumer` must hold so that the layers upstream, which
    have `bottleneck - upstream` spare cycles per frame, keep their pace through its pauses."""
    instance = getCustomOp(consumer)
    pause, count = read_pauses(consumer, instance)
    slack = bottleneck - upstream[producer.name]
    if pause * count <= slack:
        return CHAIN_DEPTH
    words = int(math.prod(instance.get_folded_input_shape()[:-1]))
    return max(CHAIN_DEPTH, math.ceil(pause * words / bottleneck))


def backpressure_depths(model):
    """CHAIN_DEPTH on every edge, what a pausing consumer's upstream must queue in front of
    it, and the fork-to-merge lag on short branches (module doc)."""
    upstream = _upstream_cycles(model)
    bottleneck = max(upstream.values(), default=0)
    depths = {}
    for consumer in model.graph.node:
        for name in consumer.input:
            producer = model.find_producer(name)
            if producer is not None:
                depths[(producer.name, consumer.name)] = _pause_depth(
                    model, producer, consumer, upstream, bottleneck
                )
    for edge, extra in _merge_depths(model, depths).items():
        depths[edge] = max(depths[edge], extra)
    return depths
