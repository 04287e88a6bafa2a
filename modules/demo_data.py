"""A synthetic dataset in D-Fire's format, so the whole pipeline runs without downloads.

Scenes: sky + terrain with texture and varied palettes (warm sunsets, grey overcast, dusk),
flame-like fires (bright, warm, irregular, often small), translucent smoke plumes rising from a
source (some faint), and distractors that share colour with the classes but not their shape:
orange/red objects, autumn trees, the sun, street lights, grey fog and low clouds. Colour alone
therefore does not give the answer. Every image comes from its own seed (seed, split, index),
so a dataset is identical byte for byte whenever it is regenerated with the same parameters.
"""

import json
import shutil
import zlib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from modules.yolo_labels import read_yolo_label

GENERATOR_VERSION = 1  # bump when scenes change, so existing demo folders are regenerated
MARKER = "demo_complete.json"  # written last: its absence means an unfinished generation
FILE_PREFIX = "demo_"  # only files with this prefix are ever deleted
DFIRE_CONVENTION = {0: "smoke", 1: "fire"}  # used when no mapping is passed (D-Fire's ids)
# D-Fire's class shares: 9,838 none, 5,867 smoke only, 1,164 fire only, 4,658 both
DFIRE_MIX = {"none": 0.457, "smoke": 0.273, "fire": 0.054, "both": 0.216}


@dataclass(frozen=True)
class SceneStyle:
    """Difficulty knobs. The marker records them: changing one regenerates the demo data."""

    class_mix: dict = field(default_factory=lambda: dict(DFIRE_MIX))
    smoke_opacity: tuple = (0.35, 0.85)  # peak opacity of an ordinary plume
    faint_smoke_share: float = 0.25  # share of plumes drawn with faint_smoke_opacity
    faint_smoke_opacity: tuple = (0.18, 0.32)
    fire_size: tuple = (0.035, 0.25)  # flame width / image side, log-uniform (small ones common)
    distractors_per_image: float = 1.5  # Poisson mean
    sensor_noise: float = 5.0  # largest std of added pixel noise, in 0..255 units


# ------------------------------------------------------------------------------- noise fields
@lru_cache(maxsize=8)
def grid(height, width):
    """Normalised pixel-centre coordinates (y, x) in 0..1."""
    y = (np.arange(height, dtype=np.float32) + 0.5) / height
    x = (np.arange(width, dtype=np.float32) + 0.5) / width
    return np.meshgrid(y, x, indexing="ij")


def value_noise(rng, height, width, cells_y, cells_x):
    """Smooth random field in about 0..1 with cells_y x cells_x features."""
    coarse = rng.random((cells_y + 1, cells_x + 1), dtype=np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def fractal_noise(rng, height, width, cells_y, cells_x, octaves=4):
    """Sum of octaves with halving amplitude: natural-looking texture, normalised to 0..1."""
    total = np.zeros((height, width), np.float32)
    for octave in range(octaves):
        total += value_noise(rng, height, width, cells_y << octave, cells_x << octave) / 2**octave
    total -= total.min()
    return total / max(float(total.max()), 1e-6)


def profile_1d(rng, width, cells):
    """A smooth random curve over the columns, in about 0..1."""
    return value_noise(rng, 1, width, 1, cells)[0]


def smoothstep(edge0, edge1, x):
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def blend(image, colour, alpha):
    """Alpha-composite a colour (3,) or colour image over `image`, in place."""
    a = alpha[..., None]
    image *= 1.0 - a
    image += a * colour


def jitter(rng, colour, amount):
    return np.clip(np.asarray(colour, np.float32) + rng.uniform(-amount, amount, 3), 0.0, 1.0)
