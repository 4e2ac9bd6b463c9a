"""How one synthetic image and its mask are drawn: the scenes and the cells of `segtutor.synth`.

Introduced in `01_data.ipynb`. Everything is numpy from one random generator, so an image is
byte for byte the same for the same seed. Each generator takes `(rng, size)` and returns
`image` `(H, W, 3)` uint8 RGB and `mask` `(H, W)` uint8 class indices (255: ignore).
`segtutor.synth` says what the datasets hold and writes them to disk.
"""

from __future__ import annotations

import colorsys

import numpy as np

from segtutor.settings import IGNORE_INDEX

__all__ = ["make_cells_image", "make_scene"]


# ---------------------------------------------------------------------------------------------
# Building blocks: smooth noise, blur, signed distances
# ---------------------------------------------------------------------------------------------


def _grid(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates `(ys, xs)`, each `(H, W)` float32."""
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return ys + 0.5, xs + 0.5


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cell: float) -> np.ndarray:
    """Low-frequency noise in `[0, 1]`, `(H, W)`: a coarse random grid, bilinearly upsampled.

    `cell` is the grid spacing in pixels: the larger, the smoother.
    """
    h, w = size
    coarse = rng.random((int(h / cell) + 2, int(w / cell) + 2), dtype=np.float32)
    return _upsample(_upsample(coarse, h, cell, axis=0), w, cell, axis=1)


def _upsample(array: np.ndarray, n: int, cell: float, axis: int) -> np.ndarray:
    """Linear interpolation of `array` along `axis` at `n` points spaced `1 / cell` apart."""
    position = np.arange(n, dtype=np.float32) / cell
    below = position.astype(int)
    shape = [-1 if a == axis else 1 for a in range(array.ndim)]
    weight = (position - below).astype(np.float32).reshape(shape)
    return np.take(array, below, axis) * (1 - weight) + np.take(array, below + 1, axis) * weight


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an `(H, W)` or `(H, W, C)` float array (no scipy: separable shifted sums)."""
    radius = max(1, int(3 * sigma + 0.5))
    taps = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (0, 1):
        pad = [(0, 0)] * image.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(image, pad, mode="edge")
        n = image.shape[axis]
        image = sum(
            k * np.take(padded, np.arange(i, i + n), axis=axis) for i, k in enumerate(kernel)
        )
    return image


def _rotated(ys: np.ndarray, xs: np.ndarray, cy: float, cx: float, angle: float):
    """Coordinates `(u, v)` in a frame centred at `(cy, cx)` and turned by `angle` radians."""
    c, s = np.cos(angle), np.sin(angle)
    dy, dx = ys - cy, xs - cx
    return c * dx + s * dy, -s * dx + c * dy


def _random_colour(rng: np.random.Generator, family: str = "any") -> np.ndarray:
    """An RGB colour (float32, 0..255) from a family of hues, like the typical look of a class.

    "muted" (greyish, any hue) is the background's; "warm" (red to yellow) is shared by discs,
    rings and half of the triangles; "cool" (cyan to blue) by bars and the other triangles. So
    colour says roughly *what kind* of thing a pixel belongs to, never which class: a disc, a
    ring and a warm triangle look alike until you see their shapes.
    """
    if family == "any":
        return rng.uniform(30, 225, size=3).astype(np.float32)
    hue_range, saturation_range, value_range = COLOUR_FAMILIES[family]
    hue = rng.uniform(*hue_range) % 1.0
    rgb = colorsys.hsv_to_rgb(hue, rng.uniform(*saturation_range), rng.uniform(*value_range))
    return np.array(rgb, np.float32) * 255


# family -> (hue, saturation, value) ranges in HSV, each in 0..1 (hue wraps around).
COLOUR_FAMILIES = {
    "muted": ((0.0, 1.0), (0.0, 0.3), (0.3, 0.8)),
    "warm": ((-0.05, 0.17), (0.5, 1.0), (0.5, 1.0)),
    "cool": ((0.45, 0.72), (0.5, 1.0), (0.45, 1.0)),
}


# ---------------------------------------------------------------------------------------------
# scenes
# ---------------------------------------------------------------------------------------------

# Signed distance in pixels (negative inside) of each shape, with random position, scale and
# rotation. The distance gives anti-aliased edges and the 1-pixel ignore band for free.


def _disc(rng, ys, xs):
    cy, cx = rng.uniform(0, ys.shape[0]), rng.uniform(0, xs.shape[1])
    radius = SHAPE_SCALE * rng.uniform(6, 22)
    return np.hypot(ys - cy, xs - cx) - radius


def _ring(rng, ys, xs):
    cy, cx = rng.uniform(0, ys.shape[0]), rng.uniform(0, xs.shape[1])
    radius, thickness = SHAPE_SCALE * rng.uniform(10, 22), SHAPE_SCALE * rng.uniform(4, 8)
    return np.abs(np.hypot(ys - cy, xs - cx) - radius) - thickness / 2


def _bar(rng, ys, xs):
    cy, cx = rng.uniform(0, ys.shape[0]), rng.uniform(0, xs.shape[1])
    half_length, half_width = SHAPE_SCALE * rng.uniform(12, 36), SHAPE_SCALE * rng.uniform(3, 7)
    u, v = _rotated(ys, xs, cy, cx, rng.uniform(0, np.pi))
    qu, qv = np.abs(u) - half_length, np.abs(v) - half_width
    outside = np.hypot(np.maximum(qu, 0), np.maximum(qv, 0))
    return outside + np.minimum(np.maximum(qu, qv), 0)


def _triangle(rng, ys, xs):
    cy, cx = rng.uniform(0, ys.shape[0]), rng.uniform(0, xs.shape[1])
    radius, angle = SHAPE_SCALE * rng.uniform(12, 28), rng.uniform(0, 2 * np.pi)
    # Equilateral: the distance to the farthest of the three edge lines (inradius = radius / 2).
    edges = [angle + k * 2 * np.pi / 3 for k in range(3)]
    return (
        np.max([np.cos(a) * (xs - cx) + np.sin(a) * (ys - cy) for a in edges], axis=0) - radius / 2
    )


# shape -> (label, signed distance). Triangles are clutter: drawn like objects, labelled background.
SCENE_SHAPES = {
    "disc": (1, _disc),
    "bar": (2, _bar),
    "ring": (3, _ring),
    "triangle": (0, _triangle),
}


def _texture(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A random texture in `[0, 1]`, `(H, W)`: smooth noise, a gradient or stripes."""
    ys, xs = _grid(size)
    u, _ = _rotated(ys, xs, 0.0, 0.0, rng.uniform(0, 2 * np.pi))
    kind = rng.integers(3)
    if kind == 0:
        return _smooth_noise(rng, size, cell=rng.uniform(8, 40))
    if kind == 1:
        return (u - u.min()) / (u.max() - u.min())
    return 0.5 + 0.5 * np.sin(2 * np.pi * u / rng.uniform(6, 24))


def _visible_fill(
    rng: np.random.Generator,
    size: tuple[int, int],
    image: np.ndarray,
    inside: np.ndarray,
    family: str,
) -> np.ndarray:
    """A textured fill for a shape, redrawn (up to 10 times) until it stands out from what lies
    under it: colour alone never names the class, but an object nobody could see is label noise,
    not a harder task."""
    for _ in range(10):
        fill = _textured_fill(rng, size, contrast=rng.uniform(0.0, 0.5), family=family)
        if not inside.any():
            break
        difference = fill[inside].mean(axis=0) - image[inside].mean(axis=0)
        if np.linalg.norm(difference) >= MIN_CONTRAST:
            break
    return fill


# Smallest distance in RGB between a shape's mean colour and the mean of what it covers.
MIN_CONTRAST = 60.0
# How strongly the background texture (noise, gradient, stripes) varies, as a range to draw from.
BACKGROUND_CONTRAST = (0.3, 1.0)
# shape -> its colour family; None: a coin flip between "warm" and "cool" (triangles mimic both).
SHAPE_COLOURS = {"disc": "warm", "ring": "warm", "bar": "cool", "triangle": None}
# Shape sizes in pixels are drawn from ranges made for 128x128 scenes, times this factor.
SHAPE_SCALE = 1.0
# Chance that a scene holds a ring: rings are the rare class.
RING_CHANCE = 0.6


def _textured_fill(
    rng: np.random.Generator, size: tuple[int, int], contrast: float, family: str = "any"
) -> np.ndarray:
    """Two random colours of one family mixed by a random texture: `(H, W, 3)` float32 0..255."""
    first, second = _random_colour(rng, family), _random_colour(rng, family)
    mix = contrast * _texture(rng, size)[..., None]
    return first * (1 - mix) + second * mix


def make_scene(
    rng: np.random.Generator, size: tuple[int, int] = (128, 128)
) -> tuple[np.ndarray, np.ndarray]:
    """One multi-class scene. Introduced in `01_data.ipynb`.

    Returns:
        image: `(H, W, 3)` uint8 RGB.
        mask: `(H, W)` uint8: 0 background, 1 disc, 2 bar, 3 ring, 255 ignore (edge pixels).
    """
    ys, xs = _grid(size)
    contrast = rng.uniform(*BACKGROUND_CONTRAST)
    image = _textured_fill(rng, size, contrast, family="muted")  # (H, W, 3)
    mask = np.zeros(size, np.uint8)
    ambiguous = np.zeros(size, bool)  # pixels that an object edge cuts through

    names = (
        ["disc"] * int(rng.integers(1, 5))
        + ["bar"] * int(rng.integers(1, 4))
        + ["ring"] * int(rng.random() < RING_CHANCE)
        + ["triangle"] * int(rng.integers(0, 3))
    )
    rng.shuffle(names)  # drawing order is depth order: later shapes occlude earlier ones
    for name in names:
        label, distance = SCENE_SHAPES[name]
        coverage = np.clip(0.5 - distance(rng, ys, xs), 0, 1)  # fraction of the pixel covered
        family = SHAPE_COLOURS[name] or ("warm" if rng.random() < 0.5 else "cool")
        fill = _visible_fill(rng, size, image, coverage >= 0.5, family)
        image = image * (1 - coverage[..., None]) + fill * coverage[..., None]
        partial = (coverage > 0) & (coverage < 1)
        ambiguous |= partial & (mask != label)  # an edge between two different labels
        ambiguous[coverage == 1] = False  # an edge hidden under this shape no longer shows
        mask[coverage >= 0.5] = label

    image = _blur(image, sigma=0.6)  # a camera is never perfectly sharp
    # Sensor noise: grey grain, the same in the three channels (which also keeps the PNG smaller).
    image = image + rng.normal(0, rng.uniform(2, 6), size=(*size, 1))
    mask[ambiguous] = IGNORE_INDEX
    return np.clip(image + 0.5, 0, 255).astype(np.uint8), mask


# ---------------------------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------------------------


def _cells(rng: np.random.Generator, size: tuple[int, int]) -> list[tuple[float, ...]]:
    """Ellipses `(cy, cx, a, b, angle)` in clusters: neighbours touch or overlap a little."""
    h, w = size
    cells: list[tuple[float, ...]] = []
    for _ in range(int(rng.integers(5, 9))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        for _ in range(int(rng.integers(3, 9))):
            a, b = rng.uniform(7, 12), rng.uniform(5, 9)
            # Cells squeeze against each other but never sit on top of each other.
            if all(
                np.hypot(cy - c[0], cx - c[1]) > 0.8 * ((a + b) / 2 + (c[2] + c[3]) / 2)
                for c in cells
            ):
                cells.append((cy, cx, a, b, rng.uniform(0, np.pi)))
            # The next cell of the cluster grows about one diameter away from this one.
            direction, step = rng.uniform(0, 2 * np.pi), rng.uniform(1.6, 2.1) * (a + b) / 2
            cy, cx = cy + step * np.sin(direction), cx + step * np.cos(direction)
    return cells


def make_cells_image(
    rng: np.random.Generator, size: tuple[int, int] = (128, 128)
) -> tuple[np.ndarray, np.ndarray]:
    """One microscopy-like image of touching cells. Introduced in `01_data.ipynb`.

    Returns:
        image: `(H, W, 3)` uint8 RGB.
        mask: `(H, W)` uint8: 0 background, 1 cell.
    """
    ys, xs = _grid(size)
    nearest = np.full(size, np.inf, np.float32)  # signed distance to the nearest cell
    second = np.full(size, np.inf, np.float32)  # ... and to the second nearest
    brightness = np.zeros(size, np.float32)  # brightness of the nearest cell
    for cy, cx, a, b, angle in _cells(rng, size):
        u, v = _rotated(ys, xs, cy, cx, angle)
        rho = np.hypot(u, v)
        # Distance along the ray from the centre to the ellipse: exact on the axes, close enough
        # elsewhere for these mildly elongated cells.
        distance = rho - rho / np.maximum(np.hypot(u / a, v / b), 1e-6)
        closer = distance < nearest
        second = np.where(closer, nearest, np.minimum(second, distance))
        nearest = np.where(closer, distance, nearest)
        brightness[closer] = rng.uniform(50, 170)

    # Where two cells meet, split the pixels between them along the line where they are equally
    # near; a pixel within a pixel of that line is border, not cell (as in the U-Net paper), so
    # touching cells stay separate objects in the mask ...
    depth = np.minimum(-nearest, (second - nearest) / 2)  # distance inside the own part, pixels
    mask = (depth > 0.5).astype(np.uint8)
    # ... and the image shows it: each cell fades out over its last 2.5 pixels, a dim valley.
    granules = 0.75 + 0.5 * _smooth_noise(rng, size, cell=3)
    signal = brightness * granules * np.clip(depth / 2.5, 0, 1) ** 0.5

    ramp, _ = _rotated(ys, xs, size[0] / 2, size[1] / 2, rng.uniform(0, 2 * np.pi))
    illumination = 0.5 + 0.7 * _smooth_noise(rng, size, cell=64) + 0.3 * ramp / max(size)
    background = rng.uniform(10, 40) + 40 * _smooth_noise(rng, size, cell=32)
    image = _blur((background + signal) * illumination, sigma=rng.uniform(0.8, 1.6))
    image = image + rng.normal(0, 0.6, size=size) * np.sqrt(np.maximum(image, 0))  # shot noise

    # Fluorescence channels: green, magenta or white (0 in a channel also keeps the PNG small).
    colour = np.array([[0, 1, 0], [1, 0, 1], [1, 1, 1]], np.float32)[rng.integers(3)]
    return np.clip(image[..., None] * colour + 0.5, 0, 255).astype(np.uint8), mask
