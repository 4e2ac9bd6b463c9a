"""The bundled sample datasets, drawn from a seed (`python -m segtutor make-samples` writes them).

Two small synthetic datasets, drawn with numpy from a seed, byte for byte the same on every run:

- `scenes` (multi-class): discs, bars and rings on textured backgrounds, with noise, occlusion,
  scale variation, rotation and a rare class. Every shape, background and clutter triangle draws
  its colour from the same distribution, so colour alone cannot tell the classes apart: a model
  has to learn shape and context. A 1-pixel band of 255 (ignore) marks the pixels where an object
  edge cuts through a pixel, as Pascal VOC marks its object borders.
- `cells` (binary, microscopy-like): touching, blurred, noisy elliptical blobs under uneven
  illumination, the kind of image the U-Net was invented for. As in the U-Net paper, touching
  cells are kept apart by a thin background line in the mask.

Each is written as `DIR/{train,val}/{images,masks}/<stem>.png` plus `DIR/dataset.json` and
`DIR/README.md` (see the dataset folder format in DEVELOPERS.md).

Introduced in `01_data.ipynb`.
"""

from __future__ import annotations

import colorsys
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from segtutor.settings import IGNORE_INDEX

__all__ = [
    "DATASETS",
    "GENERATORS",
    "SAMPLE_SETS",
    "make_cells_image",
    "make_scene",
    "write_dataset",
]

# Okabe-Ito colours: distinguishable with every common colour-vision deficiency.
BLACK, ORANGE, SKY_BLUE = (0, 0, 0), (230, 159, 0), (86, 180, 233)
GREEN, YELLOW = (0, 158, 115), (240, 228, 66)

# kind -> metadata written to dataset.json (its format is in DEVELOPERS.md)
DATASETS = {
    "scenes": {
        "class_names": ["background", "disc", "bar", "ring"],
        "palette": [BLACK, ORANGE, SKY_BLUE, GREEN],
        "description": "Discs, bars and rings on textured backgrounds with clutter triangles "
        "(labelled background); colour tells warm from cool objects, only shape tells a disc "
        "from a ring or a triangle. "
        "255 marks a 1-pixel band along object edges.",
    },
    "cells": {
        "class_names": ["background", "cell"],
        "palette": [BLACK, YELLOW],
        "description": "Microscopy-like images: touching, blurred, noisy elliptical cells under "
        "uneven illumination; touching cells are separated by a thin background line.",
    },
}

# kind -> how many images of which size the bundled `data_samples/` holds
SAMPLE_SETS = {
    "scenes": {"n_train": 200, "n_val": 50, "size": (128, 128)},
    "cells": {"n_train": 144, "n_val": 36, "size": (128, 128)},
}


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


# ---------------------------------------------------------------------------------------------
# Writing a dataset folder
# ---------------------------------------------------------------------------------------------

GENERATORS = {"scenes": make_scene, "cells": make_cells_image}
KIND_IDS = {"scenes": 1, "cells": 2}  # part of every image's seed, so the two kinds differ


def write_dataset(
    out_dir: str | Path,
    kind: str,
    n_train: int,
    n_val: int,
    size: tuple[int, int] = (128, 128),
    seed: int = 0,
) -> dict:
    """Write `out_dir/{train,val}/{images,masks}/*.png`, `dataset.json` and `README.md`.

    Introduced in `01_data.ipynb` (`python -m segtutor make-samples` calls it).

    Image `i` is drawn from its own generator seeded with `(seed, kind, i)`, so the first images
    are the same whatever `n_train` and `n_val` are, and a small set is a prefix of a large one.

    Returns:
        A summary: `{"counts": {...}, "size": ..., "pixel_counts": {split: [per class]},
        "ignored_pixels": {split: n}}`, measured from the mask files just written.
    """
    if kind not in GENERATORS:
        raise ValueError(f"kind must be one of {sorted(GENERATORS)}, not {kind!r}")
    out_dir = Path(out_dir)
    meta = DATASETS[kind]
    num_classes = len(meta["class_names"])
    stem_prefix = kind[:-1]  # "scene", "cell"
    summary: dict = {"counts": {}, "size": list(size), "pixel_counts": {}, "ignored_pixels": {}}

    index = 0
    for split, count in (("train", n_train), ("val", n_val)):
        for folder in ("images", "masks"):
            (out_dir / split / folder).mkdir(parents=True, exist_ok=True)
            # Files of an earlier, larger run would be left over as extra samples.
            for old in (out_dir / split / folder).glob(f"{stem_prefix}_*.png"):
                old.unlink()
        histogram = np.zeros(256, np.int64)
        for _ in range(count):
            rng = np.random.default_rng([seed, KIND_IDS[kind], index])
            image, mask = GENERATORS[kind](rng, size)
            stem = f"{stem_prefix}_{index:04d}"
            # PNG without timestamps is byte-for-byte reproducible; compress_level fixes the size.
            Image.fromarray(image, "RGB").save(
                out_dir / split / "images" / f"{stem}.png", compress_level=9
            )
            mask_path = out_dir / split / "masks" / f"{stem}.png"
            Image.fromarray(mask, "L").save(mask_path, compress_level=9)
            histogram += np.bincount(np.asarray(Image.open(mask_path)).ravel(), minlength=256)
            index += 1
        summary["counts"][split] = count
        summary["pixel_counts"][split] = histogram[:num_classes].tolist()
        summary["ignored_pixels"][split] = int(histogram[IGNORE_INDEX])

    metadata = {
        "name": kind,
        "class_names": meta["class_names"],
        "palette": [list(colour) for colour in meta["palette"]],
        "ignore_index": IGNORE_INDEX,
        "description": meta["description"],
    }
    text = json.dumps(metadata, indent=2)
    text = re.sub(r"\[\s+(\d+),\s+(\d+),\s+(\d+)\s+\]", r"[\1, \2, \3]", text)  # a colour per line
    (out_dir / "dataset.json").write_text(text + "\n")
    (out_dir / "README.md").write_text(_readme(kind, seed, summary))
    return summary


def _readme(kind: str, seed: int, summary: dict) -> str:
    meta = DATASETS[kind]
    h, w = summary["size"]
    lines = [
        f"# `{kind}`: a synthetic segmentation dataset",
        "",
        meta["description"],
        "",
        "Generated by `segtutor.synth` (do not edit by hand). To regenerate every bundled dataset",
        "from the repository root (byte for byte, with the same NumPy version):",
        "",
        f"    python -m segtutor make-samples --seed {seed}",
        "",
        f"- images: {h}x{w} RGB PNG; masks: {h}x{w} 8-bit greyscale PNG of class indices",
        f"- train: {summary['counts']['train']} images, val: {summary['counts']['val']} images "
        "(`train/{images,masks}`, `val/{images,masks}`, paired by file stem)",
        "- class names and palette: `dataset.json`",
        "",
        "## Classes and pixel frequencies (measured from the mask files)",
        "",
        "Share of all mask pixels per class; background is the majority, as in real data.",
        "",
        "| index | class | colour | train | val |",
        "|---|---|---|---|---|",
    ]
    totals = {s: sum(c) + summary["ignored_pixels"][s] for s, c in summary["pixel_counts"].items()}
    for i, name in enumerate(meta["class_names"]):
        freq = [100 * summary["pixel_counts"][s][i] / totals[s] for s in ("train", "val")]
        hex_colour = "#{:02X}{:02X}{:02X}".format(*meta["palette"][i])
        lines.append(f"| {i} | {name} | {hex_colour} | {freq[0]:.1f}% | {freq[1]:.1f}% |")
    ignored = [100 * summary["ignored_pixels"][s] / totals[s] for s in ("train", "val")]
    if any(ignored):
        lines.append(f"| 255 | ignore | (white) | {ignored[0]:.1f}% | {ignored[1]:.1f}% |")
    lines += ["", "## How it was made", "", _HOW[kind], ""]
    return "\n".join(lines)


_HOW = {
    "scenes": (
        "Each image starts from a textured background (smooth noise, a gradient or stripes "
        "between two muted, greyish colours). Then 1-4 discs, 1-3 bars, in 60% of the images one "
        "ring (the rare class) and 0-2 clutter triangles are drawn in random order, so later "
        "shapes occlude earlier ones, at random positions, sizes and angles, each filled with "
        "its own textured colours, redrawn until it stands out from what lies under it. "
        "Colours come in families, as real classes have a typical look: discs and rings are "
        "warm (red to yellow), bars cool (cyan to blue), and each triangle is warm or cool at "
        "random. So colour says what kind of object a pixel belongs to, but not which class: a "
        "disc, a ring and a warm triangle share their colours, and only shape (a ring is a disc "
        "with a hole; a triangle has corners) and context decide. The image is blurred "
        "(sigma 0.6 px) and Gaussian noise is added. Shapes are drawn from signed distances, "
        "with anti-aliased edges; pixels that an edge between two different labels cuts "
        "through are marked 255, a 1-pixel band that the loss and the metric ignore (as Pascal "
        "VOC marks object borders)."
    ),
    "cells": (
        "Cells are ellipses placed in clusters, each about one diameter from the previous one, "
        "so that many touch or press into each other. Each cell has its own brightness and a granular "
        "texture and fades out over its last pixels, leaving a dim valley where two cells "
        "touch. The picture is multiplied by a smooth, uneven illumination field with a "
        "gradient, blurred (sigma 0.8-1.6 px), given signal-dependent (shot) noise and one of "
        "three fluorescence colours (green, magenta, white). In the mask, the pixels within "
        "about a pixel of the line where two cells meet are background, as in the U-Net paper, "
        "so that touching cells stay separate objects (count them with connected components)."
    ),
}
