"""Predict masks for new images: a file, a folder or a glob, of any size, mode and orientation.

For each image `NAME.ext` it writes, at the image's own size (EXIF orientation applied):
`NAME.png`, a palette PNG whose pixel values are the class indices and whose palette holds the
class colours (the Pascal VOC convention: it opens as a coloured picture and loads as labels);
`NAME_overlay.png`, the prediction drawn over the image; with `--probabilities`
`NAME_probabilities.npy` (float16 `(C, H, W)`, the softmax); with `--confidence`
`NAME_confidence.png` (the highest probability per pixel, in grey); and one row of `areas.csv`
(pixels per class). Each file is written atomically, so an interrupted batch keeps what it
finished; a rerun skips the images already done unless `--overwrite`. An image that cannot be
read is skipped and named at the end (exit code 1); an output folder that cannot be written is
refused before any work (exit code 2).
Introduced in `05_evaluation.ipynb` (where `segtutor.inference.predict` is).
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from segtutor.checkpoint import load_checkpoint
from segtutor.commands.common import add_checkpoint_argument, positive_int
from segtutor.errors import DataError, Problem, listed
from segtutor.formats import is_image_file, read_metadata
from segtutor.inference import BLENDS, DEFAULT_WINDOW, Predictor, class_map, read_photo
from segtutor.runtime import choose_device

__all__ = [
    "add_arguments",
    "areas_row",
    "input_files",
    "output_paths",
    "overlap_fraction",
    "run",
    "save_index_png",
    "writable_folder",
]

AREAS_CSV = "areas.csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `predict` arguments to `parser`. Introduced in `05_evaluation.ipynb`."""
    add_checkpoint_argument(parser)
    parser.add_argument(
        "--input",
        type=str,
        nargs="+",
        required=True,
        metavar="PATH",
        help="image files, folders of images, or glob patterns such as 'photos/*.jpg'",
    )
    parser.add_argument(
        "--output",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for the masks, overlays and areas.csv (created if needed)",
    )
    parser.add_argument(
        "--window",
        type=positive_int,
        default=DEFAULT_WINDOW,
        metavar="PIXELS",
        help="predict images larger than this (at the model's working scale) window by window "
        f"(default {DEFAULT_WINDOW}; the training crop size is the smallest that makes sense)",
    )
    parser.add_argument(
        "--overlap",
        type=overlap_fraction,
        default=0.25,
        help="share of a window's side its neighbour covers too, 0 to 0.9 (default 0.25)",
    )
    parser.add_argument("--blend", choices=BLENDS, default="gaussian", help="how windows blend")
    parser.add_argument(
        "--tta",
        choices=["none", "flip"],
        default="none",
        help="'flip': average the predictions of each image and its mirror image (twice the time)",
    )
    parser.add_argument(
        "--probabilities", action="store_true", help="also write NAME_probabilities.npy"
    )
    parser.add_argument("--confidence", action="store_true", help="also write NAME_confidence.png")
    parser.add_argument(
        "--classes",
        type=Path,
        default=None,
        metavar="JSON",
        help="a dataset.json (or its folder) naming the classes and colours; must have the "
        "checkpoint's number of classes (default: the names saved in the checkpoint)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="predict images whose outputs already exist"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--device", default="auto")


def overlap_fraction(text: str) -> float:
    """`--overlap`: a share from 0 (windows touch) to 0.9. Introduced in `06_visualisation.ipynb`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 0.9:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 0.9 (e.g. 0.25)")
    return value


def input_files(paths: str | Path | list[str | Path]) -> list[Path]:
    """The images to predict, in order: each file itself, each folder's images (sorted), each
    glob pattern's matches (sorted). Introduced in `05_evaluation.ipynb`.

    Raises:
        DataError: a path that does not exist, a folder or pattern without images, or two
            images with the same name (their outputs would overwrite each other).
    """
    paths = [paths] if isinstance(paths, (str, Path)) else paths
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            files.append(path)
            continue
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if is_image_file(p))
        elif glob.has_magic(str(raw)):
            found = sorted(Path(p) for p in glob.glob(str(raw)) if is_image_file(p))
        else:
            problems.append(Problem(path, "does not exist", "pass image files or folders"))
            continue
        if not found:
            problems.append(Problem(path, "holds no images (.png, .jpg, .bmp, .tif)",
                                    "pass a folder that contains images, e.g. DIR/images"))  # fmt: skip
        files += found
    stems: dict[str, Path] = {}
    for file in files:
        if file.stem in stems and stems[file.stem] != file:
            problems.append(Problem(file, f"has the same name as {stems[file.stem]}",
                                    "rename one: both would write the same outputs"))  # fmt: skip
        stems.setdefault(file.stem, file)
    if problems:
        raise DataError(problems)
    return list(dict.fromkeys(files))  # a file named twice is predicted once


def writable_folder(folder: Path) -> Path:
    """Create `folder` if needed and check a file can be written there, before any work.

    Introduced in `06_visualisation.ipynb`.

    Raises:
        DataError: the folder cannot be created or written (the message says why).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise DataError(
            Problem(folder, f"cannot be written ({error.strerror or error})",
                    "choose another --output folder, or fix its permissions")
        ) from None  # fmt: skip
    return folder


def output_paths(folder: Path, stem: str, args: argparse.Namespace) -> dict[str, Path]:
    """The files one image gets, by kind: `mask` last, so that it marks the image done.

    Introduced in `06_visualisation.ipynb`.
    """
    paths = {"overlay": folder / f"{stem}_overlay.png"}
    if args.probabilities:
        paths["probabilities"] = folder / f"{stem}_probabilities.npy"
    if args.confidence:
        paths["confidence"] = folder / f"{stem}_confidence.png"
    paths["mask"] = folder / f"{stem}.png"
    return paths


def _atomic(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write through a temporary file in the same folder, then rename: never half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_index_png(path: Path, preds: np.ndarray, palette: list[tuple[int, int, int]]) -> None:
    """Save class indices `(H, W)` as a palette PNG: values are the classes, colours the palette.

    Introduced in `05_evaluation.ipynb`. Written atomically.
    """
    image = Image.fromarray(preds.astype(np.uint8), mode="P")
    flat = [c for color in palette for c in color]
    image.putpalette(flat + [255, 255, 255] * (256 - len(palette)))
    _atomic(Path(path), lambda file: image.save(file, format="PNG"))


def _save_png(path: Path, pixels: np.ndarray) -> None:
    _atomic(path, lambda file: Image.fromarray(pixels).save(file, format="PNG"))


def areas_row(stem: str, preds: np.ndarray, num_classes: int) -> list[int | str]:
    """One row of `areas.csv`: stem, width, height, then the pixels of each class.

    Introduced in `06_visualisation.ipynb`.
    """
    height, width = preds.shape
    counts = np.bincount(preds.ravel().astype(np.int64), minlength=num_classes)[:num_classes]
    return [stem, width, height, *(int(c) for c in counts)]


def _write_outputs(paths: dict[str, Path], pixels: np.ndarray, logits: torch.Tensor, palette):
    """Every file of one image from its logits `(C, H, W)`; the mask last."""
    preds = class_map(logits).numpy()  # (H, W)
    if "probabilities" in paths or "confidence" in paths:
        probabilities = logits.softmax(dim=0)  # (C, H, W)
        if "probabilities" in paths:
            array = probabilities.numpy().astype(np.float16)
            _atomic(paths["probabilities"], lambda file: np.save(file, array))
        if "confidence" in paths:
            grey = (probabilities.max(dim=0).values * 255).round().to(torch.uint8).numpy()
            _save_png(paths["confidence"], grey)
    from segtutor.viz import overlay  # here: matplotlib, which viz imports, is slow to load

    _save_png(paths["overlay"], overlay(pixels, preds, palette))
    save_index_png(paths["mask"], preds, palette)
    return preds


def _class_names(predictor: Predictor, classes: Path | None) -> tuple[list[str], list]:
    """Names and palette: from `--classes`, else the checkpoint, else `class_0..` and defaults."""
    from segtutor.viz import make_palette  # here: matplotlib, which viz imports, is slow to load

    n = predictor.num_classes
    names = predictor.class_names or [f"class_{c}" for c in range(n)]
    palette = predictor.palette or make_palette(n)
    if classes is None:
        return names, palette
    meta = read_metadata(classes.parent if classes.is_file() else classes)
    if meta.path is None or (classes.is_file() and meta.path.resolve() != classes.resolve()):
        raise DataError(Problem(classes, "is not a dataset.json, nor a folder holding one",
                                "pass the dataset.json the model was trained with"))  # fmt: skip
    found = meta.class_names or meta.palette or []
    if len(found) != n:
        raise DataError(
            Problem(meta.path, f"names {len(found)} classes but the checkpoint was trained on {n}",
                    "pass the dataset.json of the dataset the model was trained on, or the "
                    "checkpoint trained on this one")
        )  # fmt: skip
    return meta.class_names or names, meta.palette or palette


def run(args: argparse.Namespace) -> int:
    """Predict every input image; return 1 when some could not be read (the others are kept).

    Introduced in `05_evaluation.ipynb`.
    """
    checkpoint = load_checkpoint(args.checkpoint)
    tta = None if args.tta == "none" else args.tta
    predictor = Predictor.from_checkpoint(
        checkpoint, window=args.window, overlap=args.overlap, blend=args.blend, tta=tta
    )
    predictor.model.to(choose_device(args.device))
    names, palette = _class_names(predictor, args.classes)
    files = input_files(args.input)
    folder = writable_folder(args.output)
    rows, failed, skipped = [], [], 0
    try:
        for file in tqdm(files, desc="predict", unit="image", disable=args.quiet or len(files) < 2):
            paths = output_paths(folder, file.stem, args)
            if not args.overwrite and all(p.is_file() for p in paths.values()):
                with Image.open(paths["mask"]) as done:  # its areas, from what was written
                    rows.append(areas_row(file.stem, np.asarray(done), predictor.num_classes))
                skipped += 1
                continue
            try:
                pixels = read_photo(file)  # (H, W, 3) uint8, upright
            except DataError as error:
                failed.append(error)
                continue
            preds = _write_outputs(paths, pixels, predictor.logits(pixels), palette)
            rows.append(areas_row(file.stem, preds, predictor.num_classes))
    finally:  # an interrupted batch still lists what it finished
        header = ["stem", "width", "height", *names]
        _atomic(folder / AREAS_CSV, lambda file: _write_csv(file, header, rows))
    done = len(files) - len(failed) - skipped
    print(f"wrote masks and overlays of {done} images to {folder}", end="")
    print(f" ({skipped} done before: kept; --overwrite redoes them)" if skipped else "")
    if failed:
        names_failed = [str(problem.path) for error in failed for problem in error.problems]
        print(f"could not read {len(failed)} images: {listed(names_failed)}")
        print("\n".join(str(error) for error in failed))
        return 1
    return 0


def _write_csv(file: io.BufferedWriter, header: list[str], rows: list[list]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    file.write(text.getvalue().encode("utf-8"))
