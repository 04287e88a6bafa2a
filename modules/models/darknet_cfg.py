"""Darknet .cfg files: parsing with line numbers, per-section key checks, the detection head.

A cfg is a list of `[section]` headers, each followed by `key=value` lines; `#` and `;` start
comments. `parse_cfg` keeps the line number of every section and key so that every error names
the file and the line. `head_spec` reads the `[region]` (YOLOv2, anchors in grid cells) or
`[yolo]` (YOLOv3, anchors in input pixels, `mask` selects this head's anchors) section.
"""

from dataclasses import dataclass, field
from pathlib import Path

# [net] carries training hyperparameters we do not use; every key is accepted there.
KNOWN_KEYS = {
    "convolutional": {
        "filters",
        "size",
        "stride",
        "pad",
        "padding",
        "groups",
        "batch_normalize",
        "activation",
        "binary",
    },
    "maxpool": {"size", "stride", "padding"},
    "route": {"layers"},
    "upsample": {"stride"},
    "region": {
        "anchors",
        "bias_match",
        "classes",
        "coords",
        "num",
        "softmax",
        "jitter",
        "rescore",
        "object_scale",
        "noobject_scale",
        "class_scale",
        "coord_scale",
        "absolute",
        "thresh",
        "random",
    },
    "yolo": {
        "mask",
        "anchors",
        "classes",
        "num",
        "jitter",
        "ignore_thresh",
        "truth_thresh",
        "random",
        "scale_x_y",
        "iou_thresh",
        "cls_normalizer",
        "iou_normalizer",
        "iou_loss",
        "nms_kind",
        "beta_nms",
        "max_delta",
        "resize",
        "new_coords",
    },
}
HEAD_TYPES = ("region", "yolo")
ACTIVATIONS = ("linear", "relu", "leaky")


class DarknetCfgError(ValueError):
    """A cfg the importer cannot build; the message names the file and the line."""


@dataclass
class Section:
    type: str
    line: int  # 1-based line of the [header]
    path: str
    options: dict = field(default_factory=dict)  # key -> raw string value
    key_lines: dict = field(default_factory=dict)  # key -> 1-based line

    def where(self, key=None):
        line = self.key_lines.get(key, self.line) if key else self.line
        return f"{self.path}:{line} [{self.type}]"

    def error(self, message, key=None):
        return DarknetCfgError(f"{self.where(key)}: {message}")

    def has(self, key):
        return key in self.options

    def integer(self, key, default=None):
        return self._typed(key, default, int, "an integer")

    def number(self, key, default=None):
        return self._typed(key, default, float, "a number")

    def text(self, key, default=None):
        return self.options.get(key, default)

    def integers(self, key):
        return self._list(key, int, "integers")

    def numbers(self, key):
        return self._list(key, float, "numbers")

    def _typed(self, key, default, kind, what):
        if key not in self.options:
            if default is None:
                raise self.error(f"missing key {key!r}")
            return default
        try:
            return kind(self.options[key])
        except ValueError:
            raise self.error(f"{key}={self.options[key]!r} is not {what}", key) from None

    def _list(self, key, kind, what):
        if key not in self.options:
            raise self.error(f"missing key {key!r}")
        raw = [v.strip() for v in self.options[key].split(",") if v.strip()]
        try:
            return [kind(v) for v in raw]
        except ValueError:
            raise self.error(f"{key}={self.options[key]!r} is not a list of {what}", key) from None


def parse_cfg(path):
    """Sections of a Darknet cfg, in order; the first must be [net] (or [network])."""
    path = Path(path)
    if not path.is_file():
        raise DarknetCfgError(f"{path}: Darknet cfg file not found (config.DETECTOR_CFG)")
    sections = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise DarknetCfgError(f"{path}:{number}: section header {line!r} lacks ']'")
            name = line[1:-1].strip().lower()
            sections.append(Section("net" if name == "network" else name, number, str(path)))
            continue
        key, sep, value = line.partition("=")
        if not sep or not sections:
            raise DarknetCfgError(f"{path}:{number}: expected key=value inside a section: {raw!r}")
        sections[-1].options[key.strip()] = value.strip()
        sections[-1].key_lines[key.strip()] = number
    _check_sections(path, sections)
    return sections


def _check_sections(path, sections):
    if not sections or sections[0].type != "net":
        raise DarknetCfgError(f"{path}: the first section must be [net]")
    for section in sections[1:]:
        if section.type not in KNOWN_KEYS:
            raise section.error(
                f"unknown section [{section.type}]; the importer builds "
                f"{', '.join(f'[{t}]' for t in KNOWN_KEYS)}"
            )
        for key in section.options:
            if key not in KNOWN_KEYS[section.type]:
                raise section.error(
                    f"unknown key {key!r}; [{section.type}] takes "
                    f"{', '.join(sorted(KNOWN_KEYS[section.type]))}",
                    key,
                )
    heads = [s for s in sections if s.type in HEAD_TYPES]
    if len(heads) != 1:
        raise DarknetCfgError(
            f"{path}: {len(heads)} [region]/[yolo] heads; the importer builds exactly one "
            "detection head (one output tensor: the accelerator's last conv)"
        )
    if heads[0] is not sections[-1]:
        raise heads[0].error("the [region]/[yolo] head must be the last section")


@dataclass(frozen=True)
class DetectorSpec:
    """What the host needs to decode the head tensor (N, A*(5+C), H/stride, W/stride).

    Channel layout is anchor-major: channel a*(5+C)+k holds, for anchor a, k = 0..3 the box
    (tx, ty, tw, th), k = 4 the objectness logit, k = 5.. the class logits. `anchors` are
    (w, h) in input pixels at `input_size` (a [region] cfg's grid-cell anchors are converted).
    """

    kind: str  # "region" (YOLOv2) or "yolo" (YOLOv3)
    anchors: tuple  # ((w, h), ...) in input pixels at input_size
    classes: int
    stride: int
    input_size: tuple  # (height, width) from [net]
    channels: int = 3

    @property
    def num_anchors(self):
        return len(self.anchors)

    @property
    def values_per_anchor(self):
        return 5 + self.classes

    @property
    def head_channels(self):
        return self.num_anchors * self.values_per_anchor

    def anchors_at(self, img_size):
        """Anchors (w, h) in pixels for a square input of `img_size` (scaled from input_size)."""
        height, width = self.input_size
        return tuple((w * img_size / width, h * img_size / height) for w, h in self.anchors)

    def grid(self, img_size=None):
        height, width = (img_size, img_size) if img_size else self.input_size
        return height // self.stride, width // self.stride

    def as_dict(self):
        return {
            "kind": self.kind,
            "anchors": [list(a) for a in self.anchors],
            "classes": self.classes,
            "stride": self.stride,
            "input_size": list(self.input_size),
            "num_anchors": self.num_anchors,
            "head_channels": self.head_channels,
            "layout": "anchor-major: a*(5+C) + [tx, ty, tw, th, obj, cls...]",
        }


def head_anchors(head, stride):
    """(w, h) pairs in input pixels; [region] anchors are in grid cells (times the stride)."""
    values = head.numbers("anchors")
    if len(values) % 2:
        raise head.error(f"anchors has {len(values)} numbers; expected (w, h) pairs", "anchors")
    pairs = list(zip(values[::2], values[1::2], strict=True))
    if head.type == "region":
        pairs = [(w * stride, h * stride) for w, h in pairs]
    else:
        mask = head.integers("mask") if head.has("mask") else list(range(len(pairs)))
        if any(not 0 <= m < len(pairs) for m in mask):
            raise head.error(f"mask {mask} indexes outside the {len(pairs)} anchors", "mask")
        pairs = [pairs[m] for m in mask]
    return tuple((float(w), float(h)) for w, h in pairs)
