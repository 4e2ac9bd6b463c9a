"""Tiny dataset folders for the data-side tests (test_data, test_formats, test_checks, ...).

Every dataset is built in `tmp_path` with PIL, a few 8x6 pixel files each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segtutor.data import SegmentationDataset
from segtutor.errors import DataError

H, W = 6, 8


def save(path: Path, array: np.ndarray, mode: str | None = None, **kwargs) -> Path:
    """Write `array` as an image file (format from the extension); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    img.save(path, **kwargs)
    return path


def image_of(value: int) -> np.ndarray:
    """An (H, W, 3) uint8 image whose red channel says which sample it is."""
    out = np.zeros((H, W, 3), dtype=np.uint8)
    out[..., 0] = value
    out[..., 1] = 7
    return out


def mask_of(label: int, foreground: int = 1) -> np.ndarray:
    """An (H, W) uint8 mask: the left half is `label`, the right half `foreground`."""
    out = np.full((H, W), foreground, dtype=np.uint8)
    out[:, : W // 2] = label
    return out


def make_dataset(root: Path, stems: dict[str, int], image_ext: str = ".png") -> Path:
    """`root/images/<stem><ext>` with red = value, `root/masks/<stem>.png` with left half = value % 3."""
    for stem, value in stems.items():
        save(root / "images" / f"{stem}{image_ext}", image_of(value))
        save(root / "masks" / f"{stem}.png", mask_of(value % 3))
    return root


def mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def problems_of(root: Path, **kwargs) -> list:
    """The problems `SegmentationDataset(root, **kwargs)` raises (it must raise)."""
    with pytest.raises(DataError) as info:
        SegmentationDataset(root, **kwargs)
    return info.value.problems
