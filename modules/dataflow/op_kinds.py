"""FINN op types of every release (finn-plus and older names) by the kind of block they are."""

import re

# op type without its _hls/_rtl/_Batch suffix -> block kind
KINDS = {
    "MatrixVectorActivation": "MVAU",
    "StreamingFCLayer": "MVAU",
    "MVAU": "MVAU",
    "VectorVectorActivation": "VVAU",
    "VVAU": "VVAU",
    "Thresholding": "Thresholding",
    "ConvolutionInputGenerator": "SWG",
    "ConvolutionInputGenerator1D": "SWG",
    "StreamingMaxPool": "MaxPool",
    "Pool": "Pool",
    "StreamingDataWidthConverter": "DWC",
    "StreamingFIFO": "FIFO",
    "FMPadding": "Padding",
    "FMPadding_Pixel": "Padding",
    "LabelSelect": "LabelSelect",
    "AddStreams": "AddStreams",
    "ElementwiseAdd": "AddStreams",
    "DuplicateStreams": "DuplicateStreams",
    "GlobalAccPool": "GlobalAccPool",
    "StreamingConcat": "Concat",
    "UpsampleNearestNeighbour": "Upsample",
    "ChannelwiseOp": "ChannelwiseOp",
    "DownSampler": "DownSampler",
    "IODMA": "IODMA",
    "TLastMarker": "TLastMarker",
}


class UnknownBlock(ValueError):
    """An op type no rule covers."""


def block_kind(op_type):
    base = re.sub(r"(_hls|_rtl)$", "", op_type)
    base = re.sub(r"_Batch$", "", base)
    if base in KINDS:
        return KINDS[base]
    raise UnknownBlock(op_type)
