"""Image -> model input, shared by training, export and the board; plus training augmentation.

`preprocess` is the one definition of what the model sees: RGB, square resize with INTER_AREA,
float32 CHW in the uint8 range 0..255 (the model scales to 0..1 inside itself, so the exported
graph takes raw pixels). Keep training concerns out of it.
"""

from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch


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


def preprocess(rgb_uint8, img_size):
    """RGB HWC uint8 -> torch float32 CHW (3, img_size, img_size) with values 0..255."""
    if rgb_uint8.dtype != np.uint8 or rgb_uint8.ndim != 3 or rgb_uint8.shape[2] != 3:
        raise ValueError(
            f"preprocess expects an RGB HWC uint8 image, got {rgb_uint8.dtype} {rgb_uint8.shape}"
        )
    resized = resize_square(rgb_uint8, img_size)
    return torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1))).float()


def build_augmentation():
    """Label-preserving training augmentation, applied to the already resized image.

    Every step keeps every object in the picture: no crops, zoom only outwards, small rotation,
    reflected borders. Colour shifts stay small so fire keeps looking like fire and grey smoke
    does not turn into something else. Only horizontal flips: smoke rises and flames point up.
    """
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(scale=(0.85, 1.0), rotate=(-5, 5), border_mode=cv2.BORDER_REFLECT_101, p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.5),
            A.HueSaturationValue(hue_shift_limit=5, sat_shift_limit=15, val_shift_limit=0, p=0.3),
            A.OneOf(
                [A.GaussianBlur(blur_limit=(3, 3)), A.GaussNoise(std_range=(0.01, 0.04))],
                p=0.3,
            ),
        ]
    )
