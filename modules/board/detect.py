"""Host side of the detector (numpy only: runs on the board, which has no torch).

The accelerator ends at the last conv: it maps UINT8 pixels to the quantized head tensor
(N, anchors * (5 + classes), H/32, W/32). Here the host dequantizes it with the scale read from
the exported graph, decodes it YOLOv5-style (the same parametrisation the training loss uses),
keeps boxes above a confidence, runs class-wise greedy NMS and maps the boxes from the
letterboxed model input back to the original image. Notebooks 03 and 05 and the board package
all call `detect`; nothing else decodes.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Detections are rows of (x0, y0, x1, y1, score, class index), in pixels.
DET_COLUMNS = 6


@dataclass(frozen=True)
class Letterbox:
    """How an image of (height, width) was scaled and padded into a size x size square."""

    scale: float
    pad_x: float  # left padding, pixels of the square
    pad_y: float  # top padding
    height: int  # original image size
    width: int

    @classmethod
    def fit(cls, height, width, size):
        """Scale so the longer side is `size`, centre the image, pad the rest."""
        if height < 1 or width < 1:
            raise ValueError(f"letterbox: image size must be positive, got {height}x{width}")
        scale = size / max(height, width)
        new_w, new_h = round(width * scale), round(height * scale)
        return cls(scale, (size - new_w) / 2, (size - new_h) / 2, int(height), int(width))

    @property
    def resized(self):
        """(width, height) of the image inside the square."""
        return round(self.width * self.scale), round(self.height * self.scale)

    @property
    def offset(self):
        """Integer (left, top) where the resized image sits in the square."""
        return int(round(self.pad_x - 0.1)), int(round(self.pad_y - 0.1))

    @property
    def axis_scales(self):
        """Exact (x, y) scales after rounding the resized size to whole pixels."""
        new_w, new_h = self.resized
        return new_w / self.width, new_h / self.height

    def to_square(self, xyxy):
        """Boxes (N, 4) in original image pixels -> pixels of the letterboxed square."""
        (left, top), (sx, sy) = self.offset, self.axis_scales
        out = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4).copy()
        out[:, [0, 2]] = out[:, [0, 2]] * sx + left
        out[:, [1, 3]] = out[:, [1, 3]] * sy + top
        return out

    def to_original(self, xyxy):
        """Boxes (N, 4) in square pixels -> original image pixels, clipped to the image."""
        (left, top), (sx, sy) = self.offset, self.axis_scales
        out = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4).copy()
        out[:, [0, 2]] = np.clip((out[:, [0, 2]] - left) / sx, 0, self.width)
        out[:, [1, 3]] = np.clip((out[:, [1, 3]] - top) / sy, 0, self.height)
        return out


def dequantize(raw, scale, zero_point=0.0):
    """Integer head values -> real values: (raw - zero_point) * scale (scale from the graph)."""
    return (np.asarray(raw, dtype=np.float32) - np.float32(zero_point)) * np.float32(scale)


def sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # tanh form: no overflow warnings for large |x|


def decode_head(head, anchors, img_size):
    """Head (N, A*(5+C), H, W) -> (N, A*H*W, 5+C): x0, y0, x1, y1 (pixels), objectness, class
    probabilities. anchors: (A, 2) width, height in pixels at img_size.

    YOLOv5: xy = (2 sigmoid - 0.5 + cell) * stride, wh = (2 sigmoid)^2 * anchor.
    """
    head, anchors = np.asarray(head, dtype=np.float32), np.asarray(anchors, dtype=np.float32)
    n, channels, ny, nx = head.shape
    na = len(anchors)
    if channels % na or channels // na < 6:
        raise ValueError(f"head has {channels} channels, not {na} anchors x (5 + classes)")
    no = channels // na
    p = sigmoid(head.reshape(n, na, no, ny, nx).transpose(0, 1, 3, 4, 2))  # N, A, H, W, no
    stride = np.float32(img_size / ny), np.float32(img_size / nx)
    gy, gx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    cx = (p[..., 0] * 2 - 0.5 + gx) * stride[1]
    cy = (p[..., 1] * 2 - 0.5 + gy) * stride[0]
    w = (p[..., 2] * 2) ** 2 * anchors[:, 0].reshape(1, na, 1, 1)
    h = (p[..., 3] * 2) ** 2 * anchors[:, 1].reshape(1, na, 1, 1)
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)
    return np.concatenate([xyxy, p[..., 4:]], axis=-1).reshape(n, na * ny * nx, no)


def box_iou(a, b):
    """IoU of every box in a (N, 4) with every box in b (M, 4), xyxy -> (N, M)."""
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def nms(boxes, scores, iou_threshold):
    """Greedy NMS: indices of the kept boxes, highest score first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        best, order = order[0], order[1:]
        keep.append(best)
        if order.size:
            order = order[box_iou(boxes[best : best + 1], boxes[order])[0] <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def select(decoded, conf_threshold, iou_threshold, max_det):
    """One image's decoded rows (K, 5+C) -> detections (D, 6), class-wise NMS, best first.

    Multi-label: a box is a candidate for every class whose objectness x class probability
    reaches conf_threshold (smoke and fire may share a box).
    """
    scores = decoded[:, 4:5] * decoded[:, 5:]
    rows, classes = np.nonzero(scores >= conf_threshold)
    if rows.size == 0:
        return np.zeros((0, DET_COLUMNS), dtype=np.float32)
    boxes, conf = decoded[rows, :4], scores[rows, classes]
    # offset each class far apart so one NMS pass never lets classes suppress each other
    shifted = boxes + classes[:, None].astype(np.float32) * (np.abs(boxes).max() + 1) * 2
    keep = nms(shifted, conf, iou_threshold)[:max_det]
    out = np.concatenate([boxes[keep], conf[keep, None], classes[keep, None]], axis=1)
    return out.astype(np.float32)


@dataclass(frozen=True)
class DetectSettings:
    anchors: tuple  # ((w, h), ...) pixels at img_size
    img_size: int
    conf_threshold: float
    iou_threshold: float
    max_det: int = 100


def detect(head, settings, letterboxes=None):
    """Float head (N, A*(5+C), H, W) -> list of N detection arrays (D, 6).

    With `letterboxes` (one per image) the boxes are in original image pixels, else in model
    input pixels.
    """
    decoded = decode_head(head, settings.anchors, settings.img_size)
    results = []
    for index, rows in enumerate(decoded):
        dets = select(rows, settings.conf_threshold, settings.iou_threshold, settings.max_det)
        if letterboxes is not None:
            dets[:, :4] = letterboxes[index].to_original(dets[:, :4])
        results.append(dets)
    return results


def settings_from_spec(spec):
    """The DetectSettings of a detect_spec dict."""
    return DetectSettings(
        tuple(tuple(anchor) for anchor in spec["anchors"]),
        spec["img_size"],
        spec["conf_threshold"],
        spec["iou_threshold"],
        spec["max_det"],
    )


def load_detect_spec(path):
    """detect_spec.json of the deployment package -> (DetectSettings, head quantization dict,
    class names)."""
    spec = json.loads(Path(path).read_text())
    return settings_from_spec(spec), spec["head"], spec["classes"]


def presence(detections, classes):
    """Per image, whether a box of each class was detected: bool (N, classes), the detector's
    image-level decision (e.g. "fire in view")."""
    out = np.zeros((len(detections), classes), dtype=bool)
    for row, dets in enumerate(detections):
        out[row, np.asarray(dets[:, 5], dtype=np.int64)] = True
    return out


def detect_raw(raw, spec_path, letterboxes=None):
    """The accelerator's integer head (N, A*(5+C), H, W) -> detections per image, using only the
    deployment package's detect_spec.json (what the board runs)."""
    settings, head, _ = load_detect_spec(spec_path)
    return detect(dequantize(raw, head["scale"], head["zero_point"]), settings, letterboxes)
