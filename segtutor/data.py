"""From a folder of images and masks on disk to pairs of tensors.

Introduced in the data notebook. The folder format (see DEVELOPERS.md)::

    DIR/images/<stem>.png|jpg|jpeg|bmp|tif|tiff    DIR/masks/<stem>.png    DIR/dataset.json (optional)

or the same under `DIR/train/` and `DIR/val/`. Images and masks are paired by file stem, never by
position: one missing file or a stray `.DS_Store` cannot shift every pair after it.

Everything that can be checked is checked once, when the dataset is built (`scan`), and every
problem is reported at once in one `DataError` that names the file and says what to do. Training
therefore never stops in the middle of an epoch, inside a DataLoader worker, on a bad file.

Masks hold class indices `0..num_classes-1`; 255 means "ignore this pixel". They may be stored as
8-bit greyscale (`L`), 16-bit (`I;16`), palette (`P`, the index is the class, as Pascal VOC stores
them) or colour (`RGB`) PNGs; colour masks are mapped to indices through an explicit palette.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision import tv_tensors

from segtutor.distributed import is_distributed
from segtutor.errors import DataError, Problem
from segtutor.settings import IGNORE_INDEX

__all__ = [
    "IMAGE_EXTENSIONS",
    "VOC_CLASS_NAMES",
    "VOC_PALETTE",
    "DatasetMeta",
    "DatasetReport",
    "SegmentationDataset",
    "load_splits",
    "make_loader",
    "read_image",
    "read_metadata",
    "scan",
    "scan_splits",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
"""File extensions read as images or masks (case-insensitive); every other file is ignored."""

LOSSY_EXTENSIONS = (".jpg", ".jpeg")

Color = tuple[int, int, int]
Transform = Callable[[tv_tensors.Image, tv_tensors.Mask], Any]


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


VOC_PALETTE: list[Color] = _voc_palette(21)
"""The 21 colours of Pascal VOC (background + 20 classes), `[(0, 0, 0), (128, 0, 0), ...]`."""

VOC_CLASS_NAMES = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]

# Colour masks saved from VOC draw object borders (index 255) in this colour: read it as ignore.
VOC_IGNORE_COLOR: Color = _voc_palette(256)[255]  # (224, 224, 192)

# Mask modes whose pixel values are class indices (P: the index into the PNG's palette).
_INDEX_MODES = {"1", "L", "LA", "P", "PA", "I", "I;16", "I;16L", "I;16B", "I;16N"}
_COLOR_MODES = {"RGB", "RGBA", "RGBX"}
_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
_LIST_LIMIT = 8  # how many files or values a message names before it says "and N more"


# ----------------------------------------------------------------------------------------------
# Metadata


@dataclass(frozen=True)
class DatasetMeta:
    """What `dataset.json` says about a dataset; every field may be missing.

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


def read_metadata(root: str | Path) -> DatasetMeta:
    """Read `dataset.json` from `root`, else from its parent (so `DIR/train` finds `DIR`'s).

    Args:
        root: the dataset folder (the one holding `images/` and `masks/`, or the splits).

    Returns:
        The metadata; an empty `DatasetMeta()` when neither folder has a `dataset.json`.

    Raises:
        DataError: the file is not valid JSON or a field has the wrong shape.
    """
    root = Path(root)
    path = next(
        (p for p in (root / "dataset.json", root.parent / "dataset.json") if p.is_file()), None
    )
    if path is None:
        return DatasetMeta()
    fix = 'see "Dataset folder format" in DEVELOPERS.md for the fields and an example'
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(Problem(path, f"is not valid JSON ({error})", fix)) from None
    if not isinstance(raw, dict):
        raise DataError(Problem(path, "must hold a JSON object {...}", fix))

    problems = []
    names = raw.get("class_names")
    if names is not None and not (
        isinstance(names, list) and all(isinstance(n, str) for n in names)
    ):
        problems.append(Problem(path, '"class_names" must be a list of strings', fix))
        names = None
    palette = raw.get("palette")
    if palette is not None:
        try:
            palette = [_as_color(c) for c in palette]
        except (TypeError, ValueError):
            problems.append(
                Problem(path, '"palette" must be a list of [r, g, b], each 0..255', fix)
            )
            palette = None
    if names and palette and len(names) != len(palette):
        problems.append(
            Problem(
                path,
                f"has {len(names)} class_names but {len(palette)} palette colours",
                "give one colour per class",
            )
        )
    ignore_index = raw.get("ignore_index", IGNORE_INDEX)
    if ignore_index != IGNORE_INDEX:
        problems.append(
            Problem(
                path,
                f'"ignore_index" is {ignore_index!r}; segtutor uses 255',
                "rewrite the masks so ignored pixels are 255, then set it to 255",
            )
        )
    if problems:
        raise DataError(problems)
    return DatasetMeta(
        path, raw.get("name"), names, palette, IGNORE_INDEX, raw.get("description", "")
    )


def _as_color(value: Sequence[int]) -> Color:
    r, g, b = (int(v) for v in value)  # ValueError unless exactly three numbers
    if not all(0 <= v <= 255 for v in (r, g, b)):
        raise ValueError(f"colour {value} is outside 0..255")
    return (r, g, b)


# ----------------------------------------------------------------------------------------------
# Decoding: the only two functions that turn files into arrays


def _decode_image(path: Path) -> np.ndarray:
    """Read any supported image as RGB uint8, shape `(H, W, 3)`.

    Greyscale, palette and RGBA (alpha dropped) become RGB. 16-bit images are scaled from their
    full range 0..65535 to 0..255, so that every image of a dataset is scaled the same way (an
    image that uses only 12 of its 16 bits looks dark: rescale such images yourself).
    """
    with Image.open(path) as img:
        if img.mode in _SIXTEEN_BIT_MODES:
            grey = np.asarray(img).astype(np.int64).clip(0, 65535) // 257  # (H, W) 0..255
            return np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)
        if img.mode != "RGB":
            img = img.convert("RGB")
        return np.array(img)  # a writable copy, as torch.from_numpy wants


def read_image(path: str | Path) -> np.ndarray:
    """Read one image file as RGB uint8, shape `(H, W, 3)` (for prediction on new images).

    Raises:
        DataError: the file cannot be read as an image; the message names it.
    """
    path = Path(path)
    try:
        return _decode_image(path)
    except Exception as error:  # PIL raises many types; the user needs the file name
        raise DataError(
            Problem(path, f"cannot be read as an image ({_reason(error, path)})",
                    f"check the file, or use one of {', '.join(IMAGE_EXTENSIONS)}")
        ) from error  # fmt: skip


class _PaletteError(ValueError):
    """A colour mask that the palette cannot map; the message names the colours."""


def _decode_mask(path: Path, palette: Sequence[Color] | None, binary_255: bool) -> np.ndarray:
    """Read a mask as integer class indices, shape `(H, W)` (uint8, or wider for 16-bit files).

    Raises:
        _PaletteError: a colour mask with no palette, or with colours the palette lacks; the message
            names the colours.
    """
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


def _colors_to_indices(rgb: np.ndarray, palette: Sequence[Color] | None) -> np.ndarray:
    """Map an `(H, W, 3)` colour mask to `(H, W)` uint8 indices through `palette`."""
    if palette is None:
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            return rgb[..., 0].copy()  # a greyscale mask that was saved as RGB
        colors = _distinct_colors(rgb)
        hint = (
            "; these are Pascal VOC colours: pass palette=VOC_PALETTE"
            if set(colors) <= {*VOC_PALETTE, VOC_IGNORE_COLOR}
            else ""
        )
        raise _PaletteError(
            f"is a colour mask but no palette was given (its colours: {_listed(colors)}){hint}"
        )
    lookup = {_color_key(c): i for i, c in enumerate(palette)}
    lookup.setdefault(_color_key(VOC_IGNORE_COLOR), IGNORE_INDEX)
    keys = _color_key(rgb)  # (H, W) one int per colour
    uniques, inverse = np.unique(keys, return_inverse=True)
    table = np.array([lookup.get(int(k), -1) for k in uniques])
    if (table < 0).any():
        missing = [_key_color(int(k)) for k in uniques[table < 0]]
        raise _PaletteError(f"has colours that are not in the palette: {_listed(missing)}")
    return table.astype(np.uint8)[inverse.reshape(keys.shape)]


def _color_key(rgb: np.ndarray | Color) -> Any:
    rgb = np.asarray(rgb, dtype=np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _key_color(key: int) -> Color:
    return (key >> 16, (key >> 8) & 255, key & 255)


def _distinct_colors(rgb: np.ndarray) -> list[Color]:
    return [_key_color(int(k)) for k in np.unique(_color_key(rgb))]


def _listed(items: Sequence[Any], limit: int = _LIST_LIMIT) -> str:
    """`a, b, c` or `a, b, ... and 12 more`: messages stay readable for big datasets."""
    shown = ", ".join(str(x) for x in items[:limit])
    return f"{shown} ... and {len(items) - limit} more" if len(items) > limit else shown


# ----------------------------------------------------------------------------------------------
# Scanning: find the pairs, read headers, decode masks once, collect every problem


@dataclass
class DatasetReport:
    """What `scan` found in one `images/` + `masks/` folder; `check-data` prints it.

    Per-pair lists are aligned with `stems` (sorted). `label_counts[i]` maps each value found in
    mask i (after `binary_255`) to its pixel count; it is None where the mask was not decoded.
    """

    root: Path
    meta: DatasetMeta = field(default_factory=DatasetMeta)
    stems: list[str] = field(default_factory=list)
    image_paths: list[Path] = field(default_factory=list)
    mask_paths: list[Path] = field(default_factory=list)
    image_sizes: list[tuple[int, int]] = field(default_factory=list)  # (W, H)
    image_modes: list[str] = field(default_factory=list)
    mask_modes: list[str] = field(default_factory=list)
    label_counts: list[dict[int, int] | None] = field(default_factory=list)
    num_classes: int | None = None
    class_names: list[str] = field(default_factory=list)
    palette: list[Color] | None = None
    binary_255: bool = False
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth knowing, not blocking
    ignored: list[Path] = field(default_factory=list)  # hidden files and non-images
    masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # kept for the cache

    @property
    def ok(self) -> bool:
        """True when the dataset can be used (no problems)."""
        return not self.problems

    @property
    def size_histogram(self) -> Counter[str]:
        """How many images have each size, keyed `"WxH"`."""
        return Counter(f"{w}x{h}" for w, h in self.image_sizes)

    @property
    def value_counts(self) -> dict[int, int]:
        """Pixel count of every mask value over the whole dataset (255 included), sorted."""
        total: Counter[int] = Counter()
        for counts in self.label_counts:
            total.update(counts or {})
        return dict(sorted(total.items()))

    def pixel_counts(self, stems: Iterable[str] | None = None) -> np.ndarray:
        """Pixels per class, int64 `(num_classes,)`, 255 excluded; over `stems` (default: all)."""
        wanted = None if stems is None else set(stems)
        out = np.zeros(self.num_classes or 0, dtype=np.int64)
        for stem, counts in zip(self.stems, self.label_counts, strict=True):
            if counts and (wanted is None or stem in wanted):
                for value, n in counts.items():
                    if value < out.size:
                        out[value] += n
        return out


def scan(
    root: str | Path,
    num_classes: int | None = None,
    binary_255: bool = False,
    *,
    palette: Sequence[Color] | None = None,
    class_names: Sequence[str] | None = None,
    keep_masks: bool = False,
    decode_images: bool = False,
) -> DatasetReport:
    """Check one dataset folder (`root/images` + `root/masks`) and describe it; never raises.

    Reads image headers (size, mode) without decoding pixels, verifies image files (PNG: every
    chunk's checksum; JPEG: the end marker), and decodes each mask once to collect its label
    values. Every problem found goes into `report.problems`.

    Args:
        root: folder holding `images/` and `masks/`.
        num_classes: number of classes; None infers it from `class_names`, `dataset.json`, 2 with
            `binary_255`, or else the largest label + 1 (255 excluded).
        binary_255: read 255 as class 1 (for 0/255 binary masks) instead of "ignore".
        palette: colours mapping RGB masks to class indices (default: `dataset.json`'s palette).
        class_names: one name per class (default: `dataset.json`'s, else `class_0..`).
        keep_masks: keep the decoded masks in `report.masks` (the dataset cache uses them).
        decode_images: decode every image too: slower, but also finds damage that headers do
            not show (a truncated BMP or TIFF). `check-data` does this.

    Returns:
        The report; `report.ok` says whether the dataset is usable.
    """
    options = _Options(binary_255, palette, class_names, keep_masks, decode_images)
    return _scan_many({"all": Path(root)}, num_classes, options)["all"]


def scan_splits(
    root: str | Path,
    num_classes: int | None = None,
    binary_255: bool = False,
    *,
    palette: Sequence[Color] | None = None,
    class_names: Sequence[str] | None = None,
    decode_images: bool = False,
) -> dict[str, DatasetReport]:
    """`scan` every split of a dataset: `{"train": ..., "val": ...}`, or `{"all": ...}`.

    With splits, `num_classes` is inferred over all of them together, so that a class missing
    from the validation set does not change its number of classes.
    Any other folder of `root` that holds an `images/` folder (e.g. `test/`) is a split too.
    Arguments as for `scan`.
    """
    root = Path(root)
    splits = {p.name: p for p in _split_folders(root)} or {"all": root}
    options = _Options(binary_255, palette, class_names, decode_images=decode_images)
    return _scan_many(splits, num_classes, options)


@dataclass(frozen=True)
class _Options:
    """How to read a dataset; the arguments of `scan`, passed down as one."""

    binary_255: bool = False
    palette: Sequence[Color] | None = None
    class_names: Sequence[str] | None = None
    keep_masks: bool = False
    decode_images: bool = False


def _split_folders(root: Path) -> list[Path]:
    """`root/train`, `root/val`, ... when root has splits instead of its own `images/`."""
    if not root.is_dir() or (root / "images").is_dir() or (root / "masks").is_dir():
        return []
    subs = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    has_images = [p for p in subs if (p / "images").is_dir() or (p / "masks").is_dir()]
    if not any(p.name in ("train", "val") for p in has_images):
        return []
    return sorted(has_images, key=lambda p: (p.name != "train", p.name != "val", p.name))


def _scan_many(
    folders: dict[str, Path], num_classes: int | None, options: _Options
) -> dict[str, DatasetReport]:
    """Scan several folders of one dataset, then check labels against one shared num_classes."""
    reports = {}
    for name, folder in folders.items():
        report = DatasetReport(root=folder, binary_255=options.binary_255)
        _collect(report, options)
        reports[name] = report

    # num_classes: given > class names > 2 for binary_255 masks > largest label + 1.
    first = next(iter(reports.values()))
    class_names = options.class_names
    names = list(class_names) if class_names is not None else first.meta.class_names
    labels = {v for r in reports.values() for v in r.value_counts if v != IGNORE_INDEX}
    inferred = num_classes is None and names is None and not options.binary_255
    if num_classes is None:
        if names:
            num_classes = len(names)
        elif options.binary_255:  # so that stray values (anti-aliased edges) are reported
            num_classes = 2
        else:
            num_classes = max(labels) + 1 if labels else None
    for report in reports.values():
        report.num_classes = num_classes
        report.class_names = (
            list(names) if names else [f"class_{k}" for k in range(num_classes or 0)]
        )
        _check_labels(report, inferred)
    return reports


def _collect(report: DatasetReport, options: _Options) -> None:
    """Fill `report` for one folder: layout, pairs, headers, decoded mask statistics."""
    root, problems = report.root, report.problems
    if not _layout_ok(root, problems):
        return
    try:
        report.meta = read_metadata(root)
    except DataError as error:
        problems.extend(error.problems)
    palette, class_names = options.palette, options.class_names
    report.palette = list(palette) if palette is not None else report.meta.palette
    if class_names is not None and report.palette and len(report.palette) < len(class_names):
        problems.append(
            Problem(
                root,
                f"the palette has {len(report.palette)} colours for {len(class_names)} classes",
                "give one colour per class",
            )
        )

    images, ignored_images = _list_images(root / "images", problems)
    masks, ignored_masks = _list_images(root / "masks", problems)
    report.ignored = ignored_images + ignored_masks
    if report.ignored:
        report.notes.append(
            f"ignored {len(report.ignored)} files that are not images or are "
            f"hidden: {_listed([p.name for p in report.ignored])}"
        )
    _pair(root, images, masks, report)

    found: dict[str, list[tuple[Path, str]]] = {kind: [] for kind in _PAIR_PROBLEMS}
    for stem, image_path, mask_path in zip(
        report.stems, report.image_paths, report.mask_paths, strict=True
    ):
        _check_pair(report, stem, image_path, mask_path, found, options)
    for kind, (folder, message, fix) in _PAIR_PROBLEMS.items():
        _add(problems, root / folder, found[kind], message, fix)


# kind -> (folder named when many files share it, message, fix)
_PAIR_PROBLEMS = {
    "unreadable": ("", "cannot be read (unreadable or truncated):",
                   "re-export or re-download the file, or remove the pair"),
    "unsupported": ("", "has an unsupported pixel format:", "save images as 8-bit RGB or "
                    "greyscale, masks as 8-bit greyscale or palette PNG"),
    "size": ("masks", "differs in size from its image:", "save each mask at the exact size of "
             "its image (resize masks with nearest neighbour, never bilinear)"),
    "lossy": ("masks", "is a JPEG mask: lossy compression changes label values near every edge",
              "save masks as PNG (lossless) with the same stem"),
    "colour": ("masks", "", 'put the colours in dataset.json "palette" (one [r, g, b] per class, '
               "index order), or pass palette=[...]; masks of class indices (greyscale or "
               "palette PNGs) need none"),
}  # fmt: skip


def _check_pair(
    report: DatasetReport,
    stem: str,
    image_path: Path,
    mask_path: Path,
    found: dict[str, list[tuple[Path, str]]],
    options: _Options,
) -> None:
    """Read the image header and the whole mask of one pair; note what is wrong in `found`."""
    image_size, image_mode = (0, 0), "?"
    try:  # header only, plus verify() (reads the file, checks its structure, decodes nothing)
        with Image.open(image_path) as img:
            image_size, image_mode, image_format = img.size, img.mode, img.format
            img.verify()
        if options.decode_images:
            _decode_image(image_path)
        elif image_format == "JPEG" and not _has_jpeg_end(image_path):
            raise OSError("image file is truncated (no JPEG end marker)")
    except Exception as error:  # PIL raises many types; any of them means "unreadable"
        found["unreadable"].append((image_path, _reason(error, image_path)))
    if image_mode == "F":
        found["unsupported"].append((image_path, "32-bit float"))
    report.image_sizes.append(image_size)
    report.image_modes.append(image_mode)

    mask_mode, counts = "?", None
    try:
        with Image.open(mask_path) as img:
            mask_size, mask_mode, mask_format = img.size, img.mode, img.format
    except Exception as error:
        found["unreadable"].append((mask_path, _reason(error, mask_path)))
    else:
        if image_mode != "?" and mask_size != image_size:
            rotated = " (rotated: EXIF orientation?)" if mask_size == image_size[::-1] else ""
            found["size"].append((mask_path, f"mask {mask_size[0]}x{mask_size[1]}, image "
                                  f"{image_path.name} {image_size[0]}x{image_size[1]}{rotated}"))  # fmt: skip
        if mask_format == "JPEG" or mask_path.suffix.lower() in LOSSY_EXTENSIONS:
            found["lossy"].append((mask_path, ""))  # its values are noise: do not count them
        elif mask_mode not in _INDEX_MODES | _COLOR_MODES:
            found["unsupported"].append((mask_path, mask_mode))
        else:
            try:
                labels = _decode_mask(mask_path, report.palette, report.binary_255)
            except _PaletteError as error:
                found["colour"].append((mask_path, str(error)))
            except Exception as error:  # truncated or corrupt: the full decode is the check
                found["unreadable"].append((mask_path, _reason(error, mask_path)))
            else:
                counts = _count_values(labels)
                if options.keep_masks:
                    report.masks[stem] = labels
    report.mask_modes.append(mask_mode)
    report.label_counts.append(counts)


def _has_jpeg_end(path: Path) -> bool:
    """True when the end-of-image marker FF D9 is near the end (verify() skips JPEG data).

    FF D9 cannot occur inside JPEG's compressed data, so a cut-off file does not have it.
    """
    with open(path, "rb") as file:
        file.seek(max(0, file.seek(0, 2) - 1024))
        return b"\xff\xd9" in file.read()


def _reason(error: Exception, path: Path) -> str:
    """PIL's message without the full path, which the problem already names."""
    return (
        str(error).replace(f"'{path}'", "").replace(str(path), "").strip() or type(error).__name__
    )


def _layout_ok(root: Path, problems: list[Problem]) -> bool:
    """Check that root is a folder with `images/` and `masks/`; explain the usual mistakes."""
    if not root.exists():
        problems.append(
            Problem(
                root,
                "does not exist",
                f"check the path (relative paths start in the current folder, {Path.cwd()})",
            )
        )
        return False
    if not root.is_dir():
        problems.append(
            Problem(
                root,
                "is a file, not a folder",
                "point at the dataset folder that holds images/ and masks/",
            )
        )
        return False
    if root.name in ("images", "masks") and (
        (root.parent / "images").is_dir() or (root.parent / "masks").is_dir()
    ):
        problems.append(
            Problem(
                root,
                f"is the {root.name}/ folder itself, not a dataset",
                f"point at the parent folder {root.parent}",
            )
        )
        return False
    if _split_folders(root):
        names = ", ".join(p.name + "/" for p in _split_folders(root))
        problems.append(
            Problem(
                root,
                f"holds splits ({names}), not images/ + masks/",
                f"use load_splits({str(root)!r}), or point at one split, e.g. {root / 'train'}",
            )
        )
        return False
    ok = True
    others = [
        p.name + "/"
        for p in sorted(root.iterdir())
        if p.is_dir() and p.name not in ("images", "masks") and not p.name.startswith(".")
    ]
    for name in ("images", "masks"):
        if not (root / name).is_dir():
            hint = (
                f" (found {', '.join(others)}: rename the one that holds the {name})"
                if others
                else ""
            )
            problems.append(
                Problem(
                    root,
                    f"has no {name}/ folder{hint}",
                    f"put the {name} in {root / name}, one file per sample, "
                    "mask and image with the same file stem",
                )
            )
            ok = False
    return ok


def _list_images(folder: Path, problems: list[Problem]) -> tuple[dict[str, Path], list[Path]]:
    """Map stem -> file for the images in `folder`; hidden files, folders and others are ignored."""
    by_stem: dict[str, list[Path]] = {}
    ignored = []
    for path in sorted(folder.iterdir()):
        # `.DS_Store`, `._a.png` (macOS), `Thumbs.db`, `notes.txt`, sub-folders: not samples
        if (
            path.name.startswith(".")
            or not path.is_file()
            or path.suffix.lower() not in IMAGE_EXTENSIONS
        ):
            ignored.append(path)
        else:
            by_stem.setdefault(path.stem, []).append(path)
    duplicates = [
        (paths[0], f"{' and '.join(p.name for p in paths[1:])} (which one is the sample?)")
        for paths in by_stem.values()
        if len(paths) > 1
    ]
    _add(problems, folder, duplicates, "has the same stem as",
         "keep one file per stem (delete or rename the others)")  # fmt: skip
    if not by_stem:
        kinds = sorted({p.suffix.lower() or p.name for p in ignored if not p.name.startswith(".")})
        found = f" (found only: {_listed(kinds)})" if kinds else ""
        problems.append(
            Problem(
                folder,
                f"has no {folder.name}{found}",
                f"put files with extensions {', '.join(IMAGE_EXTENSIONS)} here",
            )
        )
    # a duplicated stem stays paired (with its first file), so it is reported once, not twice
    return {stem: paths[0] for stem, paths in by_stem.items()}, ignored


def _pair(
    root: Path, images: dict[str, Path], masks: dict[str, Path], report: DatasetReport
) -> None:
    """Pair by stem; report the stems that have no partner, on either side."""
    if not images or not masks:
        return  # already reported as an empty folder
    no_mask = sorted(images.keys() - masks.keys())
    no_image = sorted(masks.keys() - images.keys())
    if no_mask:
        report.problems.append(
            Problem(
                root / "images",
                f"{len(no_mask)} images have no mask with the same stem: {_listed(no_mask)}",
                "add masks/<stem>.png for each, or remove those images",
            )
        )
    if no_image:
        report.problems.append(
            Problem(
                root / "masks",
                f"{len(no_image)} masks have no image with the same stem: {_listed(no_image)}",
                "add the images, or remove "
                "those masks (masks are paired by file name, e.g. a.png <-> a.jpg)",
            )
        )
    for stem in sorted(images.keys() & masks.keys()):
        report.stems.append(stem)
        report.image_paths.append(images[stem])
        report.mask_paths.append(masks[stem])


def _count_values(labels: np.ndarray) -> dict[int, int]:
    """`{value: pixels}` of one mask; bincount is the fast path for the usual uint8 masks."""
    if labels.dtype == np.uint8:
        counts = np.bincount(labels.ravel(), minlength=256)
        return {int(v): int(counts[v]) for v in np.flatnonzero(counts)}
    values, counts = np.unique(labels, return_counts=True)
    return {int(v): int(n) for v, n in zip(values, counts, strict=True)}


def _check_labels(report: DatasetReport, inferred: bool) -> None:
    """Problems that depend on num_classes: 0/255 binary masks, out-of-range labels."""
    root, k = report.root, report.num_classes
    if not report.stems:
        return
    values = report.value_counts
    total = sum(values.values())
    if not report.binary_255 and values.get(IGNORE_INDEX) and total:
        binary = values.get(0, 0) + values[IGNORE_INDEX]
        if binary / total > 0.99 and values[IGNORE_INDEX] / total > 0.001:
            report.problems.append(
                Problem(
                    root / "masks",
                    "the masks look like 0/255 binary masks: "
                    f"{100 * values[IGNORE_INDEX] / total:.1f}% of pixels are 255, which segtutor reads "
                    "as 'ignore', so the model would never see the foreground",
                    "pass binary_255=True (command line: --binary-255) to read 255 as class 1, or "
                    "resave the masks with values 0 and 1",
                )
            )
            return  # other label complaints would only repeat this one
    if k is None:
        return
    if not 1 <= k <= 255:
        report.problems.append(
            Problem(
                root,
                f"num_classes={k} is not in 1..255 (255 means ignore)",
                "give the number of classes, background included",
            )
        )
        return
    if len(report.class_names) != k:
        report.problems.append(
            Problem(
                root,
                f"{len(report.class_names)} class names for num_classes={k}",
                "give one name per class",
            )
        )
    if inferred and k < 2:
        report.problems.append(
            Problem(
                root / "masks",
                "every mask is 0 (background only): there is nothing to learn",
                "check that the masks were saved with class values 1, 2, ... (not as black images)",
            )
        )
        return
    bad = []
    for path, counts in zip(report.mask_paths, report.label_counts, strict=True):
        outside = [v for v in (counts or {}) if v >= k and v != IGNORE_INDEX]
        if outside:
            bad.append((path, f"has {_listed(outside)}"))
    _add(
        report.problems,
        root / "masks",
        bad,
        f"label values outside 0..{k - 1} (num_classes={k}; 255 means ignore):",
        f"if those are classes, pass num_classes={_largest(report) + 1}; otherwise fix those masks",
    )
    for c in np.flatnonzero(report.pixel_counts() == 0):
        report.notes.append(f"class {c} ({report.class_names[c]}) has no pixels in {root}")


def _largest(report: DatasetReport) -> int:
    return max(v for v in report.value_counts if v != IGNORE_INDEX)


def _add(
    problems: list[Problem], folder: Path, items: list[tuple[Path, str]], message: str, fix: str
) -> None:
    """One problem per file for a few files; one problem on `folder` listing them for many."""
    if len(items) <= _LIST_LIMIT:
        problems.extend(Problem(path, f"{message} {detail}".strip(), fix) for path, detail in items)
    else:
        listed = _listed([f"{path.name} {detail}".strip() for path, detail in items])
        problems.append(Problem(folder, f"{len(items)} files: {message} {listed}".strip(), fix))


# ----------------------------------------------------------------------------------------------
# The dataset


class SegmentationDataset(torch.utils.data.Dataset):
    """Pairs of `image` and `mask` from `root/images` + `root/masks`, checked when built.

    Args:
        root: folder holding `images/` and `masks/` (and optionally `dataset.json`).
        num_classes: number of classes, background included; None infers it (see `scan`).
        transform: callable `(image, mask) -> (image, mask)`, e.g. `segtutor.transforms`'s. It
            receives a uint8 `tv_tensors.Image (3, H, W)` and an int64 `tv_tensors.Mask (H, W)`.
        cache: keep decoded uint8 samples in memory, so that later epochs decode no PNG. The cache
            lives in each process: DataLoader workers fill their own copies, which die with them
            unless `persistent_workers=True`. Masks decoded for validation are kept at once.
        binary_255: read 255 as class 1 (0/255 binary masks) instead of "ignore".
        palette: one `(r, g, b)` per class; maps colour masks to indices (e.g. `VOC_PALETTE`).
        class_names: one name per class.

    Raises:
        DataError: listing every problem found (see `scan`), before any training starts.

    Shape:
        `ds[i]` -> `transform(image, mask)`, or without a transform `(image, mask)` with image
        float32 `(3, H, W)` in 0..1 and mask int64 `(H, W)` of class indices, 255 = ignore.

    Example:
        >>> ds = SegmentationDataset("data_samples/scenes/train", cache=True)
        >>> image, mask = ds[0]
    """

    def __init__(
        self,
        root: str | Path,
        *,
        num_classes: int | None = None,
        transform: Transform | None = None,
        cache: bool = False,
        binary_255: bool = False,
        palette: Sequence[Color] | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        report = scan(
            root,
            num_classes,
            binary_255,
            palette=palette,
            class_names=class_names,
            keep_masks=cache,
        )
        if report.problems:
            raise DataError(report.problems)
        self._init_from(report, transform, cache)

    @classmethod
    def from_report(
        cls, report: DatasetReport, *, transform: Transform | None = None, cache: bool = False
    ) -> SegmentationDataset:
        """Build a dataset from a `scan` report without scanning again.

        Raises:
            DataError: the report has problems.
        """
        if report.problems:
            raise DataError(report.problems)
        dataset = cls.__new__(cls)
        dataset._init_from(report, transform, cache)
        return dataset

    def _init_from(self, report: DatasetReport, transform: Transform | None, cache: bool) -> None:
        self.root = report.root
        self.report = report
        self.stems = list(report.stems)
        self.image_paths = list(report.image_paths)
        self.mask_paths = list(report.mask_paths)
        self.num_classes: int = report.num_classes or 0
        self.class_names = list(report.class_names)
        self.palette = report.palette  # None: viewers use their default (segtutor.viz)
        self.binary_255 = report.binary_255
        self.transform = transform
        self.cache = cache
        self._images: dict[str, torch.Tensor] = {}  # stem -> uint8 (3, H, W)
        self._masks: dict[str, torch.Tensor] = {}  # stem -> uint8 (H, W); < 256 once validated
        if cache:
            self._masks = {
                s: torch.from_numpy(m.astype(np.uint8, copy=False)) for s, m in report.masks.items()
            }
        report.masks = {}  # the report should not hold a second reference to every mask

    def subset(self, stems: Iterable[str]) -> SegmentationDataset:
        """The samples with the given stems, sharing this dataset's checks and cache."""
        index = {s: i for i, s in enumerate(self.stems)}
        missing = [s for s in stems if s not in index]
        if missing:
            raise KeyError(f"stems not in {self.root}: {_listed(missing)}")
        keep = sorted(index[s] for s in set(stems))
        part = object.__new__(type(self))
        part.__dict__.update(self.__dict__)  # shares the cache dicts: decode once for both
        part.stems = [self.stems[i] for i in keep]
        part.image_paths = [self.image_paths[i] for i in keep]
        part.mask_paths = [self.mask_paths[i] for i in keep]
        return part

    @property
    def pixel_counts(self) -> torch.Tensor:
        """Pixels per class over these samples, int64 `(num_classes,)` (for class weights)."""
        return torch.from_numpy(self.report.pixel_counts(self.stems))

    def __len__(self) -> int:
        return len(self.stems)

    def read_sample(self, index: int) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
        """The raw pair: image uint8 `(3, H, W)`, mask int64 `(H, W)`; no transform.

        Raises:
            DataError: a file changed since the dataset was checked and cannot be decoded.
        """
        stem = self.stems[index]
        image = self._images.get(stem)
        mask = self._masks.get(stem)
        if image is None:
            image = self._load(self.image_paths[index], _decode_image)
            # (H, W, 3) -> (3, H, W) as a view: copying into channel-first order would cost as
            # much as the decode, and every torch op accepts the strides as they are
            image = torch.from_numpy(image).permute(2, 0, 1)
            if self.cache:
                self._images[stem] = image
        elif self.cache:
            image = image.clone()  # a transform that writes in place must not change the cache
        if mask is None:
            mask = torch.from_numpy(
                self._load(self.mask_paths[index], _decode_mask, self.palette, self.binary_255)
            )
            if self.cache:
                self._masks[stem] = mask
        if image.shape[1:] != mask.shape:
            raise DataError(
                Problem(
                    self.mask_paths[index],
                    f"mask {tuple(mask.shape)} and image "
                    f"{tuple(image.shape[1:])} sizes differ (changed since checked?)",
                    "run `python -m segtutor check-data` on the folder again",
                )
            )
        return tv_tensors.Image(image), tv_tensors.Mask(mask.long())

    @staticmethod
    def _load(path: Path, decode: Callable[..., np.ndarray], *args: Any) -> np.ndarray:
        try:
            return decode(path, *args)
        except Exception as error:  # the file was fine when checked: say which one broke
            raise DataError(
                Problem(
                    path,
                    f"could not be decoded, though it was fine when the "
                    f"dataset was built ({error})",
                    "restore the file, then run "
                    "`python -m segtutor check-data` on the folder again",
                )
            ) from error

    def __getitem__(self, index: int) -> Any:
        image, mask = self.read_sample(index)
        if self.transform is not None:
            return self.transform(image, mask)
        # in place: one float copy of the image, not two
        return image.as_subclass(torch.Tensor).float().div_(255), mask.as_subclass(torch.Tensor)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.root)!r}, {len(self)} samples, "
            f"num_classes={self.num_classes}, cache={self.cache})"
        )


_DATASET_KWARGS = {"num_classes", "transform", "cache", "binary_255", "palette", "class_names"}


def load_splits(
    root: str | Path,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    train_transform: Transform | None = None,
    val_transform: Transform | None = None,
    **dataset_kwargs: Any,
) -> tuple[SegmentationDataset, SegmentationDataset]:
    """Train and validation datasets: `root/train` + `root/val`, else one pool split by stem.

    A pool is split by hashing each stem with the seed: a stem goes to validation when its hash
    falls below `val_fraction`. The split is the same on every run and machine, and adding files
    never moves an existing stem to the other side. (If that leaves one side empty, the stem with
    the lowest hash moves, so a tiny pool still gets one validation sample.)

    Args:
        root: dataset folder, with `train/` and `val/` or with `images/` and `masks/`.
        val_fraction: share of a pool that goes to validation.
        seed: changes which stems are drawn.
        train_transform: transform of the training set (default: `transform` if given).
        val_transform: transform of the validation set (default: `transform` if given).
        **dataset_kwargs: `num_classes`, `transform`, `cache`, `binary_255`, `palette`,
            `class_names`, as for `SegmentationDataset`.

    Returns:
        `(train_ds, val_ds)`, checked together (one `DataError` lists the problems of both) and
        sharing one `num_classes`.
    """
    root = Path(root)
    unknown = set(dataset_kwargs) - _DATASET_KWARGS
    if unknown:  # a typo such as `num_class=3` must not be silently ignored
        raise TypeError(f"load_splits() got unexpected keyword arguments: {sorted(unknown)}")
    transform = dataset_kwargs.get("transform")
    cache = bool(dataset_kwargs.get("cache", False))
    options = _Options(
        binary_255=bool(dataset_kwargs.get("binary_255", False)),
        palette=dataset_kwargs.get("palette"),
        class_names=dataset_kwargs.get("class_names"),
        keep_masks=cache,
    )
    folders = {p.name: p for p in _split_folders(root) if p.name in ("train", "val")}
    if "val" not in folders:  # one pool: root itself, or root/train alone
        folders = {"all": folders.get("train", root)}
    reports = _scan_many(folders, dataset_kwargs.get("num_classes"), options)
    problems = [p for r in reports.values() for p in r.problems]
    if problems:
        raise DataError(problems)
    train_t = train_transform if train_transform is not None else transform
    val_t = val_transform if val_transform is not None else transform
    if "val" in reports:
        return (
            SegmentationDataset.from_report(reports["train"], transform=train_t, cache=cache),
            SegmentationDataset.from_report(reports["val"], transform=val_t, cache=cache),
        )

    pool = SegmentationDataset.from_report(reports["all"], cache=cache)
    train_stems, val_stems = _split_stems(pool.stems, val_fraction, seed)
    train_ds, val_ds = pool.subset(train_stems), pool.subset(val_stems)
    train_ds.transform, val_ds.transform = train_t, val_t
    return train_ds, val_ds


def _split_stems(
    stems: Sequence[str], val_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """Deterministic split: each stem's side depends only on (seed, stem)."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")

    def draw(stem: str) -> float:  # uniform in [0, 1), the same on every machine (unlike hash())
        return int(hashlib.sha1(f"{seed}:{stem}".encode()).hexdigest()[:15], 16) / 16**15

    val = [s for s in stems if draw(s) < val_fraction]
    if val_fraction > 0 and len(stems) >= 2 and len(val) in (0, len(stems)):
        by_draw = sorted(stems, key=draw)
        val = by_draw[:1] if not val else by_draw[:-1]
    chosen = set(val)
    return [s for s in stems if s not in chosen], [s for s in stems if s in chosen]


# --- loaders ---------------------------------------------------------------------------------


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker with base_seed + worker_id; python and numpy must follow, or every
    # worker would draw the same "random" augmentations.
    worker_seed = torch.initial_seed() % 2**32
    random.seed(worker_seed)
    np.random.seed(worker_seed)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    **kwargs: Any,
) -> DataLoader:
    """A `DataLoader` whose shuffling and worker randomness repeat for the same `seed`.

    The shuffling order comes from its own `torch.Generator` (`loader.generator`), so it does not
    depend on how many random numbers the model drew; `fit` saves and restores that generator
    when it checkpoints and resumes. Extra keyword arguments go to `DataLoader`.

    Use `batch_size=1` for validation sets whose images have different sizes.

    Under torchrun (see `segtutor.distributed`), `shuffle=True` gives each process its own share
    of every epoch through a `DistributedSampler(seed=seed)`, and `batch_size` is per process: one
    optimizer step sees `world_size * batch_size` images. A loader with `shuffle=False` is not
    split here; `fit` and `evaluate` split validation batches among the processes themselves.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    if shuffle and is_distributed() and "sampler" not in kwargs:
        # One seeded permutation, the same in every process; each takes every world_size-th item.
        # fit calls sampler.set_epoch(epoch), so that each epoch has a new permutation.
        kwargs["sampler"] = DistributedSampler(dataset, shuffle=True, seed=seed)
        shuffle = False  # the sampler shuffles
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=generator,
        worker_init_fn=_seed_worker,
        persistent_workers=num_workers > 0,
        **kwargs,
    )
