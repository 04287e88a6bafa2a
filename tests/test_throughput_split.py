"""Notebook 05's accelerator vs end-to-end throughput table."""

import numpy as np
from test_accelerator import FakeDma, channel_means_positive, images, make_spec

from modules.board.accelerator import BoardAccelerator, EmulatedAccelerator
from modules.stages import pynq_inference


def test_throughput_table_separates_accelerator_and_end_to_end():
    emulated = EmulatedAccelerator(make_spec(), channel_means_positive)
    table = pynq_inference.throughput_table(emulated, images(3), 996.0, "host work")
    assert list(table.index) == [
        "estimated accelerator (03)",
        "end to end (run)",
        "accelerator call (execute_packed)",
    ]
    assert table.loc["estimated accelerator (03)", "images_per_s"] == 996.0
    assert table.loc["estimated accelerator (03)", "note"] == "host work"
    assert (table["images_per_s"] > 0).all()
    assert "emulated" in table.loc["accelerator call (execute_packed)", "note"]
    board = BoardAccelerator(make_spec(), dma=FakeDma(np.zeros((3, 2, 1), np.uint8)))
    on_board = pynq_inference.throughput_table(board, images(3), 996.0, "host work")
    assert "DMA + FPGA" in on_board.loc["accelerator call (execute_packed)", "note"]
