"""File formats: which files are images, what `dataset.json` says, and how a file becomes an array.

Introduced in `01_data.ipynb`. The folder format (see DEVELOPERS.md)::

    DIR/images/<stem>.png|jpg|jpeg|bmp|tif|tiff    DIR/masks/<stem>.png    DIR/dataset.json (optional)

Two decoders turn files into arrays, and nothing else in segtutor opens a pixel:

- `decode_image(path)`: any supported image -> RGB uint8 `(H, W, 3)`;
- `decode_mask(path, palette, binary_255)`: a mask -> class indices `(H, W)`.

Masks hold class indices `0..num_classes-1`; 255 means "ignore this pixel". They may be stored as
8-bit greyscale (`L`), 16-bit (`I;16`), palette (`P`, the index is the class, as Pascal VOC stores
them) or colour (`RGB`) PNGs; colour masks are mapped to indices through an explicit palette.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from segtutor.errors import DataError, Problem, listed
from segtutor.settings import IGNORE_INDEX

__all__ = [
    "IMAGE_EXTENSIONS",
    "LOSSY_EXTENSIONS",
    "MASK_MODES",
    "PALETTE_FILES",
    "VOC_CLASS_NAMES",
    "VOC_IGNORE_COLOR",
    "VOC_PALETTE",
    "Color",
    "DatasetMeta",
    "LabelMapError",
    "PaletteError",
    "decode_image",
    "decode_mask",
    "is_image_file",
    "jpeg_is_complete",
    "read_image",
    "read_metadata",
    "unreadable_reason",
    "voc_colormap",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
"""File extensions read as images or masks (case-insensitive); every other file is ignored."""

LOSSY_EXTENSIONS = (".jpg", ".jpeg")
"""Extensions of lossy formats: fine for images, wrong for masks (their labels get blurred)."""

Color = tuple[int, int, int]


def is_image_file(path: str | Path) -> bool:
    """The one rule for "is this file a sample?": a regular file, not hidden, an image extension.

    Hidden files (`.DS_Store`, macOS's `._a.png`), sub-folders and other extensions (`notes.txt`,
    `Thumbs.db`) are not samples. The dataset and `predict` both list folders with this rule.
    Introduced in `01_data.ipynb`.
    """
    path = Path(path)
    return (
        not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()
    )


# ----------------------------------------------------------------------------------------------
# Pascal VOC's palette


def _voc_palette(num_colors: int) -> list[Color]:
    """Pascal VOC's colour map: the bits of the class index, spread over the high bits of R, G, B."""
    palette = []
    for index in range(num_colors):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):  # bit 0 of c -> bit 7 of r, bit 1 -> bit 7 of g, ...
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette.append((r, g, b))
    return palette


def voc_colormap(num_colors: int) -> list[Color]:
    """The first `num_colors` colours of Pascal VOC's colour map (any number of classes).

    Introduced in `01_data.ipynb`.
    """
    return _voc_palette(num_colors)


VOC_PALETTE: list[Color] = _voc_palette(21)
"""The 21 colours of Pascal VOC (background + 20 classes), `[(0, 0, 0), (128, 0, 0), ...]`.

Introduced in `01_data.ipynb`."""

VOC_CLASS_NAMES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
]  # fmt: skip
"""The 21 class names of Pascal VOC, in index order. Introduced in `01_data.ipynb`."""

VOC_IGNORE_COLOR: Color = _voc_palette(256)[255]
"""(224, 224, 192): colour masks saved from VOC draw object borders (index 255) in it: ignore."""

# Mask modes whose pixel values are class indices (P: the index into the PNG's palette).
_INDEX_MODES = {"1", "L", "LA", "P", "PA", "I", "I;16", "I;16L", "I;16B", "I;16N"}
_COLOR_MODES = {"RGB", "RGBA", "RGBX"}
_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
MASK_MODES = frozenset(_INDEX_MODES | _COLOR_MODES)
"""PIL modes `decode_mask` reads; anything else (e.g. 32-bit float `F`) is unsupported."""


# ----------------------------------------------------------------------------------------------
# dataset.json


@dataclass(frozen=True)
class DatasetMeta:
    """What `dataset.json` says about a dataset; every field may be missing.

    Introduced in `01_data.ipynb`.

    Attributes:
        path: the `dataset.json` that was read, or None when there is none.
        name: a short name for the dataset.
        class_names: one name per class, index order.
        palette: one `(r, g, b)` per class, index order (also maps colour masks to indices).
        ignore_index: mask value that means "ignore"; segtutor only supports 255.
        description: free text.
    """

    path: Path | None = None
    name: str | None = None
    class_names: list[str] | None = None
    palette: list[Color] | None = None
    ignore_index: int = IGNORE_INDEX
    description: str = ""


_META_FIX = 'see "Dataset folder format" in DEVELOPERS.md for the fields and an example'


def read_metadata(root: str | Path) -> DatasetMeta:
    """Read `dataset.json` from `root`, else from its parent (so `DIR/train` finds `DIR`'s).

    Introduced in `01_data.ipynb`.

    Args:
        root: the dataset folder (the one holding `images/` and `masks/`, or the splits).

    Without a `dataset.json`, a palette file as other tools write them gives the class names
    and colours (row k: class k): `class_dict.csv` (`name,r,g,b`, as Kaggle's datasets ship) or
    `labelmap.txt` (`name:r,g,b::`, CVAT's segmentation export).

    Returns:
        The metadata; an empty `DatasetMeta()` when neither folder has one of those files.

    Raises:
        DataError: the file cannot be parsed or a field has the wrong shape.
    """
    root = Path(root)
    path = next(
        (p for p in (root / "dataset.json", root.parent / "dataset.json") if p.is_file()), None
    )
    if path is None:
        return _read_palette_file(root)
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))  # -sig: Notepad writes a BOM
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(Problem(path, f"is not valid JSON ({error})", _META_FIX)) from None
    if not isinstance(raw, dict):
        raise DataError(Problem(path, "must hold a JSON object {...}", _META_FIX))
    problems: list[Problem] = []
    names = _class_names_field(raw, path, problems)
    palette = _palette_field(raw, path, problems)
    if names and palette and len(names) != len(palette):
        problems.append(Problem(path, f"has {len(names)} class_names but {len(palette)} "
                                "palette colours", "give one colour per class"))  # fmt: skip
    ignore_index = raw.get("ignore_index", IGNORE_INDEX)
    if ignore_index != IGNORE_INDEX:
        problems.append(Problem(path, f'"ignore_index" is {ignore_index!r}; segtutor uses 255',
                                "rewrite the masks so ignored pixels are 255, then set it to 255"))  # fmt: skip
    if problems:
        raise DataError(problems)
    name, description = raw.get("name"), raw.get("description", "")
    return DatasetMeta(path, name, names, palette, IGNORE_INDEX, description)


PALETTE_FILES = ("class_dict.csv", "labelmap.txt")
"""Palette files read when there is no `dataset.json`: one class per row, name and colour."""


def _read_palette_file(root: Path) -> DatasetMeta:
    """`class_dict.csv` or `labelmap.txt` in `root` or its parent; `DatasetMeta()` if none."""
    found = [p for folder in (root, root.parent) for p in (folder / n for n in PALETTE_FILES)]
    path = next((p for p in found if p.is_file()), None)
    if path is None:
        return DatasetMeta()
    names, palette = [], []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        if path.suffix == ".csv":  # name,r,g,b with a header row
            rows = list(csv.DictReader(lines))
            entries = [(row["name"], (row["r"], row["g"], row["b"])) for row in rows]
        else:  # CVAT: "# label:color_rgb:parts:actions", then "car:255,0,0::"
            rows = [line.split(":") for line in lines if line.strip() and line[0] != "#"]
            entries = [(row[0], row[1].split(",")) for row in rows]
        for name, color in entries:
            names.append(name.strip())
            palette.append(_as_color(color))
    except (OSError, UnicodeDecodeError, KeyError, IndexError, TypeError, ValueError) as error:
        example = "name,r,g,b then e.g. car,64,0,128" if path.suffix == ".csv" else "car:64,0,128::"
        raise DataError(Problem(path, f"cannot be read as a palette file ({error!r})",
                                f"one class per line, in class order: {example}")) from None  # fmt: skip
    if not names:
        raise DataError(Problem(path, "names no classes", "one class per line, in class order"))
    return DatasetMeta(path, None, names, palette)


def _class_names_field(raw: dict, path: Path, problems: list[Problem]) -> list[str] | None:
    names = raw.get("class_names")
    if names is None or (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        return names
    problems.append(Problem(path, '"class_names" must be a list of strings', _META_FIX))
    return None


def _palette_field(raw: dict, path: Path, problems: list[Problem]) -> list[Color] | None:
    palette = raw.get("palette")
    if palette is None:
        return None
    try:
        return [_as_color(c) for c in palette]
    except (TypeError, ValueError):
        problems.append(
            Problem(path, '"palette" must be a list of [r, g, b], each 0..255', _META_FIX)
        )
        return None


def _as_color(value: Sequence[int]) -> Color:
    r, g, b = (int(v) for v in value)  # ValueError unless exactly three numbers
    if not all(0 <= v <= 255 for v in (r, g, b)):
        raise ValueError(f"colour {value} is outside 0..255")
    return (r, g, b)


# ----------------------------------------------------------------------------------------------
# Decoding: the only two functions that turn files into arrays


def decode_image(path: str | Path, *, shrink_to: tuple[int, int] | None = None) -> np.ndarray:
    """Read any supported image as RGB uint8, shape `(H, W, 3)`.

    Introduced in `01_data.ipynb`.

    Greyscale, palette and RGBA (alpha dropped) become RGB. 16-bit images are scaled from their
    full range 0..65535 to 0..255, so that every image of a dataset is scaled the same way (an
    image that uses only 12 of its 16 bits looks dark: rescale such images yourself).
    Raises whatever PIL raises; `read_image` turns that into a message.

    `shrink_to=(height, width)`: the caller resizes the image to that size next, so a JPEG may
    come back smaller than stored, 1/2, 1/4 or 1/8 of each side (rounded up): the smallest that
    keeps at least twice that size. libjpeg scales while decoding, and the smoothing resize that
    follows then gives nearly what shrinking the full image gives: on ccp9's 550x830 photos at
    scale 0.18, 1.3-1.6 ms a photo instead of 4.9-5.9, pixels 0.7 of 255 apart on average (3.2 when
    decoded at the target size itself; docs/benchmarks.md, "Decoding large photos small").
    Other formats come back as stored.
    """
    with Image.open(path) as img:
        if shrink_to is not None and img.format == "JPEG":
            img.draft(None, (2 * shrink_to[1], 2 * shrink_to[0]))  # PIL sizes: (width, height)
        if img.mode in _SIXTEEN_BIT_MODES:
            grey = np.asarray(img).astype(np.int64).clip(0, 65535) // 257  # (H, W) 0..255
            return np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)
        if img.mode != "RGB":
            img = img.convert("RGB")
        return np.array(img)  # a writable copy, as torch.from_numpy wants


def read_image(path: str | Path) -> np.ndarray:
    """Read one image file as RGB uint8, shape `(H, W, 3)` (for prediction on new images).

    Introduced in `01_data.ipynb`.

    Raises:
        DataError: the file cannot be read as an image; the message names it.
    """
    path = Path(path)
    try:
        return decode_image(path)
    except Exception as error:  # PIL raises many types; the user needs the file name
        raise DataError(
            Problem(path, f"cannot be read as an image ({unreadable_reason(error, path)})",
                    f"check the file, or use one of {', '.join(IMAGE_EXTENSIONS)}")
        ) from error  # fmt: skip


class PaletteError(ValueError):
    """A colour mask that the palette cannot map; the message names the colours.

    Introduced in `01_data.ipynb`.
    """


class LabelMapError(ValueError):
    """A mask holding values its dataset's layout does not store; the message names them.

    Introduced in `01_data.ipynb`.
    """


def decode_mask(
    path: str | Path,
    palette: Sequence[Color] | None = None,
    binary_255: bool = False,
    *,
    lookup: np.ndarray | None = None,
) -> np.ndarray:
    """Read a mask as integer class indices, shape `(H, W)` (uint8, or wider for 16-bit files).

    Introduced in `01_data.ipynb`.

    Args:
        path: the mask file.
        palette: one `(r, g, b)` per class, to map colour (RGB) masks to indices.
        binary_255: read 255 as class 1 (0/255 binary masks) instead of "ignore".
        lookup: a dataset layout's table, stored value -> class index or 255, -1 for values the
            layout never stores (`segtutor.layouts.Layout.lookup`); the mask must hold indices.

    Raises:
        PaletteError: a colour mask with no palette, or with colours the palette lacks; the
            message names the colours. Damaged files raise whatever PIL raises.
        LabelMapError: with `lookup`, a colour mask or values the table does not map.
    """
    if lookup is not None:
        return _decode_with_lookup(path, lookup)
    with Image.open(path) as img:
        if img.mode in _COLOR_MODES:
            labels = _colors_to_indices(np.asarray(img.convert("RGB")), palette)
        elif img.mode in ("LA", "PA"):  # the value (or palette index) is the class; drop alpha
            labels = np.asarray(img)[:, :, 0].copy()
        elif img.mode == "1":
            labels = np.asarray(img).astype(np.uint8)  # bool -> 0/1
        else:  # L, P (the palette index, NOT its colour), I;16, I
            labels = np.array(img)  # a writable copy, as torch.from_numpy wants
    if labels.dtype != np.uint8 and labels.size and labels.min() >= 0 and labels.max() <= 255:
        labels = labels.astype(np.uint8)  # 16-bit files usually hold small labels: save memory
    if binary_255:
        labels = np.where(labels == 255, 1, labels).astype(labels.dtype)
    return labels


def _decode_with_lookup(path: str | Path, lookup: np.ndarray) -> np.ndarray:
    """Stored values (uint8 `(H, W)`, the palette index for `P` PNGs) -> mapped uint8 `(H, W)`."""
    with Image.open(path) as img:
        if img.mode not in _INDEX_MODES or img.mode in ("LA", "PA", "1"):
            raise LabelMapError(f"is a {img.mode} image, not a mask of label values (a colour "
                                "rendering such as Cityscapes' _color.png?)")  # fmt: skip
        stored = np.asarray(img)  # P: the palette index, never its colour
    values = np.unique(stored)
    bad = [int(v) for v in values if not 0 <= v < lookup.size or lookup[v] < 0]
    if bad:
        raise LabelMapError(f"holds values this dataset does not use: {listed(bad)}")
    return lookup[stored].astype(np.uint8)


def _colors_to_indices(rgb: np.ndarray, palette: Sequence[Color] | None) -> np.ndarray:
    """Map an `(H, W, 3)` colour mask to `(H, W)` uint8 indices through `palette`."""
    if palette is None:
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            return rgb[..., 0].copy()  # a greyscale mask that was saved as RGB
        colors = _distinct_colors(rgb)
        voc = set(colors) <= {*VOC_PALETTE, VOC_IGNORE_COLOR}
        hint = "; these are Pascal VOC colours: pass palette=VOC_PALETTE" if voc else ""
        raise PaletteError(
            f"is a colour mask but no palette was given (its colours: {listed(colors)}){hint}"
        )
    lookup = {_color_key(c): i for i, c in enumerate(palette)}
    lookup.setdefault(_color_key(VOC_IGNORE_COLOR), IGNORE_INDEX)
    keys = _color_key(rgb)  # (H, W) one int per colour
    uniques, inverse = np.unique(keys, return_inverse=True)
    table = np.array([lookup.get(int(k), -1) for k in uniques])
    if (table < 0).any():
        missing = [_key_color(int(k)) for k in uniques[table < 0]]
        raise PaletteError(f"has colours that are not in the palette: {listed(missing)}")
    return table.astype(np.uint8)[inverse.reshape(keys.shape)]


def _color_key(rgb: np.ndarray | Color) -> Any:
    rgb = np.asarray(rgb, dtype=np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _key_color(key: int) -> Color:
    return (key >> 16, (key >> 8) & 255, key & 255)


def _distinct_colors(rgb: np.ndarray) -> list[Color]:
    return [_key_color(int(k)) for k in np.unique(_color_key(rgb))]


# ----------------------------------------------------------------------------------------------
# Damaged files


def jpeg_is_complete(path: str | Path) -> bool:
    """True when the end-of-image marker FF D9 is near the end (PIL's verify() skips JPEG data).

    FF D9 cannot occur inside JPEG's compressed data, so a cut-off file does not have it.
    Introduced in `01_data.ipynb` (through `check-data`).
    """
    with open(path, "rb") as file:
        file.seek(max(0, file.seek(0, 2) - 1024))
        return b"\xff\xd9" in file.read()


def unreadable_reason(error: Exception, path: str | Path) -> str:
    """PIL's message without the full path, which the problem already names.

    Introduced in `01_data.ipynb` (through `check-data`).
    """
    text = str(error).replace(f"'{path}'", "").replace(str(path), "").strip()
    return text or type(error).__name__
