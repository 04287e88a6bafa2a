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


# ------------------------------------------------------------------------------- background
# sky: (top, horizon, cloud colour, cloud cover range); warm and grey skies keep colour ambiguous
SKIES = {
    "clear": ((0.25, 0.45, 0.80), (0.70, 0.80, 0.92), (0.95, 0.95, 0.97), (0.0, 0.35)),
    "sunset": ((0.22, 0.22, 0.45), (1.00, 0.58, 0.28), (0.95, 0.60, 0.45), (0.1, 0.5)),
    "overcast": ((0.58, 0.60, 0.64), (0.78, 0.78, 0.80), (0.88, 0.88, 0.90), (0.5, 0.9)),
    "dusk": ((0.06, 0.08, 0.18), (0.45, 0.32, 0.36), (0.35, 0.33, 0.38), (0.1, 0.5)),
    "haze": ((0.62, 0.66, 0.72), (0.86, 0.82, 0.74), (0.92, 0.90, 0.86), (0.2, 0.6)),
}
SKY_WEIGHTS = {"clear": 0.3, "sunset": 0.2, "overcast": 0.25, "dusk": 0.1, "haze": 0.15}
# ground: (main colour, patch colour)
GROUNDS = {
    "grass": ((0.30, 0.42, 0.18), (0.45, 0.48, 0.25)),
    "dry": ((0.58, 0.48, 0.30), (0.45, 0.38, 0.25)),
    "forest": ((0.13, 0.24, 0.11), (0.22, 0.30, 0.15)),
    "rock": ((0.45, 0.42, 0.38), (0.35, 0.33, 0.30)),
    "urban": ((0.42, 0.42, 0.44), (0.55, 0.50, 0.45)),
}


@dataclass
class Background:
    image: np.ndarray  # float32 HxWx3 in 0..1
    horizon: np.ndarray  # ground top per column, as a share of the height
    sky: str


def draw_sky(rng, size, sky_name, horizon_mean):
    top, bottom, cloud_colour, cover_range = SKIES[sky_name]
    y, _ = grid(size, size)
    t = np.clip(y / max(horizon_mean, 0.05), 0, 1)[..., None] ** rng.uniform(0.6, 1.6)
    image = jitter(rng, top, 0.06) * (1 - t) + jitter(rng, bottom, 0.06) * t
    # clouds stretched sideways: grey-white texture that is not smoke
    clouds = fractal_noise(rng, size, size, 3, 2, octaves=4)
    cover = rng.uniform(*cover_range)
    alpha = smoothstep(1 - cover, 1 - cover + 0.3, clouds) * rng.uniform(0.4, 0.9)
    shade = 0.8 + 0.3 * fractal_noise(rng, size, size, 4, 4, octaves=2)[..., None]
    blend(image, np.clip(jitter(rng, cloud_colour, 0.05) * shade, 0, 1), alpha)
    return image


def draw_ground(rng, size, ground_name, horizon, sky_bottom):
    main, patch = GROUNDS[ground_name]
    y, _ = grid(size, size)
    texture = fractal_noise(rng, size, size, 6, 6, octaves=4)[..., None]
    patches = smoothstep(0.4, 0.6, fractal_noise(rng, size, size, 2, 3, octaves=3))[..., None]
    colour = jitter(rng, main, 0.05) * (1 - patches) + jitter(rng, patch, 0.05) * patches
    ground = colour * (0.65 + 0.7 * texture)
    # aerial perspective: far ground fades towards the horizon's sky colour
    depth = np.clip((y - horizon[None, :]) * rng.uniform(6, 14), 0, 1)[..., None]
    return ground * depth + sky_bottom * (1 - depth) * 0.8 + ground * (1 - depth) * 0.2


def draw_tree_line(rng, image, horizon):
    """Dark ragged band of vegetation standing on the horizon."""
    size = image.shape[0]
    y, _ = grid(size, size)
    height = profile_1d(rng, size, int(rng.integers(15, 45))) * rng.uniform(0.02, 0.09)
    top = horizon - height.astype(np.float32)
    alpha = np.clip((y - top[None, :]) * size, 0, 1) * (y < horizon[None, :] + 0.01)
    texture = fractal_noise(rng, size, size, 12, 12, octaves=2)[..., None]
    blend(image, jitter(rng, (0.10, 0.17, 0.09), 0.04) * (0.6 + 0.8 * texture), alpha)


def draw_background(rng, size):
    sky_name = rng.choice(list(SKY_WEIGHTS), p=list(SKY_WEIGHTS.values()))
    horizon_mean = rng.uniform(0.3, 0.62)
    hills = (profile_1d(rng, size, int(rng.integers(2, 6))) - 0.5) * rng.uniform(0.0, 0.25)
    horizon = np.clip(horizon_mean + hills, 0.15, 0.8).astype(np.float32)
    image = draw_sky(rng, size, sky_name, horizon_mean)
    sky_bottom = image[int(horizon_mean * size) - 1].mean(axis=0)
    ground = draw_ground(rng, size, rng.choice(list(GROUNDS)), horizon, sky_bottom)
    y, _ = grid(size, size)
    blend(image, ground, np.clip((y - horizon[None, :]) * size, 0, 1))  # antialiased edge
    if rng.random() < 0.5:
        draw_tree_line(rng, image, horizon)
    if sky_name == "dusk":
        image *= rng.uniform(0.45, 0.75)
    return Background(image.astype(np.float32), horizon, sky_name)


# ------------------------------------------------------------------------------- objects
# flame colour by heat: dark red edge -> orange -> yellow -> near-white core
FIRE_HEAT = [0.0, 0.3, 0.6, 0.85, 1.0]
FIRE_COLOURS = np.array(
    [[0.55, 0.04, 0.0], [0.95, 0.30, 0.02], [1.0, 0.62, 0.10], [1.0, 0.88, 0.45], [1.0, 1.0, 0.85]],
    np.float32,
)


def alpha_box(alpha, threshold, left=0, top=0, size=None):
    """Normalised (x0, y0, x1, y1) of the pixels above threshold, or None if there are none."""
    rows = np.flatnonzero(alpha.max(axis=1) > threshold)
    cols = np.flatnonzero(alpha.max(axis=0) > threshold)
    if rows.size == 0:
        return None
    size = size or alpha.shape[0]
    box = np.array([cols[0] + left, rows[0] + top, cols[-1] + 1 + left, rows[-1] + 1 + top])
    return tuple(np.clip(box / size, 0.0, 1.0))


def paste_slices(size, left, top, height, width):
    """Slices of the image and of a patch for a patch placed at (left, top), clipped."""
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + height, size), min(left + width, size)
    image = (slice(y0, y1), slice(x0, x1))
    patch = (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))
    return image, patch


def draw_smoke(rng, image, source, opacity):
    """A plume rising from `source` (x, y), widening and drifting; returns its box."""
    size = image.shape[0]
    y, x = grid(size, size)
    height = rng.uniform(0.25, 0.75)
    narrow, wide = rng.uniform(0.008, 0.04), rng.uniform(0.07, 0.28)
    up = np.clip((source[1] - y) / height, 0, None)  # 0 at the source, 1 at the plume's top
    centre = source[0] + rng.uniform(-0.35, 0.35) * height * np.minimum(up, 1.2) ** 1.5
    across = (x - centre) / (narrow + (wide - narrow) * np.minimum(up, 1.2) ** 0.8)
    billows = fractal_noise(rng, size, size, 5, 5, octaves=3)
    fade = smoothstep(0.0, 0.08, up) * (1 - smoothstep(0.55, 1.0, up)) * (y < source[1])
    alpha = np.clip(np.exp(-2 * across**2) * fade * (0.35 + 0.9 * billows), 0, 1) * opacity
    alpha = cv2.GaussianBlur(alpha, (0, 0), size * 0.008)
    grey = rng.uniform(0.2, 0.4) if rng.random() < 0.15 else rng.uniform(0.55, 0.95)
    shade = (0.8 + 0.35 * fractal_noise(rng, size, size, 4, 4, octaves=2))[..., None]
    blend(image, np.clip(jitter(rng, (grey, grey, grey), 0.04) * shade, 0, 1), alpha)
    return alpha_box(alpha, max(0.06, 0.3 * opacity))


def flame_patch(rng, width, height):
    """Colour (H, W, 3) and alpha (H, W) of a cluster of flame tongues filling the patch."""
    y, x = grid(height, width)
    u, v = (x - 0.5) * 2.4, (1.0 - y) * 1.15 - 0.05  # u across (-1..1 inside), v up from base
    tongues = 0.3 + 0.7 * profile_1d(rng, width, int(rng.integers(3, 9)))
    flicker_u = (value_noise(rng, height, width, 4, 10) - 0.5) * 0.5 * np.clip(v, 0, 1)
    flicker_v = (value_noise(rng, height, width, 6, 6) - 0.5) * 0.3
    envelope = np.sqrt(np.clip(1 - (u + flicker_u) ** 2, 0, 1))
    heat = 1 - (v + flicker_v) / np.maximum(envelope * tongues[None, :], 1e-3)
    heat = np.clip(heat, 0, 1) * smoothstep(-0.08, 0.04, v)
    heat = heat ** rng.uniform(0.7, 1.3)
    colour = np.stack([np.interp(heat, FIRE_HEAT, FIRE_COLOURS[:, c]) for c in range(3)], -1)
    return colour.astype(np.float32), smoothstep(0.0, 0.12, heat).astype(np.float32)


def draw_fire(rng, image, horizon, size_range):
    """A flame cluster standing on the ground, with a warm glow around it; returns its box."""
    size = image.shape[0]
    width = float(np.exp(rng.uniform(*np.log(size_range))))
    height = width * rng.uniform(0.8, 1.8)
    cx = rng.uniform(width / 2, 1 - width / 2)
    ground = horizon[min(int(cx * size), size - 1)] + 0.01
    base = rng.uniform(min(max(ground, height * 0.9), 0.97), 0.98)
    patch_w, patch_h = max(4, round(width * 1.2 * size)), max(4, round(height * 1.15 * size))
    left, top = round((cx - width * 0.6) * size), round(base * size) - patch_h
    colour, alpha = flame_patch(rng, patch_w, patch_h)
    glow = np.zeros((size, size), np.float32)
    into, part = paste_slices(size, left, top, patch_h, patch_w)
    glow[into] = alpha[part]
    glow = cv2.GaussianBlur(glow, (0, 0), max(1.0, patch_w * 0.35)) * rng.uniform(0.3, 0.8)
    image += glow[..., None] * np.array([1.0, 0.45, 0.1], np.float32)
    blend(image[into], colour[part], alpha[part])
    return alpha_box(alpha, 0.3, left, top, size), (cx, base - height * 0.7)
