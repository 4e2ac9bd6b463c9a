"""Write any dataset segtutor recognises out as its own folder format: index PNGs + dataset.json.

Introduced in `01_data.ipynb`. `convert(src, dst)` reads a famous dataset as it ships
(`segtutor.layouts`: VOC, Cityscapes, the pets, CamVid, ADE20K) or a folder under other common
names (`labels/`, `a_mask.png`, colour masks with a palette file), checks all of it first
(`segtutor.checks`: nothing is written from a dataset with problems), then writes::

    DST/dataset.json                     class names, palette, ignore_index 255, the source format
    DST/train/images/<stem>.<ext>        each image copied byte for byte (no re-encoding)
    DST/train/masks/<stem>.png           class indices: palette (P) PNGs, or 8-bit (L) without a
                                         palette; 255 stays "ignore"
    DST/val/...  (DST/images + DST/masks for a folder without splits)

The masks hold what the dataset would give (Cityscapes' train ids, not its label ids), so the
converted folder needs no layout. Every file is written atomically (a hidden temporary file,
then a rename): an interrupted run leaves whole files, and running it again skips those that
are already identical. `dataset.json` is written first, so a folder that holds one naming the
same source is this function's earlier output; any other non-empty `DST` is refused.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from segtutor.checks import DatasetReport, scan_layout, scan_splits
from segtutor.errors import DataError, Problem
from segtutor.formats import VOC_IGNORE_COLOR, decode_mask
from segtutor.jsonio import write_json
from segtutor.layouts import find_layout
from segtutor.settings import IGNORE_INDEX

__all__ = ["convert"]

Progress = Callable[[str, int, int], None]  # (split, files done, files in the split)


def convert(
    src: str | Path,
    dst: str | Path,
    layout: str | None = None,
    *,
    num_classes: int | None = None,
    binary_255: bool = False,
    progress: Progress | None = None,
) -> dict[str, tuple[int, int]]:
    """Convert the dataset at `src` into segtutor's folder format at `dst`.

    Introduced in `01_data.ipynb`.

    Args:
        src: what `--data` would take (a layout's root or the folder above it, or a folder).
        dst: the new dataset folder: absent, empty, or an earlier conversion of the same `src`.
        layout: force a layout (`--format`), as for `segtutor.layouts.find_layout`.
        num_classes, binary_255: how to read a plain folder, as for `segtutor.checks.scan`.
        progress: called after each pair as `progress(split, done, total)`.

    Returns:
        `{split: (written, skipped)}`: pairs written, and pairs already there identical.

    Raises:
        DataError: every problem of the source (nothing is written then), or a `dst` that is
            not empty and not an earlier conversion of `src`.
    """
    src, dst = Path(src), Path(dst)
    found = find_layout(src, layout)
    if found is None:
        reports, source = scan_splits(src, num_classes, binary_255), "folder"
    else:
        reports, source = scan_layout(found[1], found[0], num_classes=num_classes), found[0].name
    problems = [p for report in reports.values() for p in report.problems]
    if problems:
        raise DataError(problems)
    first = next(iter(reports.values()))
    _claim(dst, src, source)
    write_json(dst / "dataset.json", _metadata(first, source, src))
    summary = {}
    for split, report in reports.items():
        folder = dst if split == "all" else dst / split
        summary[split] = _write_split(report, folder, split, progress)
    return summary


def _claim(dst: Path, src: Path, source: str) -> None:
    """Refuse a `dst` holding anything but an earlier conversion of the same source."""
    if not dst.exists() or (dst.is_dir() and not any(dst.iterdir())):
        return
    try:
        earlier = json.loads((dst / "dataset.json").read_text(encoding="utf-8"))["converted_from"]
        same = earlier["format"] == source and Path(earlier["root"]).resolve() == src.resolve()
    except (OSError, ValueError, KeyError, TypeError):  # no such file, not JSON, no such field
        same = False
    if not same:
        raise DataError(Problem(dst, f"is not empty, and not an earlier conversion of {src} "
                                "(its dataset.json would name it)", "give a new or empty "
                                "folder, or delete this one first"))  # fmt: skip


def _metadata(report: DatasetReport, source: str, src: Path) -> dict:
    """dataset.json of the converted folder: what the source's dataset gave, and where from."""
    title = report.layout.title if report.layout else "a segtutor folder"
    data = {"name": src.resolve().name, "class_names": report.class_names,
            "ignore_index": IGNORE_INDEX, "description": f"converted by segtutor from {title}",
            "converted_from": {"format": source, "root": str(src)}}  # fmt: skip
    if report.palette:
        data["palette"] = [list(c) for c in report.palette[: len(report.class_names)]]
    return data


def _write_split(
    report: DatasetReport, folder: Path, split: str, progress: Progress | None
) -> tuple[int, int]:
    """Copy the images and write the masks of one split; `(written, skipped)`."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    written = skipped = 0
    pairs = list(zip(report.stems, report.image_paths, report.mask_paths, strict=True))
    for done, (stem, image_path, mask_path) in enumerate(pairs, 1):
        labels = decode_mask(mask_path, report.palette, report.binary_255, lookup=report.lookup)
        new_image = _copy_image(image_path, folder / "images" / f"{stem}{image_path.suffix}")
        new_mask = _write_mask(labels.astype(np.uint8), folder / "masks" / f"{stem}.png", report)
        written, skipped = (written + 1, skipped) if new_image or new_mask else (written, skipped + 1)  # fmt: skip
        if progress is not None:
            progress(split, done, len(pairs))
    return written, skipped


def _copy_image(path: Path, target: Path) -> bool:
    """Copy an image byte for byte, atomically; False when an identical copy is there."""
    if target.is_file() and filecmp.cmp(path, target, shallow=False):
        return False
    _atomic(target, lambda part: shutil.copyfile(path, part))
    return True


def _write_mask(labels: np.ndarray, target: Path, report: DatasetReport) -> bool:
    """Write a uint8 `(H, W)` mask as an index PNG, atomically; False when already identical."""
    if target.is_file():
        with Image.open(target) as img:
            if np.array_equal(np.asarray(img), labels):
                return False
    img = Image.fromarray(labels)  # mode L: the value is the class
    if report.palette:  # mode P: the same values, shown in the classes' colours
        colors = [*report.palette[:255], *[(0, 0, 0)] * (255 - len(report.palette[:255]))]
        img.putpalette([v for c in [*colors, VOC_IGNORE_COLOR] for v in c])
    _atomic(target, lambda part: img.save(part, format="PNG"))
    return True


def _atomic(target: Path, write: Callable[[Path], object]) -> None:
    """`write(part)` to a hidden file beside `target`, then rename it: whole files only."""
    part = target.with_name(f".{target.name}.part")  # hidden: never listed as a sample
    try:
        write(part)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
