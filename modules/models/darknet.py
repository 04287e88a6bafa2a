"""Box detectors from Darknet cfgs, built with the classifier's layer kits (FP32 or Brevitas).

API (stable; the detection task and notebooks use these):

    spec = detector_spec(cfg_path)                  # DetectorSpec: anchors, classes, stride
    spec.anchors_at(img_size)                       # anchors in pixels at the training size
    model = build_detector(cfg_path, layers=None, width_mult=1.0, finn_replacements=True)
    model.spec                                      # the same DetectorSpec
    head = model(images)  # images: (N, 3, H, W) float, UINT8 values 0..255 (scaled inside)
    head.shape == (N, spec.head_channels, H // spec.stride, W // spec.stride)
    build_detector_from_config(cfg, quantized)      # the same, from config.DETECTOR_* keys

`layers` is `TorchLayers()` (FP32) or `QuantLayers(BitWidths(...))` (Brevitas QAT); parameter
names are the same in both (`layers.<i>.conv.weight`, `layers.<i>.bn.*`, i = cfg layer index),
so FP32 weights load into the quantized model by name. The output is the raw head tensor, cut
before the Detect decode: the accelerator ends at the last conv (in the quantized model an INT8
tensor times one scale); sigmoid/exp/grid decode and NMS run on the host.

What FINN cannot build is replaced when `finn_replacements` (config.DARKNET_FINN_REPLACEMENTS)
is True, for both kits alike so FP32 weights still fit: leaky ReLU -> ReLU; a size-2 stride-1
maxpool (asymmetric padding) -> MaxPool(3, 1, 1); the conv branches of a concat (route with
several layers) share one output quantizer. With False, FP32 builds the cfg as written and the
quantized kit stops with an error naming the layer, its cfg line and the replacement.
Supported sections: [net], [convolutional] (filters, size, stride, pad/padding, groups,
batch_normalize, activation linear/relu/leaky, binary -> 1-bit weights in the quantized kit),
[maxpool] (stride = size, or stride 1), [route], [upsample], and one [region]/[yolo] head last.
Through this repo's FINN flow (modules/dataflow/flow.py): conv, ReLU, maxpool, the head,
route-concat (StreamingConcat) and nearest upsample (UpsampleNearestNeighbour).
`plan_layers` lists every layer with shapes, weight counts, MACs and these FINN notes
(`firesmoke cfg-summary`). Darknet `.weights` files: modules/models/darknet_weights.py.
"""

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from modules.models.architecture import TorchLayers, make_divisible
from modules.models.darknet_cfg import (
    ACTIVATIONS,
    DetectorSpec,
    head_anchors,
    parse_cfg,
)

CFG_DIR = Path(__file__).parent / "cfgs"


def resolve_cfg(name_or_path):
    """A cfg path, or the name of a cfg shipped in modules/models/cfgs/ (with or without .cfg)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = CFG_DIR / (path.name if path.suffix == ".cfg" else f"{path.name}.cfg")
    if bundled.is_file():
        return bundled
    shipped = ", ".join(sorted(p.stem for p in CFG_DIR.glob("*.cfg")))
    raise FileNotFoundError(
        f"config.DETECTOR_CFG = {str(name_or_path)!r}: no such file, and no shipped cfg of that "
        f"name (shipped: {shipped})"
    )


@dataclass
class LayerPlan:
    """One cfg layer as the importer builds it (index = Darknet layer index)."""

    index: int
    type: str  # conv | maxpool | route | upsample
    line: int
    out_shape: tuple  # (C, H, W)
    in_channels: int = 0
    filters: int = 0
    kernel: int = 0
    stride: int = 1
    padding: int = 0
    groups: int = 1
    batch_normalize: bool = False
    activation: str = "linear"
    binary: bool = False
    role: str = "body"  # first | body | last (bit widths are chosen by it)
    sources: tuple = ()  # route: absolute layer indices
    finn_issue: str = ""  # what FINN cannot build here
    replacement: str = ""  # what is built instead (when replacements are on)

    @property
    def weights(self):
        if self.type != "conv":
            return 0
        return self.filters * self.in_channels // self.groups * self.kernel**2

    @property
    def macs(self):
        return self.weights * self.out_shape[1] * self.out_shape[2]


def _conv_plan(section, index, shape, width_mult, is_last):
    channels, height, width = shape
    filters = section.integer("filters")
    if width_mult != 1.0 and not is_last:  # the head's filters are fixed by anchors x classes
        filters = make_divisible(filters * width_mult, 4)
    kernel, stride = section.integer("size", 1), section.integer("stride", 1)
    padding = section.integer("padding", kernel // 2 if section.integer("pad", 0) else 0)
    activation = section.text("activation", "logistic")
    if activation not in ACTIVATIONS:
        raise section.error(
            f"activation={activation} is not built; the importer takes {', '.join(ACTIVATIONS)}",
            "activation",
        )
    out_h = (height + 2 * padding - kernel) // stride + 1
    out_w = (width + 2 * padding - kernel) // stride + 1
    plan = LayerPlan(
        index,
        "conv",
        section.line,
        (filters, out_h, out_w),
        in_channels=channels,
        filters=filters,
        kernel=kernel,
        stride=stride,
        padding=padding,
        groups=section.integer("groups", 1),
        batch_normalize=bool(section.integer("batch_normalize", 0)),
        activation=activation,
        binary=bool(section.integer("binary", 0)),
        role="first" if index == 0 else "last" if is_last else "body",
    )
    if activation == "leaky":
        plan.finn_issue = "leaky ReLU: FINN maps only ReLU-family activations to thresholds"
        plan.replacement = "ReLU"
    return plan


def _maxpool_plan(section, index, shape):
    channels, height, width = shape
    size = section.integer("size", 2)
    stride = section.integer("stride", size)
    plan = LayerPlan(index, "maxpool", section.line, shape, kernel=size, stride=stride)
    if stride == size:
        plan.out_shape = (channels, height // stride, width // stride)
    elif stride == 1:
        plan.padding = size - 1  # Darknet: right and bottom only, output size = input size
        if size == 2:
            plan.finn_issue = "size-2 stride-1 maxpool pads right/bottom only (asymmetric)"
            plan.replacement = "MaxPool(3, 1, 1) after the unsigned ReLU quantizer"
        elif size % 2:
            plan.padding = size // 2  # odd sizes pad symmetrically: FINN takes them as they are
    else:
        raise section.error(f"maxpool size={size} stride={stride}: only stride = size or 1")
    return plan


def _route_plan(section, index, shapes):
    sources = tuple(i if i >= 0 else index + i for i in section.integers("layers"))
    if any(not 0 <= s < index for s in sources):
        raise section.error(f"layers={section.text('layers')} refers outside 0..{index - 1}")
    heights = {shapes[s][1:] for s in sources}
    if len(heights) != 1:
        raise section.error(f"route joins layers of different sizes {sorted(heights)}")
    out = (sum(shapes[s][0] for s in sources), *shapes[sources[0]][1:])
    plan = LayerPlan(index, "route", section.line, out, sources=sources)
    if len(sources) > 1:
        plan.finn_issue = "concat of branches with different scales"
        plan.replacement = "one quantizer shared by the concatenated branches"
    return plan


def plan_layers(cfg_path, img_size=None, width_mult=1.0):
    """The layers of a cfg with shapes at `img_size` (default: [net] height/width); and the
    DetectorSpec. Raises DarknetCfgError (file:line) for anything the importer cannot build."""
    sections = parse_cfg(resolve_cfg(cfg_path))
    net, body, head = sections[0], sections[1:-1], sections[-1]
    height = img_size or net.integer("height", 416)
    width = img_size or net.integer("width", 416)
    shapes, plans = [], []
    shape = (net.integer("channels", 3), height, width)
    for index, section in enumerate(body):
        if section.type == "convolutional":
            plan = _conv_plan(section, index, shape, width_mult, index == len(body) - 1)
        elif section.type == "maxpool":
            plan = _maxpool_plan(section, index, shape)
        elif section.type == "route":
            plan = _route_plan(section, index, shapes)
        else:
            plan = _upsample_plan(section, index, shape)
        plans.append(plan)
        shape = plan.out_shape
        shapes.append(shape)
    spec = _spec(net, head, plans, (height, width))
    return plans, spec


def _upsample_plan(section, index, shape):
    scale = section.integer("stride", 2)
    out = (shape[0], shape[1] * scale, shape[2] * scale)
    return LayerPlan(index, "upsample", section.line, out, stride=scale)


def _spec(net, head, plans, size):
    last = plans[-1] if plans else None
    if last is None or last.type != "conv" or last.activation != "linear":
        raise head.error(f"[{head.type}] must follow a conv with activation=linear (the head)")
    stride = size[0] // last.out_shape[1]
    if stride * last.out_shape[1] != size[0]:
        raise head.error(f"input {size[0]} is not a multiple of the network stride")
    anchors = head_anchors(head, stride)
    classes = head.integer("classes")
    spec = DetectorSpec(head.type, anchors, classes, stride, size, net.integer("channels", 3))
    if last.filters != spec.head_channels:
        raise head.error(
            f"the last conv (line {last.line}) has {last.filters} filters; {len(anchors)} "
            f"anchors x (5 + {classes} classes) = {spec.head_channels}"
        )
    return spec


def detector_spec(cfg_path):
    """DetectorSpec of a cfg at its [net] size."""
    return plan_layers(cfg_path)[1]


# ------------------------------------------------------------------ the torch model


def _unbuildable(plan):
    """The error a FINN-bound build raises for this layer without replacements."""
    return ValueError(
        f"layer {plan.index} ({plan.type}, cfg line {plan.line}): {plan.finn_issue}; set "
        f"config.DARKNET_FINN_REPLACEMENTS = True to build {plan.replacement} instead"
    )


def _conv_block(layers, plan, replacements, shared=None):
    last = plan.role == "last"
    parts = OrderedDict()
    parts["conv"] = layers.conv(
        plan.in_channels,
        plan.filters,
        plan.kernel,
        plan.stride,
        groups=plan.groups,
        role=plan.role,
        padding=plan.padding,
        bias=not plan.batch_normalize,
        weight_bits=1 if plan.binary else None,
    )
    if plan.batch_normalize:
        parts["bn"] = nn.BatchNorm2d(plan.filters)
    if plan.activation == "relu" or (plan.activation == "leaky" and replacements):
        parts["act"] = layers.relu(shared)
    elif plan.activation == "leaky":
        parts["act"] = _kit_call(layers.leaky_relu, plan)
    elif last:
        parts["act"] = layers.head_quant()
    else:  # a linear conv inside the body: signed output quantizer
        parts["act"] = layers.linear_out_quant(shared)
    return nn.Sequential(parts)


def _kit_call(factory, plan, *args):
    # the FP32 kit builds what the cfg says; a FINN-bound kit refuses with a ValueError
    try:
        return factory(*args)
    except ValueError as error:
        raise _unbuildable(plan) from error


def _maxpool(layers, plan, replacements):
    if plan.stride == plan.kernel:
        return layers.maxpool(plan.kernel, plan.stride)
    if plan.kernel == 2 and replacements:
        return layers.maxpool(3, 1, 1)
    if plan.kernel == 2:
        return _kit_call(layers.maxpool_same_stride1, plan, plan.kernel)
    return layers.maxpool(plan.kernel, 1, plan.padding)


def _producer_conv(plans, index):
    """The conv whose output quantizer sets the scale of layer `index` (None: a concat)."""
    plan = plans[index]
    while plan.type != "conv":
        if plan.type == "route" and len(plan.sources) > 1:
            return None
        plan = plans[plan.sources[0] if plan.type == "route" else plan.index - 1]
    return plan.index


def shared_quantizers(plans):
    """conv index -> the earlier conv whose output quantizer it reuses, so that the branches of
    every concat (route with several layers) carry one scale."""
    leaders = {}
    for plan in plans:
        if plan.type != "route" or len(plan.sources) < 2:
            continue
        producers = [_producer_conv(plans, s) for s in plan.sources]
        if None in producers:
            raise ValueError(
                f"layer {plan.index} (route, cfg line {plan.line}): concat of a concat; the "
                "importer shares one quantizer across direct conv branches only"
            )
        if len({plans[p].activation != "linear" for p in producers}) > 1:
            raise ValueError(
                f"layer {plan.index} (route, cfg line {plan.line}): concat of a ReLU branch and "
                "a linear branch cannot share one quantizer (unsigned vs signed)"
            )
        for p in producers:  # union of groups, each led by its lowest conv index
            _join(leaders, p, producers[0])
    return {conv: _root(leaders, conv) for conv in leaders if _root(leaders, conv) != conv}


def _root(leaders, conv):
    while leaders.get(conv, conv) != conv:
        conv = leaders[conv]
    return conv


def _join(leaders, a, b):
    root_a, root_b = _root(leaders, a), _root(leaders, b)
    leaders[max(root_a, root_b)] = min(root_a, root_b)
    leaders.setdefault(min(root_a, root_b), min(root_a, root_b))


def _module(layers, plan, replacements, shared):
    if plan.type == "conv":
        return _conv_block(layers, plan, replacements, shared)
    if plan.type == "maxpool":
        return _maxpool(layers, plan, replacements)
    if plan.type == "upsample":
        return layers.upsample(plan.stride)
    if len(plan.sources) > 1 and not replacements:
        return _kit_call(layers.unshared_concat, plan)
    return nn.Identity()  # route: forward() gathers the sources


class DarknetDetector(nn.Module):
    """Layers of a Darknet cfg in cfg order; returns the raw head tensor (see module doc)."""

    def __init__(self, plans, spec, layers, replacements=True):
        super().__init__()
        self.spec, self.plans = spec, plans
        self.input_quant = layers.input_quant()
        self.layers = nn.ModuleList()
        leaders = shared_quantizers(plans) if replacements else {}
        for plan in plans:
            shared = self.layers[leaders[plan.index]].act if plan.index in leaders else None
            self.layers.append(_module(layers, plan, replacements, shared))
        self.routes = {p.index: p.sources for p in plans if p.type == "route"}
        self._init_weights()

    def forward(self, x):
        x = self.input_quant(x)
        outputs = []
        for index, layer in enumerate(self.layers):
            if index in self.routes:
                sources = [outputs[s] for s in self.routes[index]]
                x = sources[0] if len(sources) == 1 else torch.cat(sources, 1)
            else:
                x = layer(x)
            outputs.append(x)
        return x

    def conv_blocks(self):
        """(plan, block) of every conv, in cfg order: the order of a .weights file."""
        return [(p, self.layers[p.index]) for p in self.plans if p.type == "conv"]

    def _init_weights(self):
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


def build_detector(cfg_path, layers=None, width_mult=1.0, finn_replacements=True):
    """The detector of a Darknet cfg (path or shipped name) with a layer kit (module doc)."""
    plans, spec = plan_layers(cfg_path, width_mult=width_mult)
    return DarknetDetector(plans, spec, layers or TorchLayers(), finn_replacements)


def build_detector_from_config(cfg, quantized=False):
    """config.DETECTOR_CFG / DETECTOR_WIDTH_MULT / DARKNET_FINN_REPLACEMENTS, the bit widths
    of config when `quantized`, and config.DARKNET_WEIGHTS_FILE loaded when set."""
    from modules.models.darknet_weights import load_darknet_weights
    from modules.models.quant_layers import BitWidths, QuantLayers

    layers = QuantLayers(BitWidths.from_config(cfg)) if quantized else TorchLayers()
    model = build_detector(
        cfg.DETECTOR_CFG, layers, cfg.DETECTOR_WIDTH_MULT, cfg.DARKNET_FINN_REPLACEMENTS
    )
    if cfg.DARKNET_WEIGHTS_FILE:
        load_darknet_weights(model, cfg.DARKNET_WEIGHTS_FILE)
    return model
