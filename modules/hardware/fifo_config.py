"""The estimate's FIFO depths as FINN's builder reads them (`fifo_config_file`).

Without this file the builder sizes every FIFO again by its own simulation
(`auto_fifo_depths`), and the bitstream's FIFOs, with their LUT and BRAM, are not the ones
stage 03 estimated and fitted to the part. With it (and `auto_fifo_depths = False`) the builder
inserts its converters and FIFOs, names them, and applies these depths, implementation and
memory styles by name (`ApplyFIFODepthsFromFile`), so the names here are the builder's:
`resources.stitched_design` inserts and names them the same way.
"""

import json
from pathlib import Path

from qonnx.custom_op.registry import getCustomOp

from modules.hardware import resources

FIFO_OP = "StreamingFIFO_rtl"  # finn-plus builds every FIFO from fifo.sv


def builder_fifo_config(folded, part, fifo_method):
    """{fifo_depths, impl_style, ram_style: {FIFO name: value}} of the stitched design the
    estimate costs, FIFO depths by `fifo_method` (config FIFO_SIZING)."""
    stitched = resources.stitched_design(folded, part, fifo_method=fifo_method)
    config = {"fifo_depths": {}, "impl_style": {}, "ram_style": {}}
    for node in stitched.get_nodes_by_op_type(FIFO_OP):
        instance = getCustomOp(node)
        config["fifo_depths"][node.name] = int(instance.get_nodeattr("depth"))
        config["impl_style"][node.name] = instance.get_nodeattr("impl_style")
        config["ram_style"][node.name] = instance.get_nodeattr("ram_style")
    config["fifo_sizing"] = fifo_method
    return config


def save_fifo_config(folded, part, fifo_method, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(builder_fifo_config(folded, part, fifo_method), indent=2))
    return path
