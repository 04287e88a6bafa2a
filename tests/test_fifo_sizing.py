"""FIFO sizing with back-pressure, checked by the cycle-level token simulation."""

import math

import pytest
from finn_designs import PART
from qonnx.custom_op.registry import getCustomOp

from modules.hardware import fifo_sizing, resources, token_sim

# the back-pressured design's frame rate against the same design with unbounded FIFOs
RATE_TOLERANCE = 1.02


def _layer(name, cycles, src, dst, in_words, out_words, pixels):
    need = token_sim.pixel_need(in_words, out_words, pixels)
    return token_sim.Process(
        name, cycles, [src], [dst], [in_words], out_words, [need], [in_words // pixels]
    )


def test_linear_chain_with_a_fast_producer_runs_at_the_bottleneck_with_shallow_fifos():
    # a producer 10x faster than its consumer: free-running, its whole frame would queue
    chain = [
        _layer("fast", 640, "in", "a", 64, 640, 64),
        _layer("slow", 6400, "a", "b", 640, 64, 64),
        _layer("sink", 64, "b", "out", 64, 64, 64),
    ]
    result = token_sim.simulate(chain, {"a": 2, "b": 2})
    assert result.full_rate, result
    assert result.cycles_per_frame == pytest.approx(6400, rel=0.02)


def _residual(skip_depth, width=8, channels_words=1):
    """Fork -> pad -> 3x3 window -> MVAU -> add, with the fork's second stream straight to
    the add through a FIFO of `skip_depth` words."""
    pixels, padded = width * width, (width + 2) ** 2
    words = pixels * channels_words
    window_words = pixels * 9 * channels_words
    fork = token_sim.Process(
        "fork",
        words,
        ["in"],
        ["long", "skip"],
        [words],
        words,
        [token_sim.pixel_need(words, words, pixels)],
        [channels_words],
    )
    pad = token_sim.Process(
        "pad",
        padded * channels_words,
        ["long"],
        ["padded"],
        [words],
        padded * channels_words,
        [
            token_sim.padding_need(
                (width, width), (1, 1, 1, 1), channels_words, padded * channels_words
            )
        ],
        [channels_words],
    )
    # FINN's cycle model of the window: buffer fill ((K-1) rows + K pixels), then a row of
    # windows per row
    window = token_sim.Process(
        "window",
        window_words + (2 * (width + 2) + 3) * channels_words,
        ["padded"],
        ["windows"],
        [padded * channels_words],
        window_words,
        [
            token_sim.window_need(
                (width + 2,) * 2, (width,) * 2, (3, 3), (1, 1), channels_words, window_words
            )
        ],
        [channels_words],
        busy=window_words,
    )
    mvau = _layer("mvau", window_words, "windows", "conv", window_words, words, pixels)
    add = token_sim.Process(
        "add",
        words,
        ["conv", "skip"],
        ["out"],
        [words, words],
        words,
        [token_sim.pixel_need(words, words, pixels)] * 2,
        [channels_words] * 2,
    )
    depths = {"long": 2, "padded": 2, "windows": 2, "conv": 2, "skip": skip_depth}
    return [fork, pad, window, mvau, add], depths


def test_residual_deadlocks_below_the_window_lag_and_runs_at_full_rate_above():
    # the first 3x3 window on the padded map needs input pixel (1, 1): 10 pixels of the
    # 8-wide map, which the fork also pushes into the skip FIFO
    procs, depths = _residual(skip_depth=4)
    assert token_sim.simulate(procs, depths).deadlocked
    procs, depths = _residual(skip_depth=2 * 8)
    result = token_sim.simulate(procs, depths)
    assert result.full_rate, result
    unbounded = token_sim.simulate(procs, {})
    assert result.cycles_per_frame == unbounded.cycles_per_frame


@pytest.fixture(scope="module")
def streaming(mobilenet_flow):
    """Our MobileNetV2-mini (residual blocks) as FINN streams it: converters, specialized."""
    return resources.streaming_graph(mobilenet_flow["flow"].folded, PART)


def test_backpressure_depths_keep_chains_shallow_and_size_only_the_skips(streaming):
    depths = fifo_sizing.fifo_depths(streaming, "backpressure")
    words = {
        node.name: int(math.prod(getCustomOp(node).get_folded_input_shape()[:-1]))
        for node in streaming.graph.node
    }
    pausing = ("FMPadding", "ConvolutionInputGenerator")
    for (producer, consumer), depth in depths.items():
        if consumer.startswith(fifo_sizing.MERGE_OPS) and producer.startswith("Duplicate"):
            assert depth > fifo_sizing.CHAIN_DEPTH, (producer, consumer)  # the skip
        elif consumer.startswith(pausing):  # a pause's worth, far below a frame
            assert depth < words[consumer] / 2, (producer, consumer, depth)
        else:
            assert depth == fifo_sizing.CHAIN_DEPTH, (producer, consumer)
    # free-running sizing queues a frame's rate mismatch on chain edges
    finn = fifo_sizing.fifo_depths(streaming, "finn")
    chain = [d for (p, c), d in finn.items() if not c.startswith(fifo_sizing.MERGE_OPS)]
    assert max(chain) > fifo_sizing.CHAIN_DEPTH


def test_folded_residual_design_runs_at_full_rate_at_the_computed_depths(streaming):
    procs = token_sim.processes(streaming)
    unbounded = token_sim.simulate(procs, {})
    depths = fifo_sizing.fifo_depths(streaming, "backpressure")
    edges = token_sim.edge_depths(streaming, depths)
    result = token_sim.simulate(procs, edges)
    assert not result.deadlocked
    assert result.cycles_per_frame <= RATE_TOLERANCE * unbounded.cycles_per_frame
    # the lag rule is an upper bound (at half the skip depths this design still runs at full
    # rate in the simulation); an eighth of it stalls the design
    skips = {
        edge: depth // 8
        for edge, depth in edges.items()
        if streaming.find_producer(edge).op_type.startswith("DuplicateStreams")
        and any(c.op_type.startswith("ElementwiseAdd") for c in streaming.find_consumers(edge))
    }
    assert len(skips) == 5  # the five residual blocks
    shallow = token_sim.simulate(procs, {**edges, **skips})
    assert shallow.deadlocked or shallow.cycles_per_frame > 1.2 * result.cycles_per_frame
