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
contract, transforms and cache as any other segtutor dataset. Nothing here downloads: build the
torchvision object with `download=True` yourself, or run `python -m segtutor download NAME DIR`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segtutor.checks import scan_files
from segtutor.data import SegmentationDataset, Transform
from segtutor.errors import DataError, Problem
from segtutor.layouts import LAYOUTS, SplitFiles

__all__ = ["TORCHVISION_LAYOUTS", "from_torchvision", "torchvision_files"]

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
