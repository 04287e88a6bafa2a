"""The cocotb test that streams frames through a simulated chain of RTL layers
(modules/synthesis/simulate.py builds the chain and runs this module inside Verilator).

It reads its stimulus from the JSON file named by $FIRESMOKE_SIM_SPEC (input words as hex,
the number of output words to wait for, a cycle limit), keeps the chain's input stream
valid whenever words are left and its output always ready (a free-running source and sink,
as in FINN's throughput test), and writes every output word with the clock cycle of its
handshake to $FIRESMOKE_SIM_RESULT.
"""

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

CLOCK_NS = 10
RESET_CYCLES = 16


async def _reset(dut):
    dut.ap_rst_n.value = 0
    dut.in0_V_TVALID.value = 0
    dut.in0_V_TDATA.value = 0
    dut.out0_V_TREADY.value = 0
    for _ in range(RESET_CYCLES):
        await RisingEdge(dut.ap_clk)
    dut.ap_rst_n.value = 1


@cocotb.test()
async def stream_frames(dut):
    spec = json.loads(Path(os.environ["FIRESMOKE_SIM_SPEC"]).read_text())
    words = [int(word, 16) for word in spec["inputs"]]
    wanted, limit = spec["output_words"], spec["max_cycles"]
    cocotb.start_soon(Clock(dut.ap_clk, CLOCK_NS, unit="ns").start())
    await _reset(dut)
    sent, outputs, cycles, cycle = 0, [], [], 0
    while len(outputs) < wanted and cycle < limit:
        await RisingEdge(dut.ap_clk)
        # drive this cycle's values just after the edge; sample them settled before the next
        dut.out0_V_TREADY.value = 1
        if sent < len(words):
            dut.in0_V_TVALID.value = 1
            dut.in0_V_TDATA.value = words[sent]
        else:
            dut.in0_V_TVALID.value = 0
        await ReadOnly()
        if sent < len(words) and dut.in0_V_TREADY.value:
            sent += 1
        if dut.out0_V_TVALID.value:
            outputs.append(hex(int(dut.out0_V_TDATA.value)))
            cycles.append(cycle)
        cycle += 1
    result = {"outputs": outputs, "cycles": cycles, "inputs_taken": sent, "ran": cycle}
    Path(os.environ["FIRESMOKE_SIM_RESULT"]).write_text(json.dumps(result))
