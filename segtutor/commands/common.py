"""What `train`, `evaluate` and `predict` share: where the bundled data is, how a folder becomes
loaders, and how a run folder is written."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from segtutor.data import SegmentationDataset
from segtutor.errors import DataError, Problem
from segtutor.data import make_loader
from segtutor.transforms import eval_transforms

__all__ = [
    "BUNDLED_DATA",
    "add_data_arguments",
    "choose_input_mode",
    "image_sizes",
    "json_ready",
    "resolve_data",
    "val_loader_for",
    "write_json",
]

# The samples made by `python -m segtutor make-samples`, committed beside the package.
BUNDLED_DATA = Path(__file__).resolve().parents[2] / "data_samples"


def resolve_data(path: Path | None, default: str = "scenes") -> Path:
    """The dataset folder a command works on: `path`, or the bundled sample set `default`."""
    if path is None:
        path = BUNDLED_DATA / default
        if not path.is_dir():
            raise DataError(
                Problem(
                    path,
                    "the bundled sample data is not here (segtutor was installed without it?)",
                    "pass --data DIR, or run `python -m segtutor make-samples` in a checkout",
                )
            )
    return Path(path)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say how to read a dataset folder (the same for every command)."""
    parser.add_argument(
        "--num-classes", type=int, default=None,
        help="classes, background included (default: from dataset.json or the masks)",
    )
    parser.add_argument(
        "--binary-255", action="store_true",
        help="read 255 in masks as class 1 (0/255 binary masks) instead of 'ignore'",
    )
    parser.add_argument(
        "--no-cache", action="store_true",
        help="decode images from disk every epoch instead of keeping them in memory",
    )


def image_sizes(*datasets: SegmentationDataset) -> set[tuple[int, int]]:
    """The distinct `(height, width)` of the images in `datasets`, read from file headers."""
    sizes: set[tuple[int, int]] = set()
    for dataset in datasets:
        report = dataset.report  # a subset shares its pool's report: look up its own stems
        by_stem = dict(zip(report.stems, report.image_sizes, strict=True))
        sizes.update((h, w) for w, h in (by_stem[s] for s in dataset.stems))
    return sizes


def choose_input_mode(sizes: set[tuple[int, int]], size: int) -> str:
    """`"crop"` (native-resolution crops of `size`) unless every image is smaller than that.

    Crops keep the objects' scale: the model trains on windows of the images as they are and
    predicts whole images at validation. Small crops also mean more steps per CPU second: on the
    bundled scenes (128x128), 96-pixel crops reached a higher mIoU in the same time than whole
    images (`benchmarks/train_targets.py`). Images smaller than `size` on a side are resized
    to `size` instead (`"resize"`), so that no crop is mostly padding.
    """
    smallest = min(min(s) for s in sizes)
    return "crop" if smallest >= size else "resize"


class _ImageOnly:
    """Apply `transform` to the image and keep the mask at its own resolution (for metrics)."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image, mask):
        image, _ = self.transform(image, mask)
        return image, mask.as_subclass(torch.Tensor)


def val_loader_for(
    dataset: SegmentationDataset, mode: str, size: int, batch_size: int, num_workers: int = 0
) -> DataLoader:
    """A validation loader that scores predictions at the masks' own resolution.

    In "resize" mode images are resized to `size` (as in training) and the logits resized back to
    each mask's size by `segtutor.train.evaluate`; in "crop" mode whole images go through the
    fully convolutional model at their own size. Mixed sizes cannot share a batch: batch size 1.
    """
    dataset.transform = _ImageOnly(eval_transforms(size if mode == "resize" else None))
    same_size = len(image_sizes(dataset)) == 1
    return make_loader(dataset, batch_size if same_size else 1, num_workers=num_workers)


def write_json(path: Path, data: Any) -> None:
    """Write JSON with NaN as null (JSON has no NaN)."""
    path.write_text(json.dumps(json_ready(data), indent=2) + "\n")


def json_ready(value: Any) -> Any:
    """`value` with NaN and infinities as None, tuples as lists, keys as str (for json)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [json_ready(v) for v in value]
    return value
