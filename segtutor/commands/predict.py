"""Predict masks for one image or a folder of images, of any sizes.

For each image `NAME.ext` it writes `NAME.png`, a palette PNG whose pixel values are the class
indices and whose palette holds the class colours (it opens as a coloured picture and loads as
labels), and `NAME_overlay.png`, the prediction drawn over the image.
Introduced in `05_evaluation.ipynb` (where `segtutor.inference.predict` is).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from segtutor.checkpoint import load_checkpoint, model_from_checkpoint
from segtutor.commands.common import add_checkpoint_argument
from segtutor.errors import DataError, Problem
from segtutor.formats import is_image_file, read_image
from segtutor.inference import predict
from segtutor.runtime import choose_device
from segtutor.transforms import eval_transforms
from segtutor.viz import make_palette, overlay

__all__ = ["add_arguments", "run", "save_index_png"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `predict` arguments to `parser`. Introduced in `05_evaluation.ipynb`."""
    add_checkpoint_argument(parser)
    parser.add_argument(
        "--input",
        type=Path,
        required=True,
        metavar="PATH",
        help="an image file, or a folder of images",
    )
    parser.add_argument(
        "--output",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for the masks and overlays (created if needed)",
    )
    parser.add_argument("--device", default="auto")


def input_files(path: Path) -> list[Path]:
    """The images to predict: `path` itself, or the images in folder `path` (sorted).

    Introduced in `05_evaluation.ipynb`.
    """
    if not path.exists():
        raise DataError(Problem(path, "does not exist", "pass an image file or a folder of images"))
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if is_image_file(p))
    if not files:
        raise DataError(
            Problem(
                path,
                "holds no images (.png, .jpg, .bmp, .tif)",
                "pass a folder that contains images, e.g. DIR/images",
            )
        )
    return files


def save_index_png(path: Path, preds: np.ndarray, palette: list[tuple[int, int, int]]) -> None:
    """Save class indices `(H, W)` as a palette PNG: values are the classes, colours the palette.

    Introduced in `05_evaluation.ipynb`.
    """
    image = Image.fromarray(preds.astype(np.uint8), mode="P")
    flat = [c for color in palette for c in color]
    image.putpalette(flat + [255, 255, 255] * (256 - len(palette)))
    image.save(path)


def run(args: argparse.Namespace) -> int:
    """Predict every input image; return 2 when some could not be read.

    Introduced in `05_evaluation.ipynb`.
    """
    checkpoint = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(checkpoint)
    model.to(choose_device(args.device))
    saved = checkpoint.get("config") or {}
    palette = [tuple(c) for c in (checkpoint.get("palette") or make_palette(model.num_classes))]
    size = int(saved.get("input_size") or 128)
    resize = saved.get("input_mode", "resize") == "resize"
    transform = eval_transforms(size if resize else None, scale=saved.get("working_scale", 1.0))

    files = input_files(args.input)
    args.output.mkdir(parents=True, exist_ok=True)
    failed = []
    for file in files:
        try:
            pixels = read_image(file)  # uint8 (H, W, 3)
        except DataError as error:
            failed.append(str(error))
            continue
        height, width = pixels.shape[:2]
        image = torch.from_numpy(pixels).permute(2, 0, 1)
        dummy = torch.zeros(height, width, dtype=torch.int64)
        images, _ = transform(image, dummy)
        preds = predict(model, images, size=(height, width)).numpy()
        save_index_png(args.output / f"{file.stem}.png", preds, palette)
        Image.fromarray(overlay(pixels, preds, palette)).save(
            args.output / f"{file.stem}_overlay.png"
        )
    print(f"wrote {len(files) - len(failed)} masks and overlays to {args.output}")
    if failed:
        print("\n".join(["could not read:", *failed]))
        return 2
    return 0
