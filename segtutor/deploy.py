"""Run an exported segtutor model with numpy, Pillow and onnxruntime only: no PyTorch.

Introduced in `06_visualisation.ipynb`. This file is the artifact a user ships: it imports
nothing of segtutor, so it can be copied alone next to a model exported with
`python -m segtutor export --checkpoint best.pt --format onnx`, onto a machine that has only
`pip install numpy pillow onnxruntime`:

    python deploy.py best.onnx photos/ --output predictions/

Where segtutor itself is there, `python -m segtutor.deploy best.onnx photos/ --output
predictions/` is the same command, and it still imports no PyTorch (`segtutor/__init__.py`
imports its re-exports lazily).

It feeds an image the way segtutor's `Predictor` does (whole, no sliding window and no test-time
augmentation): upright as its EXIF orientation says, resized by the model's working scale (or to
its input size), scaled to [0, 1] and normalised with the mean and std stored in the model file,
then the logits are resized bilinearly back to the image's size. Every setting comes from the
ONNX file's metadata (`segtutor.export.export_metadata`).

Example:
    >>> segmenter = OnnxSegmenter("best.onnx")
    >>> preds = segmenter.predict("photo.jpg")  # (H, W) int64 class indices
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image, ImageOps

__all__ = ["OnnxSegmenter", "main", "read_photo", "resize_bilinear", "save_index_png"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")  # as segtutor.formats
_SIXTEEN_BIT = {"I", "I;16", "I;16L", "I;16B", "I;16N"}


def read_photo(source: str | Path | bytes | Image.Image) -> np.ndarray:
    """An image as RGB uint8 `(H, W, 3)`, upright as its EXIF orientation says.

    Introduced in `06_visualisation.ipynb`. 16-bit images are scaled from 0..65535 to 0..255,
    as `segtutor.formats.decode_image` does.
    """
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    image = source if isinstance(source, Image.Image) else Image.open(source)
    image = ImageOps.exif_transpose(image)
    if image.mode in _SIXTEEN_BIT:
        grey = (np.asarray(image).astype(np.int64).clip(0, 65535) // 257).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.array(image.convert("RGB"))


def resize_bilinear(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of `(C, h, w)` to `(C, H, W)`, as `torch.nn.functional.interpolate(...,
    mode="bilinear", align_corners=False)` computes it. Introduced in `06_visualisation.ipynb`.
    """
    if array.shape[-2:] == tuple(size):
        return array

    def axis(out_len: int, in_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = (np.arange(out_len) + 0.5) * (in_len / out_len) - 0.5  # pixel centres
        src = np.clip(src, 0, None)
        low = np.minimum(src.astype(np.int64), in_len - 1)
        high = np.minimum(low + 1, in_len - 1)
        return low, high, (src - low).astype(array.dtype)

    y0, y1, fy = axis(size[0], array.shape[-2])
    x0, x1, fx = axis(size[1], array.shape[-1])
    top = array[:, y0][:, :, x0] * (1 - fx) + array[:, y0][:, :, x1] * fx
    bottom = array[:, y1][:, :, x0] * (1 - fx) + array[:, y1][:, :, x1] * fx
    return top * (1 - fy[:, None]) + bottom * fy[:, None]


class OnnxSegmenter:
    """An exported segtutor model: images in, class maps out. Introduced in `06_visualisation.ipynb`.

    Attributes (from the model file): `class_names`, `palette`, `num_classes`, `working_scale`,
    `input_mode` ("crop": whole images at the working scale; "resize": resized to
    `input_size` squared), `mean`, `std`.
    """

    def __init__(self, path: str | Path, providers: list[str] | None = None):
        self.path = Path(path)
        self.session = onnxruntime.InferenceSession(
            str(self.path), providers=providers or ["CPUExecutionProvider"]
        )
        raw = self.session.get_modelmeta().custom_metadata_map
        if raw.get("source") != '"segtutor"':
            raise ValueError(
                f"{self.path}: no segtutor metadata in this ONNX file; export it with "
                "`python -m segtutor export --checkpoint CKPT --format onnx`"
            )
        meta = {key: json.loads(value) for key, value in raw.items()}
        self.num_classes = int(meta["num_classes"])
        self.class_names = list(meta["class_names"])
        self.palette = [tuple(color) for color in meta["palette"]]
        self.input_mode = meta["input_mode"]
        self.input_size = meta["input_size"]
        self.working_scale = float(meta["working_scale"])
        self.mean = np.asarray(meta["mean"], dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(meta["std"], dtype=np.float32).reshape(3, 1, 1)

    def model_size(self, height: int, width: int) -> tuple[int, int]:
        """The `(height, width)` an image of this size is fed at."""
        if self.input_mode == "resize":
            return self.input_size, self.input_size
        scale = self.working_scale
        return max(1, round(height * scale)), max(1, round(width * scale))

    def logits(self, image: str | Path | bytes | Image.Image | np.ndarray) -> np.ndarray:
        """Logits float32 `(C, H, W)` at the image's own size. `image`: a path, bytes, a PIL
        image or an RGB uint8 array `(H, W, 3)`."""
        pixels = image if isinstance(image, np.ndarray) else read_photo(image)
        height, width = pixels.shape[:2]
        size = self.model_size(height, width)
        if size != (height, width):
            pixels = np.asarray(Image.fromarray(pixels).resize(size[::-1], Image.BILINEAR))
        images = (pixels.transpose(2, 0, 1).astype(np.float32) / 255 - self.mean) / self.std
        (logits,) = self.session.run(["logits"], {"images": images[None]})  # (1, C, h, w)
        return resize_bilinear(logits[0], (height, width))

    def predict(self, image: str | Path | bytes | Image.Image | np.ndarray) -> np.ndarray:
        """Class indices int64 `(H, W)` at the image's own size."""
        return self.logits(image).argmax(axis=0)

    def overlay(self, pixels: np.ndarray, preds: np.ndarray, alpha: float = 0.5) -> np.ndarray:
        """The image with every class but 0 tinted in its colour; uint8 `(H, W, 3)`."""
        colors = np.asarray(self.palette, dtype=np.float32)[preds]  # (H, W, 3)
        tint = (preds != 0)[:, :, None]
        blended = (1 - alpha) * pixels + alpha * colors
        return np.where(tint, blended, pixels).round().astype(np.uint8)


def save_index_png(path: str | Path, preds: np.ndarray, palette: list) -> None:
    """Class indices `(H, W)` as a palette PNG (the value is the class, the palette its colour).

    Introduced in `06_visualisation.ipynb`.
    """
    image = Image.fromarray(preds.astype(np.uint8), mode="P")
    flat = [int(c) for color in palette for c in color]
    image.putpalette(flat + [255, 255, 255] * (256 - len(palette)))
    image.save(path, format="PNG")


def _images(inputs: list[str]) -> list[Path]:
    files = []
    for raw in map(Path, inputs):
        found = sorted(raw.iterdir()) if raw.is_dir() else [raw]
        files += [p for p in found if p.suffix.lower() in IMAGE_EXTENSIONS or p == raw]
    return [p for p in files if not p.name.startswith(".")]


def main(argv: list[str] | None = None) -> int:
    """`python -m segtutor.deploy MODEL.onnx IMAGES... --output DIR`: a palette PNG and an
    overlay per image; 1 when some image could not be read (named), else 0.

    Introduced in `06_visualisation.ipynb`.
    """
    parser = argparse.ArgumentParser(prog="python -m segtutor.deploy", description=__doc__[:60])
    parser.add_argument("model", type=Path, help="a .onnx file from `segtutor export`")
    parser.add_argument("images", nargs="+", help="image files or folders of images")
    parser.add_argument("--output", type=Path, required=True, help="folder for the results")
    args = parser.parse_args(argv)
    try:
        segmenter = OnnxSegmenter(args.model)
    except Exception as error:  # onnxruntime raises its own types for missing or bad files
        print(f"error: {args.model}: cannot load this model ({error})", file=sys.stderr)
        return 2
    args.output.mkdir(parents=True, exist_ok=True)
    failed = []
    files = _images(args.images)
    for file in files:
        try:
            pixels = read_photo(file)
        except (OSError, ValueError) as error:
            failed.append(f"{file}: {error}")
            continue
        preds = segmenter.predict(pixels)
        save_index_png(args.output / f"{file.stem}.png", preds, segmenter.palette)
        Image.fromarray(segmenter.overlay(pixels, preds)).save(
            args.output / f"{file.stem}_overlay.png"
        )
    print(f"wrote {len(files) - len(failed)} masks and overlays to {args.output}")
    if failed:
        print("\n".join([f"could not read {len(failed)} images:", *failed]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
