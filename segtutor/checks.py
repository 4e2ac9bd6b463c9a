"""The checks every dataset passes before training: the engine of `check-data` (the mask doctor).

Introduced in `01_data.ipynb`. `scan(root)` looks at one `images/` + `masks/` folder once:

1. the layout (`_layout_problems`): the folder exists, holds `images/` and `masks/`, is not
   one of them or a folder of splits;
2. the files (`_list_samples`, `_pair`): images and masks listed with `formats.is_image_file`
   and paired by file stem, never by position;
3. each pair (`_check_image`, `_check_mask`): image headers and sizes, and each mask decoded
   once with `formats.decode_mask` to count its label values;
4. the labels (`_check_labels`): against one `num_classes` shared by every split.

It never raises: every problem goes into `DatasetReport.problems`, each naming the file and
saying what to do. `SegmentationDataset` raises them all at once in one `DataError`, so that
training never stops in the middle of an epoch, inside a DataLoader worker, on a bad file.
This module is a flat list of small functions, in that order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from segtutor.errors import LIST_LIMIT, DataError, Problem, listed
from segtutor.formats import (
    IMAGE_EXTENSIONS,
    LOSSY_EXTENSIONS,
    MASK_MODES,
    Color,
    DatasetMeta,
    LabelMapError,
    PaletteError,
    decode_image,
    decode_mask,
    is_image_file,
    jpeg_is_complete,
    read_metadata,
    unreadable_reason,
)
from segtutor.layouts import (
    MASK_FOLDERS,
    FolderNames,
    Layout,
    SplitFiles,
    mask_folder,
    mask_suffix,
    split_files,
)
from segtutor.settings import IGNORE_INDEX

__all__ = [
    "DatasetReport",
    "scan",
    "scan_folders",
    "scan_files",
    "scan_layout",
    "scan_splits",
    "split_folders",
]


@dataclass
class DatasetReport:
    """What `scan` found in one `images/` + `masks/` folder; `check-data` prints it.

    Introduced in `01_data.ipynb`. Per-pair lists are aligned with `stems` (sorted).
    `label_counts[i]` maps each value found in mask i (after `binary_255`) to its pixel count;
    it is None where the mask was not decoded.
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
    layout: Layout | None = None  # a famous dataset as it ships; None: images/ + masks/
    lookup: np.ndarray | None = field(default=None, repr=False)  # the layout's value table
    names: FolderNames = field(default_factory=FolderNames)  # masks/<stem>.png, labels/, ...

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
                    if 0 <= value < out.size:
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
    values. Every problem found goes into `report.problems`. Introduced in `01_data.ipynb`.

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
    from the validation set does not change its number of classes. Any other folder of `root`
    that holds an `images/` folder (e.g. `test/`) is a split too. Arguments as for `scan`.
    Introduced in `01_data.ipynb` (through `check-data`).
    """
    root = Path(root)
    splits = {p.name: p for p in split_folders(root)} or {"all": root}
    options = _Options(binary_255, palette, class_names, decode_images=decode_images)
    return _scan_many(splits, num_classes, options)


def scan_folders(
    folders: dict[str, Path],
    num_classes: int | None = None,
    binary_255: bool = False,
    *,
    palette: Sequence[Color] | None = None,
    class_names: Sequence[str] | None = None,
    keep_masks: bool = False,
) -> dict[str, DatasetReport]:
    """`scan` the named folders of one dataset (`{"train": path, ...}`), sharing `num_classes`.

    What `load_splits` uses. Arguments as for `scan`. Introduced in `01_data.ipynb`.
    """
    options = _Options(binary_255, palette, class_names, keep_masks)
    return _scan_many({name: Path(p) for name, p in folders.items()}, num_classes, options)


def scan_layout(
    root: str | Path,
    layout: Layout,
    splits: Sequence[str] | None = None,
    *,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    keep_masks: bool = False,
    decode_images: bool = False,
) -> dict[str, DatasetReport]:
    """`scan` the splits of a famous dataset as it ships (`segtutor.layouts`): `{"train": ...}`.

    Introduced in `01_data.ipynb`. The pairs come from `layouts.split_files`; each mask is decoded
    through the layout's value table, so the checks see class indices and 255, and a stored value
    the layout never uses is a problem naming the file. Other arguments as for `scan`.

    Args:
        root: the layout's root (as `layouts.find_layout` returns it).
        layout: the layout.
        splits: segtutor's split names (default: every split of the layout).
    """
    files = {split: split_files(root, layout, split) for split in splits or list(layout.splits)}
    options = {"num_classes": num_classes, "class_names": class_names}
    return scan_files(files, layout, **options, keep_masks=keep_masks, decode_images=decode_images)


def scan_files(
    files: dict[str, SplitFiles],
    layout: Layout,
    *,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    keep_masks: bool = False,
    decode_images: bool = False,
) -> dict[str, DatasetReport]:
    """`scan` listed pairs stored in a layout's encoding: `{"train": files, ...}` -> reports.

    Introduced in `01_data.ipynb`. What `scan_layout` does once it has listed the pairs; the
    wrappers of `torchvision.datasets` (`segtutor.torchvision_data`) give their own lists.
    Arguments as for `scan_layout`.
    """
    names = list(class_names) if class_names is not None else layout.class_names
    options = _Options(False, layout.palette, names, keep_masks, decode_images)
    reports = {}
    for split, pairs in files.items():
        report = DatasetReport(root=pairs.folder, layout=layout)
        report.lookup, report.palette = layout.lookup, list(layout.palette)
        report.problems += pairs.problems
        report.stems, report.image_paths = list(pairs.stems), list(pairs.image_paths)
        report.mask_paths = list(pairs.mask_paths)
        _check_pairs(report, options)  # the pairs that exist: every problem at once
        reports[split] = report
    inferred = num_classes is None
    for report in reports.values():
        report.num_classes = len(names) if inferred else num_classes
        report.class_names = list(names)
        _check_labels(report, False)
    return reports


def split_folders(root: str | Path) -> list[Path]:
    """`root/train`, `root/val`, ... when root has splits instead of its own `images/`.

    Train first, then val, then any other split (e.g. `test/`), each a folder holding `images/`
    or `masks/`; `[]` when `root` is not a folder of splits. Introduced in `01_data.ipynb`.
    """
    root = Path(root)
    if not root.is_dir() or (root / "images").is_dir() or (root / "masks").is_dir():
        return []
    try:
        subs = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    except OSError:  # a folder we may not list: `_layout_problems` says so
        return []
    has_images = [p for p in subs if (p / "images").is_dir() or (p / "masks").is_dir()]
    if not any(p.name in ("train", "val") for p in has_images):
        return []
    return sorted(has_images, key=lambda p: (p.name != "train", p.name != "val", p.name))


@dataclass(frozen=True)
class _Options:
    """How to read a dataset; the arguments of `scan`, passed down as one."""

    binary_255: bool = False
    palette: Sequence[Color] | None = None
    class_names: Sequence[str] | None = None
    keep_masks: bool = False
    decode_images: bool = False


def _scan_many(
    folders: dict[str, Path], num_classes: int | None, options: _Options
) -> dict[str, DatasetReport]:
    """Scan several folders of one dataset, then check labels against one shared num_classes."""
    reports = {}
    for name, folder in folders.items():
        reports[name] = DatasetReport(root=folder, binary_255=options.binary_255)
        _collect(reports[name], options)
    first = next(iter(reports.values()))
    names = list(options.class_names) if options.class_names is not None else None
    names = names if names is not None else first.meta.class_names
    inferred = num_classes is None and names is None and not options.binary_255
    num_classes = num_classes if num_classes is not None else _infer_num_classes(reports, names)
    for report in reports.values():
        report.num_classes = num_classes
        report.class_names = list(names) if names else [f"class_{k}" for k in range(num_classes or 0)]  # fmt: skip
        _check_labels(report, inferred)
    return reports


def _infer_num_classes(reports: dict[str, DatasetReport], names: list[str] | None) -> int | None:
    """Class names > 2 for binary_255 masks > largest label + 1; None when nothing was decoded."""
    if names:
        return len(names)
    if next(iter(reports.values())).binary_255:  # so that stray values (edges) are reported
        return 2
    labels = [v for r in reports.values() for v in r.value_counts if v != IGNORE_INDEX]
    return max(labels) + 1 if labels else None


def _collect(report: DatasetReport, options: _Options) -> None:
    """Fill `report` for one folder: layout, metadata, pairs, headers, decoded mask statistics."""
    root = report.root
    masks_folder, problems = mask_folder(root)
    report.names = FolderNames(masks_folder)
    report.problems += problems or _layout_problems(root, masks_folder)
    if report.problems:
        return
    try:
        report.meta = read_metadata(root)
    except DataError as error:
        report.problems += error.problems
    report.palette = list(options.palette) if options.palette is not None else report.meta.palette
    _check_palette_length(report, options.class_names)
    images = _list_samples(root / "images", report)
    masks = _list_samples(root / report.names.masks, report)
    if report.ignored:
        report.notes.append(f"ignored {len(report.ignored)} files that are not images or are "
                            f"hidden: {listed([p.name for p in report.ignored])}")  # fmt: skip
    suffix, problems = mask_suffix(set(images), set(masks), root / report.names.masks)
    report.problems += problems
    report.names = FolderNames(report.names.masks, suffix)
    if problems:
        return  # pairing either way would be a guess
    if suffix:  # key each mask by its image's stem
        masks = {s[: len(s) - len(suffix)] if s.endswith(suffix) else s: p for s, p in masks.items()}  # fmt: skip
    _pair(root, images, masks, report)
    _check_pairs(report, options)


def _check_pairs(report: DatasetReport, options: _Options) -> None:
    """Check every pair of `report` (images and masks), one problem per kind of trouble."""
    root = report.root
    # kind -> (file, detail); "oriented" becomes a note, not a problem
    found: dict[str, list[tuple[Path, str]]] = {k: [] for k in [*_PAIR_PROBLEMS, "oriented"]}
    for stem, image_path, mask_path in zip(
        report.stems, report.image_paths, report.mask_paths, strict=True
    ):
        image_size, turn = _check_image(report, image_path, found, options.decode_images)
        _check_mask(
            report, stem, mask_path, (image_path, image_size, turn), found, options.keep_masks
        )
    oriented = found.pop("oriented")
    if oriented:
        names = listed([f"{path.name} ({detail})" for path, detail in oriented])
        report.notes.append(f"images with an EXIF orientation tag, which viewers apply and "
                            f"segtutor does not (it reads the stored pixels, as masks are "
                            f"stored): {names}; check their masks match the stored pixels")  # fmt: skip
    for kind, (folder, message, fix) in _PAIR_PROBLEMS.items():
        folder = report.names.masks if folder == "masks" else folder
        _add(report.problems, root / folder, found[kind], message, fix)


def _check_palette_length(report: DatasetReport, class_names: Sequence[str] | None) -> None:
    if class_names is not None and report.palette and len(report.palette) < len(class_names):
        report.problems.append(Problem(report.root, f"the palette has {len(report.palette)} "
                                       f"colours for {len(class_names)} classes",
                                       "give one colour per class"))  # fmt: skip


# ----------------------------------------------------------------------------------------------
# 1. The layout


def _layout_problems(root: Path, masks: str = "masks") -> list[Problem]:
    """`[]` when root is a folder with `images/` and `masks/` (or `labels/`, ...); else the usual
    mistake, explained."""
    if not root.exists():
        return [Problem(root, "does not exist", "check the path (relative paths start in the "
                        f"current folder, {Path.cwd()})")]  # fmt: skip
    if not root.is_dir():
        return [Problem(root, "is a file, not a folder",
                        "point at the dataset folder that holds images/ and masks/")]  # fmt: skip
    if root.name in ("images", *MASK_FOLDERS) and (
        (root.parent / "images").is_dir() or (root.parent / masks).is_dir()
    ):
        return [Problem(root, f"is the {root.name}/ folder itself, not a dataset",
                        f"point at the parent folder {root.parent}")]  # fmt: skip
    splits = split_folders(root)
    if splits:
        names = ", ".join(p.name + "/" for p in splits)
        return [Problem(root, f"holds splits ({names}), not images/ + masks/",
                        f"use load_splits({str(root)!r}), or point at one split, "
                        f"e.g. {root / 'train'}")]  # fmt: skip
    return _missing_subfolders(root, masks)


def _missing_subfolders(root: Path, masks: str) -> list[Problem]:
    """A problem for each of `images/` and `masks/` that is missing, naming the likely folder."""
    try:
        others = [p.name + "/" for p in sorted(root.iterdir()) if p.is_dir()
                  and p.name not in ("images", masks) and not p.name.startswith(".")]  # fmt: skip
    except OSError as error:
        return [Problem(root, f"cannot be listed ({error.strerror or error})",
                        "check the folder's permissions")]  # fmt: skip
    problems = []
    for name in ("images", masks):
        if not (root / name).is_dir():
            hint = f" (found {', '.join(others)}: rename the one that holds the {name})"
            problems.append(Problem(root, f"has no {name}/ folder{hint if others else ''}",
                                    f"put the {name} in {root / name}, one file per sample, "
                                    "mask and image with the same file stem"))  # fmt: skip
    return problems


# ----------------------------------------------------------------------------------------------
# 2. The files, paired by stem


def _list_samples(folder: Path, report: DatasetReport) -> dict[str, Path]:
    """Map stem -> file for the images in `folder`; other files go to `report.ignored`."""
    try:
        paths = sorted(folder.iterdir())
    except OSError as error:
        report.problems.append(Problem(folder, f"cannot be listed ({error.strerror or error})",
                                       "check the folder's permissions"))  # fmt: skip
        return {}
    by_stem: dict[str, list[Path]] = {}
    for path in paths:  # `.DS_Store`, `Thumbs.db`, `notes.txt`, sub-folders: not samples
        if is_image_file(path):
            by_stem.setdefault(path.stem, []).append(path)
        else:
            report.ignored.append(path)
    duplicates = [
        (paths[0], f"{' and '.join(p.name for p in paths[1:])} (which one is the sample?)")
        for paths in by_stem.values()
        if len(paths) > 1
    ]
    _add(report.problems, folder, duplicates, "has the same stem as",
         "keep one file per stem (delete or rename the others)")  # fmt: skip
    if not by_stem:
        report.problems.append(_empty_folder(folder, paths))
    # a duplicated stem stays paired (with its first file), so it is reported once, not twice
    return {stem: paths[0] for stem, paths in by_stem.items()}


def _empty_folder(folder: Path, paths: list[Path]) -> Problem:
    kinds = sorted({p.suffix.lower() or p.name for p in paths if not p.name.startswith(".")})
    found = f" (found only: {listed(kinds)})" if kinds else ""
    return Problem(folder, f"has no {folder.name}{found}",
                   f"put files with extensions {', '.join(IMAGE_EXTENSIONS)} here")  # fmt: skip


def _pair(
    root: Path, images: dict[str, Path], masks: dict[str, Path], report: DatasetReport
) -> None:
    """Pair by stem; report the stems that have no partner, on either side."""
    if not images or not masks:
        return  # already reported as an empty folder
    no_mask = sorted(images.keys() - masks.keys())
    no_image = sorted(masks.keys() - images.keys())
    if no_mask:
        report.problems.append(Problem(root / "images", f"{len(no_mask)} images have no mask "
                                       f"with the same stem: {listed(no_mask)}",
                                       f"add {report.names.masks}/<stem>"
                                       f"{report.names.suffix}.png for each, or remove those "
                                       "images"))  # fmt: skip
    if no_image:
        report.problems.append(Problem(root / report.names.masks, f"{len(no_image)} masks have "
                                       f"no image with the same stem: {listed(no_image)}",
                                       "add the images, or remove those masks (masks are "
                                       "paired by file name, e.g. a.png <-> a.jpg)"))  # fmt: skip
    for stem in sorted(images.keys() & masks.keys()):
        report.stems.append(stem)
        report.image_paths.append(images[stem])
        report.mask_paths.append(masks[stem])


# ----------------------------------------------------------------------------------------------
# 3. Each pair

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
    "unmapped": ("masks", "", "check it is the right file (e.g. Cityscapes' _labelIds.png, not "
                 "_color.png) and that --format names its dataset"),
    "exif": ("masks", "matches its image only as viewers show it, turned by the image's EXIF "
             "orientation tag; segtutor reads the stored pixels, unturned:", "save the image "
             "with the turn applied (PIL: ImageOps.exif_transpose(image).save(path), or 'rotate "
             "losslessly' in an image viewer), so that stored image and mask agree"),
    "negative": ("masks", "has negative label values:", "save masks with class indices "
                 "0..num_classes-1 and 255 for ignore"),
}  # fmt: skip


_ORIENTATION = 0x0112  # the EXIF tag; 1 is upright, 5-8 turn the image by 90 degrees


def _check_image(
    report: DatasetReport, path: Path, found: dict[str, list], decode: bool
) -> tuple[tuple[int, int] | None, bool]:
    """Read one image's header (and verify it): its `(W, H)` (None when unreadable), and
    whether its EXIF orientation turns it by 90 degrees when viewed."""
    size, mode, orientation = None, "?", 1
    try:  # header only, plus verify() (reads the file, checks its structure, decodes nothing)
        with Image.open(path) as img:
            size, mode, image_format = img.size, img.mode, img.format
            orientation = _orientation(img)
            img.verify()
        if orientation != 1:  # a note, or a problem when the mask fits the turned view
            found["oriented"].append((path, f"orientation {orientation}"))
        if decode:
            decode_image(path)
        elif image_format == "JPEG" and not jpeg_is_complete(path):
            raise OSError("image file is truncated (no JPEG end marker)")
    except Exception as error:  # PIL raises many types; any of them means "unreadable"
        found["unreadable"].append((path, unreadable_reason(error, path)))
    if mode == "F":
        found["unsupported"].append((path, "32-bit float"))
    report.image_sizes.append(size or (0, 0))
    report.image_modes.append(mode)
    return size, orientation in (5, 6, 7, 8)


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation the header already holds (JPEG's APP1); 1 without EXIF."""
    raw = img.info.get("exif")  # getexif() would read on, and verify() must come first
    if not raw:
        return 1
    exif = Image.Exif()
    exif.load(raw)
    return int(exif.get(_ORIENTATION, 1))


def _check_mask(
    report: DatasetReport,
    stem: str,
    path: Path,
    image: tuple[Path, tuple[int, int] | None, bool],
    found: dict[str, list],
    keep: bool,
) -> None:
    """Read one mask's header, compare its size with its `image` (path, size, turned by EXIF),
    decode it once and count its values."""
    (image_path, image_size, turned), mode, counts = image, "?", None
    try:
        with Image.open(path) as img:
            size, mode, mask_format = img.size, img.mode, img.format
    except Exception as error:
        found["unreadable"].append((path, unreadable_reason(error, path)))
    else:
        if image_size is not None and size != image_size:
            exif = turned and size == image_size[::-1]  # drawn on the turned view
            found["exif" if exif else "size"].append(
                (path, _size_detail(size, image_path, image_size))
            )
            if exif:  # a problem, so no longer only a note
                found["oriented"].pop()
        if mask_format == "JPEG" or path.suffix.lower() in LOSSY_EXTENSIONS:
            found["lossy"].append((path, ""))  # its values are noise: do not count them
        elif mode not in MASK_MODES:
            found["unsupported"].append((path, mode))
        else:
            counts = _decode_and_count(report, stem, path, found, keep)
    report.mask_modes.append(mode)
    report.label_counts.append(counts)


def _size_detail(size: tuple[int, int], image_path: Path, image_size: tuple[int, int]) -> str:
    rotated = " (turned by 90 degrees)" if size == image_size[::-1] else ""
    return (f"mask {size[0]}x{size[1]}, image {image_path.name} "
            f"{image_size[0]}x{image_size[1]}{rotated}")  # fmt: skip


def _decode_and_count(
    report: DatasetReport, stem: str, path: Path, found: dict[str, list], keep: bool
) -> dict[int, int] | None:
    """`{value: pixels}` of one mask, or None (and a note in `found`) when it cannot be used."""
    try:
        labels = decode_mask(path, report.palette, report.binary_255, lookup=report.lookup)
    except LabelMapError as error:
        found["unmapped"].append((path, str(error)))
        return None
    except PaletteError as error:
        found["colour"].append((path, str(error)))
        return None
    except Exception as error:  # truncated or corrupt: the full decode is the check
        found["unreadable"].append((path, unreadable_reason(error, path)))
        return None
    counts = _count_values(labels)
    negative = [v for v in counts if v < 0]
    if negative:  # 32-bit masks can hold them; no class index is negative
        found["negative"].append((path, listed(negative)))
        return None
    if keep:
        report.masks[stem] = labels
    return counts


def _count_values(labels: np.ndarray) -> dict[int, int]:
    """`{value: pixels}` of one mask; bincount is the fast path for the usual uint8 masks."""
    if labels.dtype == np.uint8:
        counts = np.bincount(labels.ravel(), minlength=256)
        return {int(v): int(counts[v]) for v in np.flatnonzero(counts)}
    values, counts = np.unique(labels, return_counts=True)
    return {int(v): int(n) for v, n in zip(values, counts, strict=True)}


# ----------------------------------------------------------------------------------------------
# 4. The labels, against num_classes


def _check_labels(report: DatasetReport, inferred: bool) -> None:
    """Problems that depend on num_classes: 0/255 binary masks, out-of-range labels."""
    if not report.stems:
        return
    binary = _looks_binary_255(report) if report.lookup is None else None
    if binary:
        report.problems.append(binary)
        return  # other label complaints would only repeat this one
    k = report.num_classes
    if k is None:
        return
    if inferred and k > 255:  # labels such as 1000 in 16-bit masks: name those masks
        _check_range(report, 255, "label values above 254 (255 means ignore; segtutor "
                     "supports at most 255 classes):", "save the masks with class indices "
                     "0..254 (remap the values, e.g. with a lookup table)")  # fmt: skip
        report.num_classes, report.class_names = None, []  # no usable number of classes
        return
    if not 1 <= k <= 255:
        report.problems.append(Problem(report.root, f"num_classes={k} is not in 1..255 (255 "
                                       "means ignore)", "give the number of classes, "
                                       "background included"))  # fmt: skip
        report.num_classes, report.class_names = None, []  # no usable number of classes
        return
    if len(report.class_names) != k:
        report.problems.append(Problem(report.root, f"{len(report.class_names)} class names "
                                       f"for num_classes={k}", "give one name per class"))  # fmt: skip
    if all(counts is None for counts in report.label_counts):
        return  # no mask could be decoded: each one's problem is already reported
    if inferred and k < 2:
        report.problems.append(Problem(report.root / report.names.masks, "every mask is 0 (background "
                                       "only): there is nothing to learn", "check that the masks "
                                       "were saved with class values 1, 2, ... (not as black "
                                       "images)"))  # fmt: skip
        return
    _check_range(report, k)
    for c in np.flatnonzero(report.pixel_counts() == 0):
        name = report.class_names[c] if c < len(report.class_names) else "no name"  # reported
        report.notes.append(f"class {c} ({name}) has no pixels in {report.root}")


def _looks_binary_255(report: DatasetReport) -> Problem | None:
    """A problem when 255 ("ignore") looks like the foreground of 0/255 binary masks."""
    values = report.value_counts
    total, ignored = sum(values.values()), values.get(IGNORE_INDEX, 0)
    if report.binary_255 or not ignored or not total:
        return None
    if (values.get(0, 0) + ignored) / total <= 0.99 or ignored / total <= 0.001:
        return None
    return Problem(report.root / report.names.masks, "the masks look like 0/255 binary masks: "
                   f"{100 * ignored / total:.1f}% of pixels are 255, which segtutor reads as "
                   "'ignore', so the model would never see the foreground",
                   "pass binary_255=True (command line: --binary-255) to read 255 as class 1, "
                   "or resave the masks with values 0 and 1")  # fmt: skip


def _check_range(report: DatasetReport, k: int, message: str = "", fix: str = "") -> None:
    """One problem per mask (or one listing them) holding labels outside `0..k-1` and 255."""
    bad = []
    for path, counts in zip(report.mask_paths, report.label_counts, strict=True):
        outside = [v for v in (counts or {}) if v >= k and v != IGNORE_INDEX]
        if outside:
            bad.append((path, f"has {listed(outside)}"))
    if not bad:
        return
    largest = max(v for v in report.value_counts if v != IGNORE_INDEX)
    message = message or f"label values outside 0..{k - 1} (num_classes={k}; 255 means ignore):"
    fix = fix or f"if those are classes, pass num_classes={largest + 1}; otherwise fix those masks"
    _add(report.problems, report.root / report.names.masks, bad, message, fix)


def _add(
    problems: list[Problem], folder: Path, items: list[tuple[Path, str]], message: str, fix: str
) -> None:
    """One problem per file for a few files; one problem on `folder` listing them for many."""
    if len(items) <= LIST_LIMIT:
        problems.extend(Problem(path, f"{message} {detail}".strip(), fix) for path, detail in items)
    else:
        names = listed([f"{path.name} {detail}".strip() for path, detail in items])
        problems.append(Problem(folder, f"{len(items)} files: {message} {names}".strip(), fix))
