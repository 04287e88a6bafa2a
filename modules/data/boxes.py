"""Images with boxes for the detector: letterbox to IMG_SIZE, box-aware augmentation, collate.

Boxes travel as YOLO rows (class index in CLASSES, cx, cy, w, h) normalised to the image they
belong to. The letterbox geometry is `modules.board.detect.Letterbox`, the one the host uses to
map detections back, so training and deployment cannot disagree about it. Pixels stay UINT8
0..255 (as float32) to the model, which scales inside itself.
"""

from dataclasses import dataclass

import albumentations as A
import cv2
import numpy as np
import torch

from modules.board.preprocess import PAD_VALUE, letterbox_image
from modules.data.preprocess import load_rgb

# augmented boxes that keep less than this share of their area are dropped (cut off by the edge)
MIN_VISIBILITY = 0.3


def yolo_to_xyxy(rows, width, height):
    """(N, 4) cx, cy, w, h normalised -> (N, 4) x0, y0, x1, y1 pixels."""
    rows = np.asarray(rows, dtype=np.float32).reshape(-1, 4)
    cx, cy, w, h = (rows[:, k] for k in range(4))
    return np.stack([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
                     (cy + h / 2) * height], axis=1)  # fmt: skip


def xyxy_to_yolo(xyxy, width, height):
    xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    x0, y0, x1, y1 = (xyxy[:, k] for k in range(4))
    return np.stack([(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width,
                     (y1 - y0) / height], axis=1)  # fmt: skip


def letterbox_boxes(boxes, letterbox, size):
    """YOLO rows (N, 5) normalised to the original image -> normalised to the square.

    A box whose extent crosses the border (centre and size each in 0..1, as the label checks
    require) is clipped to the image, as YOLOv5 does; one left without area is dropped.
    """
    xyxy = yolo_to_xyxy(boxes[:, 1:], letterbox.width, letterbox.height)
    xyxy = np.clip(xyxy, 0, [letterbox.width, letterbox.height] * 2)
    keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    boxes, xyxy = boxes[keep], xyxy[keep]
    square = xyxy_to_yolo(letterbox.to_square(xyxy), size, size)
    return np.concatenate([boxes[:, :1], square], axis=1).astype(np.float32)


@dataclass(frozen=True)
class BoxAugmentation:
    """YOLOv5-style geometric and colour jitter (values in config's detection section)."""

    flip: float = 0.5
    scale: float = 0.25  # zoom in 1 +- scale
    translate: float = 0.1  # shift by up to this share of the image
    hue: int = 5  # albumentations HueSaturationValue limits (OpenCV units)
    saturation: int = 30
    value: int = 25

    @classmethod
    def from_config(cls, cfg):
        return cls(cfg.DET_AUG_FLIP, cfg.DET_AUG_SCALE, cfg.DET_AUG_TRANSLATE,
                   *cfg.DET_AUG_HSV)  # fmt: skip

    def build(self):
        return A.Compose(
            [
                A.HorizontalFlip(p=self.flip),
                A.Affine(
                    scale=(1 - self.scale, 1 + self.scale),
                    translate_percent=(-self.translate, self.translate),
                    border_mode=cv2.BORDER_CONSTANT,
                    fill=PAD_VALUE,
                    keep_ratio=True,  # zoom, not stretch: boxes keep their aspect
                    p=1.0,
                ),
                A.HueSaturationValue(self.hue, self.saturation, self.value, p=0.5),
            ],
            bbox_params=A.BboxParams(
                format="yolo",
                label_fields=["classes"],
                min_visibility=MIN_VISIBILITY,
                clip=True,
                filter_invalid_bboxes=True,
            ),
        )


def check_boxes(boxes, where):
    """Boxes must be YOLO rows inside the unit square with positive size; raises naming `where`."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 5)
    xyxy = yolo_to_xyxy(boxes[:, 1:], 1.0, 1.0)
    inside = (xyxy >= -1e-4).all() and (xyxy <= 1 + 1e-4).all()
    if not inside or (boxes[:, 3:] <= 0).any():
        raise ValueError(f"{where}: boxes outside the image or without area:\n{boxes}")
    return boxes


class DetectionDataset(torch.utils.data.Dataset):
    """Samples (with .boxes) -> (image float32 CHW 0..255 letterboxed, boxes float32 (N, 5)).

    Augmentation is seeded from (seed, epoch, index) as in FireSmokeDataset, so a resumed run
    sees the same images; call `set_epoch` before each epoch.
    """

    def __init__(self, samples, img_size, augmentation=None, seed=0):
        self.samples, self.img_size, self.seed, self.epoch = list(samples), img_size, seed, 0
        self.augmentation = augmentation.build() if augmentation is not None else None

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.samples)

    def load(self, index):
        """Letterboxed uint8 image, its boxes normalised to the square, and the Letterbox."""
        sample = self.samples[index]
        square, box = letterbox_image(load_rgb(sample.image_path), self.img_size)
        return square, letterbox_boxes(sample.boxes, box, self.img_size), box

    def __getitem__(self, index):
        square, boxes, _ = self.load(index)
        if self.augmentation is not None:
            seed = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0]
            self.augmentation.set_random_seed(int(seed))
            out = self.augmentation(image=square, bboxes=boxes[:, 1:], classes=boxes[:, 0])
            square = out["image"]
            rows = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)
            boxes = np.concatenate([np.asarray(out["classes"], np.float32)[:, None], rows], 1)
        boxes = check_boxes(boxes, str(self.samples[index].image_path))
        image = torch.from_numpy(np.ascontiguousarray(square.transpose(2, 0, 1))).float()
        return image, torch.from_numpy(boxes)


def collate_boxes(batch):
    """[(image, boxes (n_i, 5))] -> images (B, 3, S, S), targets (sum n_i, 6) rows of
    (image index in batch, class, cx, cy, w, h): YOLOv5's layout for variable box counts."""
    images = torch.stack([image for image, _ in batch])
    targets = [
        torch.cat([torch.full((len(boxes), 1), float(i)), boxes], dim=1)
        for i, (_, boxes) in enumerate(batch)
    ]
    return images, torch.cat(targets) if targets else torch.zeros((0, 6))
