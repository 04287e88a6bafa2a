"""Image file or camera frame -> the accelerator's UINT8 input (board runtime: numpy + OpenCV).

The one definition of what the model sees: RGB, square resize with INTER_AREA (aspect ratio not
kept; INTER_AREA averages when shrinking) for the classifier, a letterbox (aspect kept, grey
padding) for the detector, CHW uint8 0..255. The model scales to 0..1 inside
itself, so the graph and the accelerator take raw pixels. `modules/data/preprocess.py` (training,
export, emulation) wraps these functions, so the repo and the board cannot drift apart.
"""

from pathlib import Path

import cv2
import numpy as np

from .detect import Letterbox

PAD_VALUE = 114  # YOLOv5's grey: the padding looks like neither smoke nor fire


def load_rgb(path):
    """Read an image file as RGB HWC uint8; raises OSError naming the file if it cannot."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read image {Path(path)} (missing, corrupt or not an image)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def resize_square(rgb_uint8, img_size):
    """Resize to img_size x img_size (aspect ratio not kept); INTER_AREA averages when shrinking."""
    if rgb_uint8.shape[:2] == (img_size, img_size):
        return rgb_uint8
    return cv2.resize(rgb_uint8, (img_size, img_size), interpolation=cv2.INTER_AREA)


def letterbox_image(rgb, size):
    """RGB HWC uint8 -> (size x size x 3 uint8, Letterbox): aspect kept, grey padding."""
    box = Letterbox.fit(*rgb.shape[:2], size)
    resized = cv2.resize(rgb, box.resized, interpolation=cv2.INTER_AREA)
    square = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    left, top = box.offset
    square[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return square, box


def to_input(rgb_uint8, img_size):
    """RGB HWC uint8 -> uint8 CHW (3, img_size, img_size): the model's input, values 0..255."""
    rgb_uint8 = np.asarray(rgb_uint8)
    if rgb_uint8.dtype != np.uint8 or rgb_uint8.ndim != 3 or rgb_uint8.shape[2] != 3:
        raise ValueError(
            f"preprocess expects an RGB HWC uint8 image, got {rgb_uint8.dtype} {rgb_uint8.shape}"
        )
    return np.ascontiguousarray(resize_square(rgb_uint8, img_size).transpose(2, 0, 1))


def image_file_input(path, img_size):
    """An image file -> uint8 CHW model input."""
    return to_input(load_rgb(path), img_size)


def camera_frame_input(bgr_frame, io_spec):
    """An OpenCV camera frame (BGR) -> (uint8 CHW input, Letterbox or None), see prepared_input."""
    return prepared_input(cv2.cvtColor(bgr_frame, cv2.COLOR_BGR2RGB), io_spec)


def prepared_input(rgb_uint8, io_spec):
    """RGB HWC uint8 -> (uint8 CHW input, Letterbox or None) for the package's accelerator:
    a detector's input is letterboxed (boxes map back through the Letterbox), a classifier's
    resized."""
    size = input_size(io_spec)
    if "detect_spec" not in io_spec:
        return to_input(rgb_uint8, size), None
    square, box = letterbox_image(np.asarray(rgb_uint8, dtype=np.uint8), size)
    return np.ascontiguousarray(square.transpose(2, 0, 1)), box


def file_input(path, io_spec):
    """An image file -> (uint8 CHW input, Letterbox or None), see prepared_input."""
    return prepared_input(load_rgb(path), io_spec)


def input_size(io_spec):
    """The square image size the accelerator takes, from its host input shape."""
    port = io_spec["input"]
    shape = port["host_shape"]
    height, width = (shape[2], shape[3]) if port["host_layout"] == "NCHW" else shape[1:3]
    if height != width:
        raise ValueError(f"io_spec input {shape} is not square; preprocessing makes squares")
    return int(height)
