"""What notebook 03 and the goal benchmark state about a design whose weights may stream from
DRAM (EXTERNAL_WEIGHTS): fits or not, FPS and the bound that holds, the layers that stream
and the bits they read per frame, LUT/FF/BRAM36/DSP; and QNN-MO-PYNQ's published frame rate
for tinier-yolo W1A3 beside it."""

import pandas as pd

# Xilinx/QNN-MO-PYNQ, notebooks/tiny-yolo-image.ipynb as committed in 3141334 (2018-02-21, when
# the PYNQ-Z1 was the repository's only board): the stored outputs time one 416x416 image with
# tinier-yolo W1A3, the hidden convolutions as a layer-by-layer overlay with the weights in
# DRAM, the first and last convolutions in software on the ARM. Commit b41cf6e (2018-10-22,
# PYNQ 2.3, Ultra96 support added) re-ran it: 106098 us in hardware, the board not stated.
QNN_MO_PYNQ_TINIER_YOLO = {
    "source": "https://github.com/Xilinx/QNN-MO-PYNQ/blob/3141334/notebooks/tiny-yolo-image.ipynb",
    "board": "PYNQ-Z1",
    "hidden_layers_us": 139_381,  # "HW implementation took 139381 microseconds"
    "first_layer_sw_us": 997_911,
    "last_layer_sw_us": 189_905,
    "accelerator_fps": 1e6 / 139_381,  # 7.2 FPS: the hidden layers alone
    "end_to_end_fps": 1e6 / (139_381 + 997_911 + 189_905),  # 0.75 FPS with the ARM layers
    "statement": (
        "QNN-MO-PYNQ (Xilinx, PYNQ-Z1, weights in DRAM, layer by layer): the hidden layers of "
        "tinier-yolo W1A3 at 416x416 took 139.4 ms (7.2 FPS on the accelerator; 0.75 FPS with "
        "the first and last layer on the ARM), notebooks/tiny-yolo-image.ipynb at commit 3141334"
    ),
}


def external_weights_summary(design):
    """One row: fits, FPS, the bound that holds (compute/DRAM FPS), the streamed layers with
    their Mbit per frame, the bound's cause and LUT/FF/BRAM36/DSP (% of part)."""
    perf, dram = design.performance, design.dram_summary()
    share = design.totals["% of part"]
    streamed = ", ".join(
        f"{k} ({v / 1e6:.0f} Mbit/frame)" for k, v in dram["external_layers"].items()
    )
    return pd.Series(
        {
            "fits": design.fits,
            "fps": perf["fps"],
            "bound": perf["bound"],
            "fps_compute_bound": perf["fps_compute_bound"],
            "fps_dram_bound": perf["fps_dram_bound"],
            "external_layers": streamed or "none",
            "dram_bits_per_frame": dram["dram_bits_per_frame"],
            "dram_limited_by": dram["dram_limited_by"],
            **{f"{name} %": float(share[name]) for name in share.index},
        }
    )


def external_weights_statement(design, fraction, cfg_name=None):
    """A sentence on the design as notebook 03 prints it; for tinier-yolo (`cfg_name`, e.g.
    config.DETECTOR_CFG) QNN-MO-PYNQ's published figure beside it."""
    row = external_weights_summary(design)
    verdict = "fits" if row["fits"] else "does NOT fit"
    shares = ", ".join(
        f"{name} {row[f'{name} %']:.0f} %" for name in ("LUT", "FF", "BRAM36", "DSP")
    )
    text = (
        f"The design {verdict} within {fraction:.0%} of every resource ({shares} of the part): "
        f"{row['fps']:.1f} FPS, {row['bound']}-bound (compute {row['fps_compute_bound']:.1f} "
        f"FPS, DRAM {row['fps_dram_bound']:.1f} FPS); weights from DRAM: {row['external_layers']}"
    )
    warning = design.dram_summary().get("dram_warning")
    text = f"{text}.{' ' + warning + '.' if warning else ''}"
    published = published_beside(cfg_name)
    return text if published is None else f"{text}\n{published}"


def published_beside(cfg_name):
    """QNN-MO-PYNQ's published figure for a tinier-yolo cfg (any head), else None."""
    if not str(cfg_name).startswith("tinier-yolo"):
        return None
    return f"For comparison: {QNN_MO_PYNQ_TINIER_YOLO['statement']}."
