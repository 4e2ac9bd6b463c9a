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
`DIR/README.md` (see the dataset folder format in DEVELOPERS.md). How one image and its mask
are drawn is `segtutor.synth_images` (`make_scene`, `make_cells_image`, re-exported here).

Introduced in `01_data.ipynb`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from segtutor.settings import IGNORE_INDEX
from segtutor.synth_images import make_cells_image, make_scene

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

    def percent(count: int, split: str) -> float:
        return 100 * count / totals[split] if totals[split] else 0.0  # a split may be empty

    for i, name in enumerate(meta["class_names"]):
        freq = [percent(summary["pixel_counts"][s][i], s) for s in ("train", "val")]
        hex_colour = "#{:02X}{:02X}{:02X}".format(*meta["palette"][i])
        lines.append(f"| {i} | {name} | {hex_colour} | {freq[0]:.1f}% | {freq[1]:.1f}% |")
    ignored = [percent(summary["ignored_pixels"][s], s) for s in ("train", "val")]
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
