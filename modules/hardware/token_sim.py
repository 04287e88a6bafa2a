"""Cycle-level token simulation of a folded FINN dataflow graph with back-pressure.

Each layer is a process that, per frame, takes `cycles` clock cycles to consume its input
words and emit its output words (FINN's cycle model, `get_exp_cycles`). Per clock cycle a
layer may take one word from each input FIFO and emit one word to its output FIFO(s), no
faster than its own output rate (words per frame / cycles per frame; inputs are read as they
come), and only:

- a word of an output whose inputs have arrived (`need`: the input words output word j
  depends on; a sliding window needs (K-1) rows + K pixels before its first window, then
  emits K*K words per input pixel: its bursts);
- into an output FIFO that has room (a full FIFO stalls the producer: back-pressure);
- an input word no further ahead of what the next output needs than `lookahead` words (the
  layer's own input buffer: one input pixel, so reading the next pixel overlaps emitting the
  current one).

A fork (DuplicateStreams) emits each word to all its outputs in the same cycle, so it stalls
while any of them is full. The graph input is fed one word per cycle, the outputs drained at
once. `simulate` runs a few frames and reports the steady-state cycles per frame, or a
deadlock when no layer moves for longer than a frame of the slowest layer.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from qonnx.custom_op.registry import getCustomOp


@dataclass
class Process:
    """One layer: per frame `cycles` cycles (FINN's cycle model), `in_words[k]` words from
    input edge k, `out_words` words to each output edge; output word j needs `need[k][j]`
    words of input k (per frame, cumulative). A sliding window's cycles include filling its
    buffer, which the simulation plays out itself: its words stream over `busy` cycles."""

    name: str
    cycles: int
    inputs: list
    outputs: list
    in_words: list
    out_words: int
    need: list
    lookahead: list = field(default_factory=list)
    busy: int | None = None  # cycles its words stream over (cycles less a window's fill)


@dataclass
class SimResult:
    cycles_per_frame: float | None  # None when deadlocked
    deadlocked: bool
    frame_done: list  # cycle at which each frame left the graph
    bottleneck_cycles: int  # the slowest layer's cycles per frame

    @property
    def full_rate(self):
        """Steady state within 2 % of the slowest layer's cycles (the frame-level start-up
        and the one-cycle FIFO latency of every edge are not rate losses)."""
        return not self.deadlocked and self.cycles_per_frame <= 1.02 * self.bottleneck_cycles


def pixel_need(in_words, out_words, pixels):
    """Need of a pixel-by-pixel layer: an output pixel's words need its whole input pixel."""
    out_per_pixel = out_words // pixels
    in_per_pixel = in_words // pixels
    return (np.arange(out_words) // out_per_pixel + 1) * in_per_pixel


def window_need(ifm, ofm, kernel, stride, in_per_pixel, out_words):
    """Need of a sliding window: output pixel (r, c) needs input pixels up to
    (r*s + K-1, c*s + K-1) in raster order."""
    out_per_pixel = out_words // (ofm[0] * ofm[1])
    pixel = np.arange(out_words) // out_per_pixel
    rows, cols = pixel // ofm[1], pixel % ofm[1]
    last_row = np.minimum(rows * stride[0] + kernel[0] - 1, ifm[0] - 1)
    last_col = np.minimum(cols * stride[1] + kernel[1] - 1, ifm[1] - 1)
    return (last_row * ifm[1] + last_col + 1) * in_per_pixel


def upsample_need(ifm, ofm, in_per_pixel, out_words):
    """Nearest-neighbour upsampling: output pixel (r, c) needs input pixel (r/f, c/f)."""
    out_per_pixel = out_words // (ofm[0] * ofm[1])
    pixel = np.arange(out_words) // out_per_pixel
    rows = pixel // ofm[1] * ifm[0] // ofm[0]
    cols = pixel % ofm[1] * ifm[1] // ofm[1]
    return (rows * ifm[1] + cols + 1) * in_per_pixel


def padding_need(ifm, pads, in_per_pixel, out_words):
    """Zero padding (top, left, bottom, right): an output pixel needs the input pixel at or
    before it in raster order (a padding pixel needs the last real one before it)."""
    ofm = (ifm[0] + pads[0] + pads[2], ifm[1] + pads[1] + pads[3])
    out_per_pixel = out_words // (ofm[0] * ofm[1])
    pixel = np.arange(out_words) // out_per_pixel
    rows, cols = pixel // ofm[1] - pads[0], pixel % ofm[1] - pads[1]
    before = np.where(cols < 0, rows * ifm[1], rows * ifm[1] + np.minimum(cols + 1, ifm[1]))
    return np.clip(before, 0, ifm[0] * ifm[1]) * in_per_pixel


# ------------------------------------------------------------------ FINN graph -> processes


def _words(shape):
    return int(math.prod(shape[:-1]))


def _pixels(shape):
    return int(math.prod(shape[:-1])) or 1


def window_fill_cycles(instance):
    """Cycles FINN's SWG cycle model counts for filling the window buffer (its
    buffer_min_size), before the steady state."""
    kernel, ifm = instance.get_nodeattr("ConvKernelDim"), instance.get_nodeattr("IFMDim")
    dilation = instance.get_nodeattr("Dilation")
    fold = instance.get_nodeattr("IFMChannels") // instance.get_nodeattr("SIMD")
    if min(ifm) == 1:
        return 0
    return ((kernel[0] - 1) * dilation[0] * ifm[1] + (kernel[1] - 1) * dilation[1] + 1) * fold


def _need(node, instance, in_words, out_words):
    op = node.op_type
    if _is_window(node):
        ifm, ofm = instance.get_nodeattr("IFMDim"), instance.get_nodeattr("OFMDim")
        kernel, stride = instance.get_nodeattr("ConvKernelDim"), instance.get_nodeattr("Stride")
        per_pixel = in_words[0] // (ifm[0] * ifm[1])
        return [window_need(ifm, ofm, kernel, stride, per_pixel, out_words)]
    if op.startswith("UpsampleNearestNeighbour"):
        ifm = (instance.get_nodeattr("HI"), instance.get_nodeattr("WI"))
        ofm = (instance.get_nodeattr("HO"), instance.get_nodeattr("WO"))
        per_pixel = in_words[0] // (ifm[0] * ifm[1])
        return [upsample_need(ifm, ofm, per_pixel, out_words)]
    if op.startswith("FMPadding"):
        ifm = instance.get_nodeattr("ImgDim")
        per_pixel = in_words[0] // (ifm[0] * ifm[1])
        return [padding_need(ifm, instance.get_nodeattr("Padding"), per_pixel, out_words)]
    pixels = _pixels(instance.get_normal_output_shape())
    if any(words % pixels for words in [*in_words, out_words]):
        pixels = 1  # a layer that reshapes (e.g. global pooling): the whole input first
    return [pixel_need(words, out_words, pixels) for words in in_words]


def processes(model):
    """A Process per node of a folded (specialized) FINN graph; edges are tensor names."""
    result = []
    for node in model.graph.node:
        instance = getCustomOp(node)
        inputs = list(node.input[: _stream_inputs(node)])
        in_words = [_words(instance.get_folded_input_shape(k)) for k in range(len(inputs))]
        out_words = _words(instance.get_folded_output_shape())
        need = _need(node, instance, in_words, out_words)
        per_pixel = [max(1, int(n[0])) for n in need]
        cycles = max(1, int(instance.get_exp_cycles()))
        fill = window_fill_cycles(instance) if _is_window(node) else 0
        result.append(
            Process(
                node.name,
                cycles,
                inputs,
                list(node.output),
                in_words,
                out_words,
                need,
                lookahead=per_pixel,
                busy=max(1, cycles - fill),
            )
        )
    return result


def _is_window(node):
    return node.op_type.startswith("ConvolutionInputGenerator")


def _stream_inputs(node):
    # weights/thresholds of internal memory modes are initializers, not streams
    if node.op_type.startswith(("AddStreams", "StreamingConcat", "ElementwiseAdd")):
        return len(node.input)
    return 1


# ------------------------------------------------------------------ simulation


class _State:
    def __init__(self, procs, depths):
        self.procs = procs
        self.fill = {}
        self.capacity = {}
        for proc in procs:
            for edge in proc.outputs:
                self.fill[edge] = 0
                self.capacity[edge] = depths.get(edge, math.inf)
        self.consumed = [[0] * len(p.inputs) for p in procs]
        self.produced = [0] * len(procs)
        # output rates as integers (words per `busy` cycles, at most one a cycle): exact credits
        self.period = [max(p.busy or p.cycles, p.out_words, *p.in_words) for p in procs]
        self.out_credit = [0] * len(procs)


def _required(proc, k, produced):
    frame, index = divmod(produced, proc.out_words)
    return frame * proc.in_words[k] + int(proc.need[k][index])


def _step(state, i, source_edges):
    """One cycle of process i; True if it moved a word."""
    proc, moved = state.procs[i], False
    produced, period = state.produced[i], state.period[i]
    # emit first (reads this cycle go to the next output)
    state.out_credit[i] = min(period, state.out_credit[i] + proc.out_words)
    ready = all(
        state.consumed[i][k] >= _required(proc, k, produced) for k in range(len(proc.inputs))
    )
    room = all(state.fill[e] < state.capacity[e] for e in proc.outputs)
    if ready and room and state.out_credit[i] >= period:
        for edge in proc.outputs:
            state.fill[edge] += 1
        state.produced[i] += 1
        state.out_credit[i] -= period
        moved = True
    for k, edge in enumerate(proc.inputs):
        limit = _required(proc, k, state.produced[i]) + proc.lookahead[k]
        available = edge in source_edges or state.fill.get(edge, 0) > 0
        if state.consumed[i][k] < limit and available:
            if edge not in source_edges:
                state.fill[edge] -= 1
            state.consumed[i][k] += 1
            moved = True
    return moved


def simulate(procs, depths, frames=3, stall_limit=None):
    """Run `frames` frames through `procs` (topologically ordered) with FIFO capacities
    `depths` (edge -> words; an edge not named is unbounded). Graph outputs are drained at
    once; the graph input is always available (fed as fast as the first layer reads)."""
    produced_edges = {e for p in procs for e in p.outputs}
    source_edges = {e for p in procs for e in p.inputs if e not in produced_edges}
    consumed_edges = {e for p in procs for e in p.inputs}
    sinks = [i for i, p in enumerate(procs) if any(e not in consumed_edges for e in p.outputs)]
    bottleneck = max(p.cycles for p in procs)
    stall_limit = stall_limit or 2 * bottleneck + 100
    state = _State(procs, depths)
    order = range(len(procs) - 1, -1, -1)  # consumers first: a pop frees room this cycle
    frame_done, cycle, idle = [], 0, 0
    while len(frame_done) < frames:
        moved = False
        for i in order:
            moved |= _step(state, i, source_edges)
        for edge in produced_edges - consumed_edges:
            state.fill[edge] = 0  # drained
        cycle += 1
        done = min(state.produced[i] // procs[i].out_words for i in sinks)
        if done > len(frame_done):
            frame_done.append(cycle)
        idle = 0 if moved else idle + 1
        if idle > stall_limit:
            return SimResult(None, True, frame_done, bottleneck)
    steady = frame_done[-1] - frame_done[-2] if frames > 1 else frame_done[-1]
    return SimResult(float(steady), False, frame_done, bottleneck)


def edge_depths(model, depths):
    """Edge (tensor name) -> depth from depths per (producer, consumer) layer edge."""
    by_edge = {}
    for node in model.graph.node:
        for name in node.input:
            producer = model.find_producer(name)
            if producer is not None and (producer.name, node.name) in depths:
                by_edge[name] = max(by_edge.get(name, 0), depths[(producer.name, node.name)])
    return by_edge
