"""A synthetic dataset in D-Fire's format, so the whole pipeline runs without downloads.

Scenes: sky + terrain with texture and varied palettes (warm sunsets, grey overcast, dusk),
flame-like fires (bright, warm, irregular, often small), translucent smoke plumes rising from a
source (some faint), and distractors that share colour with the classes but not their shape:
orange/red objects, autumn trees, the sun, street lights, grey fog and low clouds. Colour alone
therefore does not give the answer. Every image comes from its own seed (seed, split, index),
so a dataset is identical byte for byte whenever it is regenerated with the same parameters.
"""

import json
import zlib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from tqdm.auto import tqdm

from modules.board.yolo_labels import read_yolo_label
from modules.data.preprocess import load_rgb

GENERATOR_VERSION = 2  # bump when scenes change, so existing demo folders are regenerated
MARKER = "demo_complete.json"  # written last: its absence means an unfinished generation
FILE_PREFIX = "demo_"  # only files with this prefix are ever deleted
DFIRE_CONVENTION = {0: "smoke", 1: "fire"}  # used when no mapping is passed (D-Fire's ids)
# D-Fire's class shares: 9,838 none, 5,867 smoke only, 1,164 fire only, 4,658 both
DFIRE_MIX = {"none": 0.457, "smoke": 0.273, "fire": 0.054, "both": 0.216}


@dataclass(frozen=True)
class SceneStyle:
    """Difficulty knobs. The marker records them: changing one regenerates the demo data."""

    class_mix: dict = field(default_factory=lambda: dict(DFIRE_MIX))
    smoke_opacity: tuple = (0.6, 0.95)  # peak opacity of an ordinary plume
    faint_smoke_share: float = 0.05  # share of plumes drawn with faint_smoke_opacity
    faint_smoke_opacity: tuple = (0.35, 0.5)
    smoke_min_visibility: float = 0.25  # opacity x grey difference to the background, at least
    smoke_min_area: float = 0.04  # visible plume box / image area, at least
    fire_size: tuple = (0.07, 0.3)  # flame width / image side, log-uniform (small ones common)
    distractors_per_image: float = 0.5  # Poisson mean
    sensor_noise: float = 4.0  # largest std of added pixel noise, in 0..255 units


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
    # cubic is smooth but slow at full size: cubic to 8 px per cell, then linear the rest
    middle = (min(width, 8 * (cells_x + 1)), min(height, 8 * (cells_y + 1)))
    smooth = cv2.resize(coarse, middle, interpolation=cv2.INTER_CUBIC)
    return cv2.resize(smooth, (width, height), interpolation=cv2.INTER_LINEAR)


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


# Images are channel-first float32 (3, H, W) in 0..1 while drawing: numpy broadcasts a
# (H, W) field over the leading axis much faster than over a trailing axis of 3.
def rgb(colour):
    """A colour as a (3, 1, 1) float32 array that broadcasts over (3, H, W) images."""
    return np.asarray(colour, np.float32).reshape(3, 1, 1)


def blend(image, colour, alpha):
    """Alpha-composite a colour (3, 1, 1) or colour image (3, H, W) over `image`, in place."""
    image *= 1.0 - alpha
    image += alpha * colour


def jitter(rng, colour, amount):
    shift = rng.uniform(-amount, amount, 3)
    return rgb(np.clip(np.asarray(colour) + shift, 0.0, 1.0))


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
    image: np.ndarray  # float32 (3, H, W) in 0..1
    horizon: np.ndarray  # ground top per column, as a share of the height
    sky: str


def draw_sky(rng, size, sky_name, horizon_mean):
    top, bottom, cloud_colour, cover_range = SKIES[sky_name]
    y, _ = grid(size, size)
    t = np.clip(y / max(horizon_mean, 0.05), 0, 1) ** rng.uniform(0.6, 1.6)
    image = jitter(rng, top, 0.06) * (1 - t) + jitter(rng, bottom, 0.06) * t
    # clouds stretched 3:1 sideways: grey-white texture that never looks like a rising plume
    clouds = fractal_noise(rng, size, size, 6, 2, octaves=4)
    cover = rng.uniform(*cover_range)
    alpha = smoothstep(1 - cover, 1 - cover + 0.3, clouds) * rng.uniform(0.4, 0.9)
    shade = 0.8 + 0.3 * fractal_noise(rng, size, size, 4, 4, octaves=2)
    blend(image, np.clip(jitter(rng, cloud_colour, 0.05) * shade, 0, 1), alpha)
    return image


def draw_ground(rng, size, ground_name, horizon, sky_bottom):
    main, patch = GROUNDS[ground_name]
    y, _ = grid(size, size)
    patches = smoothstep(0.35, 0.65, fractal_noise(rng, size, size, 3, 3, octaves=3))
    colour = jitter(rng, main, 0.05) * (1 - patches) + jitter(rng, patch, 0.05) * patches
    # coarse relief plus fine grain (grass, stones), the grain flattened sideways by perspective
    relief = fractal_noise(rng, size, size, 6, 6, octaves=3)
    grain = value_noise(rng, size, size, 48, 24)
    ground = colour * (0.6 + 0.5 * relief + 0.35 * (grain - 0.5))
    # aerial perspective: far ground takes on some of the sky's colour near the horizon
    haze = np.exp(-np.clip(y - horizon[None, :], 0, None) * rng.uniform(12, 30))
    haze = haze * rng.uniform(0.15, 0.55)
    return ground * (1 - haze) + sky_bottom * haze


def draw_tree_line(rng, image, horizon):
    """Dark ragged band of vegetation standing on the horizon."""
    size = image.shape[1]
    y, _ = grid(size, size)
    height = profile_1d(rng, size, int(rng.integers(15, 45))) * rng.uniform(0.02, 0.09)
    top = horizon - height.astype(np.float32)
    alpha = np.clip((y - top[None, :]) * size, 0, 1) * (y < horizon[None, :] + 0.01)
    texture = fractal_noise(rng, size, size, 12, 12, octaves=2)
    blend(image, jitter(rng, (0.10, 0.17, 0.09), 0.04) * (0.6 + 0.8 * texture), alpha)


def draw_background(rng, size):
    sky_name = rng.choice(list(SKY_WEIGHTS), p=list(SKY_WEIGHTS.values()))
    horizon_mean = rng.uniform(0.3, 0.62)
    hills = (profile_1d(rng, size, int(rng.integers(2, 6))) - 0.5) * rng.uniform(0.0, 0.25)
    horizon = np.clip(horizon_mean + hills, 0.15, 0.8).astype(np.float32)
    image = draw_sky(rng, size, sky_name, horizon_mean)
    sky_bottom = rgb(image[:, int(horizon_mean * size) - 1].mean(axis=1))
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


def plume_alpha(rng, size, source, opacity):
    """Opacity field of a billowing plume rising from `source` (x, y), widening and bending."""
    y, x = grid(size, size)
    height = rng.uniform(0.25, 0.75)
    narrow, wide = rng.uniform(0.008, 0.035), rng.uniform(0.06, 0.3)
    up = np.clip((source[1] - y) / height, 0, 1.2)  # 0 at the source, 1 at the plume's top
    centre = source[0] + rng.uniform(-0.6, 0.6) * height * up**1.6
    centre += (profile_1d(rng, size, 4)[:, None] - 0.5) * 0.08 * up  # the column wavers
    across = (x - centre) / (narrow + (wide - narrow) * up**0.8)
    billows = fractal_noise(rng, size, size, 7, 7, octaves=3)
    fade = smoothstep(0.0, 0.06, up) * (1 - smoothstep(0.5, 1.05, up)) * (y < source[1])
    density = np.exp(-1.5 * across**2) * fade
    alpha = smoothstep(0.15, 0.75, density * (0.3 + 1.1 * billows)) * opacity
    return cv2.GaussianBlur(alpha, (0, 0), size * 0.006), billows


def place_plume(rng, size, background, fires, opacity, min_area, tries=100):
    """A plume whose visible part (box) covers at least min_area of the picture.

    Small remnants (a plume mostly outside the frame, or a stub) look like a cloud and would
    make the label arbitrary. Returns (alpha, billow texture, box).
    """
    for _ in range(tries):
        source = smoke_source(rng, background, fires)
        alpha, billows = plume_alpha(rng, size, source, opacity)
        box = alpha_box(alpha, max(0.04, float(alpha.max()) / 3))
        if box and (box[2] - box[0]) * (box[3] - box[1]) >= min_area:
            return alpha, billows, box
    raise RuntimeError(f"no smoke plume of area >= {min_area} in {tries} tries; lower it")


def draw_smoke(rng, image, alpha, billows, min_visibility):
    """Paint a plume; its grey differs from what it covers by min_visibility / peak opacity."""
    grey = smoke_grey(rng, image, alpha, min_visibility / max(float(alpha.max()), 1e-3))
    shade = 0.75 + 0.4 * billows  # puffs lit on one side
    blend(image, np.clip(jitter(rng, (grey, grey, grey), 0.03) * shade, 0, 1), alpha)


def smoke_grey(rng, image, alpha, min_contrast):
    """Grey level of a plume, at least min_contrast away from what it covers (else unseen)."""
    covered = float((alpha * image.mean(axis=0)).sum() / max(float(alpha.sum()), 1e-6))
    grey = rng.uniform(0.2, 0.4) if rng.random() < 0.15 else rng.uniform(0.55, 0.95)
    if abs(grey - covered) >= min_contrast:
        return grey
    lighter = covered + min_contrast
    return lighter if lighter <= 0.97 else max(covered - min_contrast, 0.0)


def flame_patch(rng, width, height):
    """Colour (3, H, W) and alpha (H, W) of a cluster of flame tongues filling the patch."""
    y, x = grid(height, width)
    u, v = (x - 0.5) * 2.4, (1.0 - y) * 1.15 - 0.05  # u across (-1..1 inside), v up from base
    tongues = 0.3 + 0.7 * profile_1d(rng, width, int(rng.integers(3, 9)))
    flicker_u = (value_noise(rng, height, width, 4, 10) - 0.5) * 0.5 * np.clip(v, 0, 1)
    flicker_v = (value_noise(rng, height, width, 6, 6) - 0.5) * 0.3
    envelope = np.sqrt(np.clip(1 - (u + flicker_u) ** 2, 0, 1))
    heat = 1 - (v + flicker_v) / np.maximum(envelope * tongues[None, :], 1e-3)
    heat = np.clip(heat, 0, 1) * smoothstep(-0.08, 0.04, v)
    streaks = value_noise(rng, height, width, 3, 14)  # vertical licks inside the flame
    heat = (heat * (0.85 + 0.3 * streaks)).clip(0, 1) ** rng.uniform(0.7, 1.3)
    colour = np.stack([np.interp(heat, FIRE_HEAT, FIRE_COLOURS[:, c]) for c in range(3)])
    return colour.astype(np.float32), smoothstep(0.0, 0.12, heat).astype(np.float32)


def draw_fire(rng, image, placement):
    """A flame cluster at `placement` (see place_fire) with a warm glow; returns its box."""
    size = image.shape[1]
    cx, base, width, height = placement
    patch_w, patch_h = max(4, round(width * 1.2 * size)), max(4, round(height * 1.15 * size))
    left, top = round((cx - width * 0.6) * size), round(base * size) - patch_h
    colour, alpha = flame_patch(rng, patch_w, patch_h)
    glow = np.zeros((size, size), np.float32)
    into, part = paste_slices(size, left, top, patch_h, patch_w)
    glow[into] = alpha[part]
    glow = cv2.GaussianBlur(glow, (0, 0), max(1.0, patch_w * 0.35)) * rng.uniform(0.3, 0.8)
    image += glow * rgb((1.0, 0.45, 0.1))
    blend(image[:, into[0], into[1]], colour[:, part[0], part[1]], alpha[part])
    return alpha_box(alpha, 0.3, left, top, size)


# ------------------------------------------------------------------------------- distractors
# Each shares colour with fire or smoke but not its shape or place; (rng, image, background).
def hsv_colour(rng, hue_degrees, saturation, value):
    pixel = np.array(
        [
            [
                [
                    rng.uniform(*hue_degrees) / 2,
                    rng.uniform(*saturation) * 255,
                    rng.uniform(*value) * 255,
                ]
            ]
        ],
        np.uint8,
    )  # OpenCV hue is 0..180
    return rgb(cv2.cvtColor(pixel, cv2.COLOR_HSV2RGB)[0, 0] / 255)


def ground_point(rng, background, margin=0.05):
    x = rng.uniform(margin, 1 - margin)
    top = background.horizon[min(int(x * background.image.shape[1]), len(background.horizon) - 1)]
    return x, rng.uniform(top + 0.02, 0.98)


def draw_orange_object(rng, image, background):
    """A smooth warm box or ellipse (vehicle, roof, sign): orange without flame texture."""
    size = image.shape[1]
    y, x = grid(size, size)
    cx, bottom = ground_point(rng, background)
    w = rng.uniform(0.05, 0.2)
    h = w * rng.uniform(0.4, 1.2)
    dx, dy = np.abs(x - cx) / (w / 2), np.abs(y - (bottom - h / 2)) / (h / 2)
    inside = np.maximum(dx, dy) if rng.random() < 0.5 else np.sqrt(dx**2 + dy**2)
    alpha = np.clip((1 - inside) * min(w, h) * size * 0.5, 0, 1)
    shade = 1.1 - 0.35 * np.clip((y - bottom + h) / h, 0, 1)
    blend(image, hsv_colour(rng, (0, 35), (0.6, 1.0), (0.55, 0.95)) * shade, alpha)


def draw_autumn_tree(rng, image, background):
    """A round, textured orange-red crown on a trunk: warm and busy, but dull and rounded."""
    size = image.shape[1]
    y, x = grid(size, size)
    cx, base = ground_point(rng, background)
    radius = rng.uniform(0.04, 0.12)
    cy = base - radius * 1.6
    trunk = (np.abs(x - cx) < radius * 0.12) & (y > cy) & (y < base)
    blend(image, rgb((0.22, 0.15, 0.1)), trunk.astype(np.float32))
    ragged = np.hypot(x - cx, (y - cy) * 1.1) / radius
    ragged += 0.5 * (fractal_noise(rng, size, size, 8, 8, octaves=3) - 0.5)
    alpha = np.clip((1 - ragged) * radius * size * 0.6, 0, 1)
    texture = 0.55 + 0.6 * fractal_noise(rng, size, size, 20, 20, octaves=2)
    blend(image, hsv_colour(rng, (2, 40), (0.65, 0.95), (0.4, 0.75)) * texture, alpha)


def draw_sun(rng, image, background):
    """A bright warm disk with a glow, in the sky (low and orange at sunset)."""
    size = image.shape[1]
    y, x = grid(size, size)
    cx = rng.uniform(0.1, 0.9)
    cy = rng.uniform(0.05, background.horizon.min() * 0.9)
    radius = rng.uniform(0.02, 0.045)
    colour = (1.0, 0.62, 0.3) if background.sky == "sunset" else (1.0, 0.92, 0.7)
    distance = np.hypot(x - cx, y - cy) / radius
    glow = np.exp(-distance * rng.uniform(0.5, 1.0)) * 0.5
    image += glow * rgb(colour)
    blend(image, jitter(rng, colour, 0.03), np.clip((1 - distance) * radius * size, 0, 1))


def draw_lights(rng, image, background):
    """A few small bright lamps with halos (street lights, windows)."""
    size = image.shape[1]
    y, x = grid(size, size)
    for _ in range(int(rng.integers(1, 6))):
        cx, cy = ground_point(rng, background)
        cy = min(cy, background.horizon.max() + 0.15)
        distance = np.hypot(x - cx, y - cy) * size
        halo = np.exp(-distance / rng.uniform(1.0, 3.0))
        image += halo * jitter(rng, (1.0, 0.85, 0.55), 0.1) * rng.uniform(0.5, 1.0)


def draw_fog(rng, image, background):
    """A horizontal band of grey-white fog along the ground: grey but flat, not a plume."""
    size = image.shape[1]
    y, x = grid(size, size)
    centre = float(background.horizon.mean()) + rng.uniform(-0.05, 0.2)
    band = np.exp(-(((y - centre) / rng.uniform(0.03, 0.1)) ** 2))
    span = smoothstep(0, 0.15, 1 - np.abs(x - rng.uniform(0.2, 0.8)) / rng.uniform(0.3, 0.8))
    texture = 0.5 + 0.5 * fractal_noise(rng, size, size, 2, 4, octaves=3)
    grey = rng.uniform(0.65, 0.9)
    blend(image, rgb((grey, grey, grey)), band * span * texture * rng.uniform(0.25, 0.6))


def draw_low_cloud(rng, image, background):
    """A soft grey cloud in the sky: wider than tall and detached from the ground."""
    size = image.shape[1]
    y, x = grid(size, size)
    cx, cy = rng.uniform(0.1, 0.9), rng.uniform(0.05, background.horizon.min() * 0.7)
    w, h = rng.uniform(0.12, 0.35), rng.uniform(0.04, 0.09)
    shape = np.hypot((x - cx) / w, (y - cy) / h)
    shape += 0.6 * (fractal_noise(rng, size, size, 6, 6, octaves=3) - 0.5)
    grey = rng.uniform(0.45, 0.9)
    blend(image, jitter(rng, (grey, grey, grey), 0.03), smoothstep(1.0, 0.5, shape) * 0.7)


ON_THE_GROUND = [draw_orange_object, draw_autumn_tree, draw_fog, draw_low_cloud]
DISTRACTORS = {  # by sky: no sun under overcast, lamps only when it is darkish
    "clear": [*ON_THE_GROUND, draw_sun],
    "sunset": [*ON_THE_GROUND, draw_sun, draw_lights],
    "overcast": ON_THE_GROUND,
    "dusk": [*ON_THE_GROUND, draw_lights, draw_lights],
    "haze": [*ON_THE_GROUND, draw_sun],
}


# ------------------------------------------------------------------------------- scenes
def place_fire(rng, horizon, size_range):
    """(centre x, base y, width, height) of a fire standing on the ground."""
    width = float(np.exp(rng.uniform(*np.log(size_range))))
    height = width * rng.uniform(0.8, 1.8)
    cx = rng.uniform(width / 2, 1 - width / 2)
    ground = horizon[min(int(cx * len(horizon)), len(horizon) - 1)] + 0.01
    base = rng.uniform(min(max(ground, height * 0.9), 0.97), 0.98)
    return cx, base, width, height


def smoke_source(rng, background, fires):
    """Above a fire most of the time when there is one, else anywhere on the ground."""
    if fires and rng.random() < 0.7:
        cx, base, _, height = fires[int(rng.integers(len(fires)))]
        return cx, base - height * 0.7
    x = rng.uniform(0.05, 0.95)
    top = background.horizon[min(int(x * len(background.horizon)), len(background.horizon) - 1)]
    return x, top + rng.uniform(-0.01, 0.6) * (0.98 - top)


def object_count(rng):
    return int(rng.choice([1, 2, 3], p=[0.72, 0.22, 0.06]))


def camera(rng, image, noise_max):
    """Exposure, gamma, a little blur and sensor noise: (3, H, W) 0..1 -> uint8 RGB HWC."""
    image = np.ascontiguousarray(image.transpose(1, 2, 0)) * rng.uniform(0.85, 1.15)
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 0.9))
    noise = rng.standard_normal(image.shape, dtype=np.float32) * rng.uniform(0, noise_max / 255)
    pixels = np.clip((image + noise) * 255 + 0.5, 0, 255).astype(np.uint8)
    gamma = (np.arange(256) / 255) ** rng.uniform(0.85, 1.2) * 255  # a lookup table is fast
    return cv2.LUT(pixels, np.round(gamma).astype(np.uint8))


def draw_scene(rng, size, category, style):
    """One attempt at a scene: RGB uint8 and boxes [(class name, (x0, y0, x1, y1) in 0..1)]."""
    background = draw_background(rng, size)
    image = background.image
    choices = DISTRACTORS[background.sky]
    for _ in range(rng.poisson(style.distractors_per_image)):
        choices[int(rng.integers(len(choices)))](rng, image, background)
    fires = [
        place_fire(rng, background.horizon, style.fire_size)
        for _ in range(object_count(rng) if category in ("fire", "both") else 0)
    ]
    boxes = []
    for _ in range(object_count(rng) if category in ("smoke", "both") else 0):
        faint = rng.random() < style.faint_smoke_share
        opacity = rng.uniform(*(style.faint_smoke_opacity if faint else style.smoke_opacity))
        alpha, billows, box = place_plume(
            rng, size, background, fires, opacity, style.smoke_min_area
        )
        draw_smoke(rng, image, alpha, billows, style.smoke_min_visibility)
        boxes.append(("smoke", box))
    for fire in fires:  # after the smoke: flames shine through it
        box = draw_fire(rng, image, fire)
        boxes += [("fire", box)] if box else []
    return camera(rng, np.clip(image, 0, 1), style.sensor_noise), boxes


def render_scene(rng, size, category, style):
    """A scene of `category`; redrawn in the rare case an object ended up invisible."""
    wanted = {"none": set(), "smoke": {"smoke"}, "fire": {"fire"}, "both": {"smoke", "fire"}}
    while True:
        image, boxes = draw_scene(rng, size, category, style)
        if {name for name, _ in boxes} == wanted[category]:
            return image, boxes


# ------------------------------------------------------------------------------- files
def category_plan(counts_by_share, n, rng):
    """Exactly round(share * n) images per category (largest remainders), in shuffled order."""
    names, shares = list(counts_by_share), np.array(list(counts_by_share.values()), float)
    exact = shares / shares.sum() * n
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact, kind="stable")[: n - counts.sum()]] += 1
    plan = np.repeat(names, counts)
    return list(plan[rng.permutation(n)])


def yolo_lines(boxes, class_ids):
    """[(name, (x0, y0, x1, y1))] -> 'id cx cy w h' lines with the dataset's class ids."""
    id_of = {name: class_id for class_id, name in class_ids.items()}
    return "".join(
        f"{id_of[name]} {(x0 + x1) / 2:.6f} {(y0 + y1) / 2:.6f} {x1 - x0:.6f} {y1 - y0:.6f}\n"
        for name, (x0, y0, x1, y1) in boxes
    )


def write_image(path, pixels, quality):
    bgr = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(data.tobytes())


def clear_split(split_dir):
    """Delete what an earlier generation wrote; refuse if the folder holds anything else."""
    for sub in ("images", "labels"):
        folder = split_dir / sub
        files = list(folder.iterdir()) if folder.is_dir() else []
        foreign = [path for path in files if not path.name.startswith(FILE_PREFIX)]
        if foreign:
            raise FileExistsError(
                f"{folder} holds files the demo generator did not write (e.g. {foreign[0].name});"
                " point DEMO_DIR at a folder of its own"
            )
        for path in files:
            path.unlink()


def split_seed(seed, split):
    return [int(seed), zlib.crc32(split.encode())]  # crc32: stable, unlike hash()


def generate_split(root, split, count, image_size, seed, class_ids, style, bar):
    split_dir = Path(root) / split
    clear_split(split_dir)
    for sub in ("images", "labels"):
        (split_dir / sub).mkdir(parents=True, exist_ok=True)
    plan = category_plan(style.class_mix, count, np.random.default_rng(split_seed(seed, split)))
    for index, category in enumerate(plan):
        rng = np.random.default_rng([*split_seed(seed, split), index])
        pixels, boxes = render_scene(rng, image_size, category, style)
        stem = f"{FILE_PREFIX}{split}_{index:05d}"
        write_image(split_dir / "images" / f"{stem}.jpg", pixels, rng.integers(75, 96))
        (split_dir / "labels" / f"{stem}.txt").write_text(yolo_lines(boxes, class_ids))
        bar.update()


def generation_params(splits, image_size, seed, class_ids, style):
    """Everything the images depend on, as plain JSON values (what the marker records)."""
    params = {
        "version": GENERATOR_VERSION,
        "splits": {str(name): int(count) for name, count in splits.items()},
        "image_size": int(image_size),
        "seed": int(seed),
        "class_ids": sorted([int(class_id), name] for class_id, name in class_ids.items()),
        "style": asdict(style),
    }
    return json.loads(json.dumps(params))


def read_marker(root):
    try:
        return json.loads((Path(root) / MARKER).read_text())
    except (OSError, ValueError):
        return None


def generate_demo_dataset(
    root, splits, image_size, seed, *, class_ids=None, style=None, progress=False
):
    """Write root/<split>/{images,labels} for each split (name -> image count); returns root.

    The marker file is removed first and written last, so an interrupted run is redone.
    """
    root, style = Path(root), style or SceneStyle()
    class_ids = class_ids or DFIRE_CONVENTION
    if not {"smoke", "fire"} <= set(class_ids.values()):
        raise ValueError(f"class ids {class_ids} must name 'smoke' and 'fire' (DFIRE_CLASS_IDS)")
    params = generation_params(splits, image_size, seed, class_ids, style)
    earlier = (read_marker(root) or {}).get("splits", {})
    (root / MARKER).unlink(missing_ok=True)
    for split in sorted(set(earlier) - set(splits)):
        clear_split(root / split)
    total = sum(params["splits"].values())
    with tqdm(total=total, desc=f"demo data -> {root}", disable=not progress) as bar:
        for split, count in params["splits"].items():
            generate_split(root, split, count, image_size, seed, class_ids, style, bar)
    (root / MARKER).write_text(json.dumps(params, indent=1))
    return root


def ensure_demo_dataset(cfg):
    """Generate cfg.DEMO_DIR unless its marker records the same parameters; returns the path."""
    root = Path(cfg.DEMO_DIR)
    args = (cfg.DEMO_SPLITS, cfg.DEMO_IMAGE_SIZE, cfg.DEMO_SEED)
    if read_marker(root) == generation_params(*args, cfg.DFIRE_CLASS_IDS, SceneStyle()):
        return root
    return generate_demo_dataset(root, *args, class_ids=cfg.DFIRE_CLASS_IDS, progress=True)


def save_preview_grid(root, split, path, n=16):
    """A PNG grid of the first n images of a split with their boxes; returns the path."""
    root, path = Path(root), Path(path)
    class_ids = {int(k): v for k, v in (read_marker(root) or {}).get("class_ids", [])}
    class_ids = class_ids or DFIRE_CONVENTION
    classes = [class_ids[k] for k in sorted(class_ids)]
    images = sorted((root / split / "images").glob("*.jpg"))[:n]
    if not images:
        raise FileNotFoundError(f"no .jpg images in {root / split / 'images'} to preview")
    cols = int(np.ceil(np.sqrt(len(images))))
    rows = int(np.ceil(len(images) / cols))
    figure = Figure(figsize=(2.2 * cols, 2.35 * rows))
    for k, image_path in enumerate(images):
        axes = figure.add_subplot(rows, cols, k + 1)
        label = root / split / "labels" / f"{image_path.stem}.txt"
        draw_boxes(axes, load_rgb(image_path), read_yolo_label(label, class_ids, classes), classes)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def draw_boxes(axes, pixels, boxes, classes):
    """An image with its YOLO boxes (fire red, smoke cyan) and its classes as the title."""
    height, width = pixels.shape[:2]
    axes.imshow(pixels)
    axes.axis("off")
    present = sorted({classes[int(b[0])] for b in boxes})
    axes.set_title(" + ".join(present) or "none", fontsize=9)
    for index, cx, cy, w, h in boxes:
        colour = "red" if classes[int(index)] == "fire" else "cyan"
        corner = ((cx - w / 2) * width - 0.5, (cy - h / 2) * height - 0.5)
        axes.add_patch(Rectangle(corner, w * width, h * height, fill=False, ec=colour, lw=1))
