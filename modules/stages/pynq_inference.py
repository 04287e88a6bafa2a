"""Notebook 05's steps shared by both tasks: the accelerator's throughput against notebook 03's
estimate, and the host's time per step; each task's own results come from
`task.accelerator_results`."""

import time

import pandas as pd

from modules.board.accelerator import measure_throughput, pack_tensor, to_accelerator_layout


def throughput_table(accelerator, images, estimated_fps, excludes):
    """Accelerator vs end-to-end throughput, each where it can be measured.

    Rows: notebook 03's estimate (the accelerator alone, at the clock); `run` end to end
    (layout, packing, transfer, unpacking); `execute_packed` (on a board: DMA and the
    accelerator without the host's packing; emulated: the CPU emulation, not the FPGA)."""
    end_to_end = measure_throughput(accelerator, images)
    packed = pack_tensor(
        to_accelerator_layout(images, accelerator.io_spec), accelerator.io_spec["input"]
    )
    start = time.perf_counter()
    accelerator.execute_packed(packed)
    packed_s = time.perf_counter() - start
    device = "emulated on the CPU" if accelerator.is_emulated else "DMA + FPGA"
    rows = [
        {"measure": "estimated accelerator (03)", "images_per_s": estimated_fps, "note": excludes},
        {
            "measure": "end to end (run)",
            "images_per_s": end_to_end["images_per_s"],
            "note": end_to_end["label"],
        },
        {
            "measure": "accelerator call (execute_packed)",
            "images_per_s": len(images) / packed_s,
            "note": f"{device}, without host packing",
        },
    ]
    return pd.DataFrame(rows).set_index("measure")


def host_times_table(times):
    """Per-frame host times (seconds per step, from board.inference.process_files) -> ms per
    step: mean, median and 90th percentile, with the total per frame."""
    steps = pd.DataFrame(times) * 1000.0
    steps["total"] = steps.sum(axis=1)
    table = pd.DataFrame({"mean_ms": steps.mean(), "median_ms": steps.median(),
                          "p90_ms": steps.quantile(0.9)})  # fmt: skip
    table.index.name = "step"
    return table
