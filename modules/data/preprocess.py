"""Image -> model input for training, export and emulation; plus training augmentation.

What the model sees is defined once, in the board runtime (`modules/board/preprocess.py`: RGB,
square INTER_AREA resize, CHW 0..255); `preprocess` only hands that to torch as float32. Keep
training concerns out of it.
"""

import albumentations as A
import cv2
import torch

from modules.board.preprocess import load_rgb, resize_square, to_input

__all__ = ["build_augmentation", "load_rgb", "preprocess", "resize_square"]


def preprocess(rgb_uint8, img_size):
    """RGB HWC uint8 -> torch float32 CHW (3, img_size, img_size) with values 0..255."""
    return torch.from_numpy(to_input(rgb_uint8, img_size)).float()


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
