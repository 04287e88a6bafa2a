"""DRAM traffic of weights streamed from DRAM (mem_mode "external") and the frame rate it allows.

How FINN streams them (finn-plus 1.6.1): `InsertIODMA(max_intfwidth, insert_extmemw=True)` gives
every external MVAU/VVAU an IODMA in burst mode "wrap" whose AXI-MM width is
gcd(weight bits, max_intfwidth) and whose stream width is the layer's padded weight stream
(`get_instream_width_padded(1)`); ZynqBuild passes max_intfwidth = `pynq_native_port_width`
(64 bits on the PYNQ-Z1/Z2). The DMA reads the whole weight tensor once per repetition and the
driver (finn_plus_driver overlays/dma.py, `load_external_weights`) starts it with
batch x H x W repetitions of the layer's NHWC input, i.e. once per output pixel: bits read per
frame = MW x MH x weight bits x prod(numInputVectors) for an MVAU (Channels x k x k x bits x
prod(Dim) for a VVAU). Every AXI-MM master of the design (input, output and weight DMAs)
shares one smartconnect into S_AXI_HP0 (FINN's zynq_7000 block design), clocked at the fabric
clock.

Two bounds follow, and the DRAM bound is the lower:

- shared: all bits per frame (weights plus the input and output DMAs) against
  efficiency x min(DDR peak, HP port peak);
- per DMA: one weight DMA moves at most its AXI-MM width per clock cycle.

Board figures (BOARD_DRAM in config.py):

- PYNQ-Z1: "512 MB DDR3 with 16-bit bus @ 525 MHz (1050 MT/s)" (Digilent, PYNQ-Z1 Reference
  Manual, https://digilent.com/reference/programmable-logic/pynq-z1/reference-manual);
- PYNQ-Z2: the same 512 MB DDR3 on a 16-bit bus at 1050 MT/s (TUL PYNQ-Z2 User Manual v1.1,
  https://d2m32eurp10079.cloudfront.net/Download/PYNQ_Z2_User_Manual_v1.1.pdf; the PYNQ docs
  list "512MB DDR3", https://github.com/xilinx/PYNQ/blob/master/docs/source/pynq_overlays/pynqz2.rst);
- HP port: 64 bits wide (Zynq-7000 TRM UG585 v1.11, ch. 5 "High Performance AXI"; FINN's
  `pynq_native_port_width` for both boards), at the fabric clock (CLOCK_MHZ);
- efficiency 0.75: "the DDR controller was designed to have a maximum efficiency of
  approximately 75%" (UG585 v1.11, section 22.3.2 "DDR Efficiency"); applied to the lower of
  the two peaks, since the HP port's own sustained rate is not published.
"""

import math
from dataclasses import asdict, dataclass

from qonnx.custom_op.registry import getCustomOp

from modules.dataflow.external_weights import external_weight_layers

PYNQ_PORT_WIDTH = 64  # finn.util.basic.pynq_native_port_width for Pynq-Z1 / Pynq-Z2


@dataclass(frozen=True)
class DramPort:
    """The path from the fabric to the board's DRAM."""

    board: str
    ddr_width_bits: int
    ddr_rate_mts: float  # mega-transfers per second (two per DDR clock)
    hp_port_bits: int
    efficiency: float

    def ddr_peak_bits_per_s(self):
        return self.ddr_width_bits * self.ddr_rate_mts * 1e6

    def hp_peak_bits_per_s(self, clock_mhz):
        return self.hp_port_bits * clock_mhz * 1e6

    def usable_bits_per_s(self, clock_mhz):
        """efficiency x the lower of the DDR peak and the HP port peak at `clock_mhz`."""
        peak = min(self.ddr_peak_bits_per_s(), self.hp_peak_bits_per_s(clock_mhz))
        return self.efficiency * peak

    def binding_link(self, clock_mhz):
        ddr, hp = self.ddr_peak_bits_per_s(), self.hp_peak_bits_per_s(clock_mhz)
        return "DDR" if ddr <= hp else "HP port"


def port_for_board(board, board_dram):
    """The DramPort of `board` from config.BOARD_DRAM."""
    if board not in board_dram:
        raise ValueError(
            f"config.BOARD_DRAM has no entry for BOARD = {board!r} (known: {sorted(board_dram)});"
            " add its DDR width, rate, HP port width and efficiency"
        )
    return DramPort(board=board, **board_dram[board])


def port_from_config(cfg):
    return port_for_board(cfg.BOARD, cfg.BOARD_DRAM)


# ------------------------------------------------------------------ traffic of one layer


def _weight_bits(node):
    instance = getCustomOp(node)
    wbits = instance.get_input_datatype(1).bitwidth()
    if node.op_type.startswith("VVAU"):
        channels, kernel = instance.get_nodeattr("Channels"), instance.get_nodeattr("Kernel")
        return channels * math.prod(kernel) * wbits
    return instance.get_nodeattr("MW") * instance.get_nodeattr("MH") * wbits


def repetitions(node):
    """How often the weight DMA re-reads the weights per frame: once per output pixel."""
    instance = getCustomOp(node)
    if node.op_type.startswith("VVAU"):
        return math.prod(instance.get_nodeattr("Dim"))
    return math.prod(instance.get_nodeattr("numInputVectors"))


def interface_width(weight_bits, max_width=PYNQ_PORT_WIDTH):
    """The weight IODMA's AXI-MM width as InsertIODMA picks it."""
    return math.gcd(weight_bits, max_width)


@dataclass
class LayerTraffic:
    layer: str
    weight_bits: int  # one copy of the weights
    repetitions: int  # reads per frame
    interface_bits: int  # the DMA's AXI-MM width
    stream_bits: int  # the DMA's stream width (the layer's padded weight stream)

    @property
    def bits_per_frame(self):
        return self.weight_bits * self.repetitions

    def dma_fps(self, clock_mhz):
        """Frames per second this DMA alone can feed (one AXI-MM word per cycle)."""
        return clock_mhz * 1e6 * self.interface_bits / self.bits_per_frame


def layer_traffic(node, max_width=PYNQ_PORT_WIDTH):
    weight_bits = _weight_bits(node)
    return LayerTraffic(
        layer=node.name,
        weight_bits=weight_bits,
        repetitions=repetitions(node),
        interface_bits=interface_width(weight_bits, max_width),
        stream_bits=getCustomOp(node).get_instream_width_padded(1),
    )


def io_bits_per_frame(model):
    """Bits the input and output DMAs move per frame (padded stream words, as FINN packs them)."""
    first = getCustomOp(model.find_consumer(model.graph.input[0].name))
    last = getCustomOp(model.find_producer(model.graph.output[0].name))
    words_in = math.prod(first.get_folded_input_shape()[:-1])
    words_out = math.prod(last.get_folded_output_shape()[:-1])
    return words_in * first.get_instream_width_padded() + words_out * (
        last.get_outstream_width_padded()
    )


# ------------------------------------------------------------------ the bound of a design


@dataclass
class DramBound:
    """DRAM traffic of a folded design and the frame rate it allows (port None: a design
    without external layers, whose bound is infinite)."""

    port: DramPort | None
    clock_mhz: float
    layers: list  # LayerTraffic of every external layer
    io_bits_per_frame: int

    @property
    def weight_bits_per_frame(self):
        return sum(layer.bits_per_frame for layer in self.layers)

    @property
    def bits_per_frame(self):
        return self.weight_bits_per_frame + self.io_bits_per_frame

    def shared_fps(self):
        return self.port.usable_bits_per_s(self.clock_mhz) / self.bits_per_frame

    def fps(self):
        """The lower of the shared bound and every weight DMA's own bound (inf: no traffic)."""
        if not self.layers:
            return math.inf  # the input/output DMAs are part of the compute bound as today
        return min([self.shared_fps(), *(t.dma_fps(self.clock_mhz) for t in self.layers)])

    def limiting(self):
        """What sets fps(): the shared link (DDR or HP port) or one layer's DMA width."""
        if not self.layers:
            return None
        slowest = min(self.layers, key=lambda t: t.dma_fps(self.clock_mhz))
        if slowest.dma_fps(self.clock_mhz) < self.shared_fps():
            return f"{slowest.layer}'s weight DMA ({slowest.interface_bits}-bit AXI-MM)"
        return f"{self.port.binding_link(self.clock_mhz)} bandwidth shared by all DMAs"

    def as_dict(self):
        return {
            "port": asdict(self.port) if self.port else None,
            "usable_bits_per_s": self.port.usable_bits_per_s(self.clock_mhz) if self.port else None,
            "external_layers": {t.layer: t.bits_per_frame for t in self.layers},
            "weight_bits_per_frame": self.weight_bits_per_frame,
            "io_bits_per_frame": self.io_bits_per_frame,
            "dram_bits_per_frame": self.bits_per_frame,
            "fps_dram_bound": self.fps(),
            "limited_by": self.limiting(),
        }


def dram_bound(folded, port, clock_mhz):
    """The DRAM bound of a folded, specialized design (its external layers and I/O DMAs)."""
    nodes = {node.name: node for node in folded.graph.node}
    external = external_weight_layers(folded)
    if external and port is None:
        raise ValueError(
            f"layers {external} stream their weights from DRAM: the DRAM bound needs the "
            "board's DRAM figures (config.BOARD_DRAM)"
        )
    width = port.hp_port_bits if port else PYNQ_PORT_WIDTH
    layers = [layer_traffic(nodes[name], width) for name in external]
    return DramBound(port, clock_mhz, layers, io_bits_per_frame(folded))


def below_one_fps(fps):
    """The statement for a DRAM bound under 1 FPS (None otherwise)."""
    if fps >= 1.0:
        return None
    return (
        f"the DRAM bound is {fps:.3g} FPS, below 1 FPS by a factor of {1 / fps:.1f}: the external "
        "layers read more weight bits per frame than the board's DRAM bandwidth moves in a second"
    )
