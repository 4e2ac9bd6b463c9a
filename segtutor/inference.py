"""Using a trained model: logits and predictions for new images, and which images it gets wrong.

Introduced in `05_evaluation.ipynb` (`predict_logits`, `predict`) and `06_visualisation.ipynb`
(`image_iou`, `rank_worst`, `worst_k`; new photographs: `read_photo`, `Predictor`,
`sliding_window_logits`, flip test-time augmentation). The viewers, the plots and the `predict`
command use these functions, so they import this small module rather than the training loop.

A new photograph goes through `Predictor`: read upright (`read_photo`), resized to the working
scale the model was trained at, normalised, predicted whole or window by window
(`sliding_window_logits`, for images larger than `window`), optionally averaged with its mirror
image (`tta="flip"`), and its logits resized back to the photograph's own size.

One scoring rule for single images everywhere: `image_iou` (the IoU per class of one image, NaN
for a class in neither its mask nor its prediction), and one ranking rule: `rank_worst` (lowest
score first, unmeasured images left out, ties in dataset order).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import nn

from segtutor.checkpoint import load_checkpoint, model_from_checkpoint
from segtutor.errors import DataError, Problem
from segtutor.formats import decode_image, read_image
from segtutor.metrics import confusion_matrix, iou_from_confusion, mean_ignoring_nan
from segtutor.runtime import model_device
from segtutor.settings import IGNORE_INDEX
from segtutor.transforms import eval_transforms

__all__ = [
    "BLENDS",
    "DEFAULT_WINDOW",
    "Predictor",
    "class_map",
    "image_iou",
    "predict",
    "predict_logits",
    "rank_worst",
    "read_photo",
    "resize_logits",
    "sliding_window_logits",
    "window_weights",
    "worst_k",
]

BLENDS = ("gaussian", "constant")
"""How overlapping windows are blended: `gaussian` trusts a window's centre more than its edges,
where the model saw less context; `constant` averages them equally."""

DEFAULT_WINDOW = 512
"""Side in pixels (at the working scale) above which `Predictor` predicts window by window: the
activations of a whole large photograph would not fit in memory, a 512-pixel window does."""

GAUSSIAN_SIGMA = 0.125  # the Gaussian's sigma, as a share of the window side (MONAI's default)


def class_map(logits: torch.Tensor) -> torch.Tensor:
    """The class of highest score at every pixel: logits `(..., C, H, W)` -> `(..., H, W)` int64.

    Introduced in `05_evaluation.ipynb`. The same as `logits.argmax(dim=-3)` (the first class on
    ties), written as `max(...).indices`, which PyTorch computes several times faster across the
    class axis on a CPU (docs/benchmarks.md): on large validation images the argmax took longer
    than the model.
    """
    return logits.max(dim=-3).indices


def resize_logits(logits: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bilinear resize of logits `(N, C, H, W)` to `size`; metrics are taken at the masks' size.

    Introduced in `05_evaluation.ipynb`. Logits, not class indices, are resized: interpolating
    class numbers would invent classes between two neighbours.
    """
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    size: tuple[int, int] | None = None,
    *,
    window: int | tuple[int, int] | None = None,
    overlap: float = 0.25,
    blend: str = "gaussian",
    tta: str | None = None,
) -> torch.Tensor:
    """Logits for a batch `(N, 3, H, W)` or one image `(3, H, W)`, float32 on the CPU.

    Introduced in `05_evaluation.ipynb` (`window`, `tta` in `06_visualisation.ipynb`).

    Args:
        size: resize the logits bilinearly to this `(height, width)`, e.g. the original image's.
        window, overlap, blend: predict images larger than `window` window by window
            (`sliding_window_logits`); None predicts each batch whole.
        tta: "flip" averages the logits of the images and of their mirror images (flipped
            back); None predicts once.

    Shape:
        `(N, C, H, W)`, or `(C, H, W)` for one image.
    """
    if tta not in (None, "flip"):
        raise ValueError(f"tta must be None or 'flip', got {tta!r}")
    single = images.ndim == 3
    batch = images.unsqueeze(0) if single else images
    if window is None:
        logits = _forward(model, batch)
    else:
        logits = sliding_window_logits(model, batch, window, overlap=overlap, blend=blend)
    if tta == "flip":  # a mirrored photo shows the same scene: average both answers
        mirrored = predict_logits(
            model, batch.flip(-1), window=window, overlap=overlap, blend=blend
        )
        logits = (logits + mirrored.flip(-1)) / 2
    if size is not None:
        logits = resize_logits(logits, size)
    return logits[0] if single else logits


def _forward(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """The model's logits in eval mode, float32 on the CPU; its mode put back as it was."""
    was_training = model.training
    model.eval()
    try:
        return model(batch.to(model_device(model))).float().cpu()
    finally:
        model.train(was_training)


def window_weights(window: tuple[int, int], blend: str = "gaussian") -> torch.Tensor:
    """How much each pixel of a window counts when windows overlap: float32 `(h, w)`, max 1.

    Introduced in `06_visualisation.ipynb`. "gaussian": a bell centred on the window (sigma an
    eighth of its side, as MONAI's `sliding_window_inference`), never below 1e-3 so that the
    image's corners, covered by one window edge only, still get a prediction; "constant": ones.
    """
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
    if blend == "constant":
        return torch.ones(window)
    bells = []
    for side in window:
        x = torch.arange(side, dtype=torch.float32) - (side - 1) / 2
        bells.append(torch.exp(-0.5 * (x / (GAUSSIAN_SIGMA * side)) ** 2))
    weights = bells[0][:, None] * bells[1][None, :]  # (h, w)
    return (weights / weights.max()).clamp_min(1e-3)


def _starts(length: int, window: int, overlap: float) -> list[int]:
    """Top (or left) edges of windows that cover `length` with at least `overlap` shared."""
    if length <= window:
        return [0]
    step = max(1, int(window * (1 - overlap)))
    return [*range(0, length - window, step), length - window]  # the last one flush with the end


@torch.inference_mode()
def sliding_window_logits(
    model: nn.Module,
    images: torch.Tensor,
    window: int | tuple[int, int],
    *,
    overlap: float = 0.25,
    blend: str = "gaussian",
    batch_size: int = 4,
) -> torch.Tensor:
    """Logits of images larger than the model should see at once, predicted window by window.

    Introduced in `06_visualisation.ipynb`. The shape of MONAI's `sliding_window_inference`:
    windows of `window` pixels, neighbours sharing `overlap` of their side, predicted
    `batch_size` windows at a time; where windows overlap their logits are averaged, weighted
    by `window_weights(window, blend)`. An image no larger than the window is predicted whole.

    Args:
        images: `(N, 3, H, W)`, normalised as in training.
        window: side, or `(height, width)`, of a window (clipped to the image).
        overlap: share of a window's side that its neighbour covers too, in `[0, 1)`.

    Shape:
        `(N, C, H, W)` float32 on the CPU.
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    height, width = images.shape[-2:]
    win_h, win_w = (window, window) if isinstance(window, int) else window
    win_h, win_w = min(win_h, height), min(win_w, width)
    if (win_h, win_w) == (height, width):
        return _forward(model, images)
    weights = window_weights((win_h, win_w), blend)  # (h, w)
    boxes = [
        (n, top, left)
        for n in range(images.shape[0])
        for top in _starts(height, win_h, overlap)
        for left in _starts(width, win_w, overlap)
    ]
    total = torch.zeros(height, width)
    for _, top, left in boxes[: len(boxes) // images.shape[0]]:  # the same boxes in every image
        total[top : top + win_h, left : left + win_w] += weights
    summed = None
    for first in range(0, len(boxes), batch_size):
        chunk = boxes[first : first + batch_size]
        crops = torch.stack(
            [images[n, :, t : t + win_h, left : left + win_w] for n, t, left in chunk]
        )
        logits = _forward(model, crops)  # (B, C, h, w)
        if summed is None:
            summed = torch.zeros(images.shape[0], logits.shape[1], height, width)
        for (n, t, left), window_logits in zip(chunk, logits, strict=True):
            summed[n, :, t : t + win_h, left : left + win_w] += window_logits * weights
    return summed / total


def predict(
    model: nn.Module, images: torch.Tensor, size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Predicted class per pixel: preds `(N, H, W)` int64 (or `(H, W)` for one image).

    Introduced in `05_evaluation.ipynb`.
    """
    return class_map(predict_logits(model, images, size=size))


def image_iou(
    preds: torch.Tensor, mask: torch.Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """IoU per class of ONE image: float64 `(C,)`, NaN for a class in neither mask nor prediction.

    The per-image score of `worst_k` and of `segtutor.widgets.PredictionViewer`; the image's
    mIoU is `segtutor.metrics.mean_ignoring_nan` of it (NaN when nothing is labelled).

    Introduced in `06_visualisation.ipynb`.

    Args:
        preds: predicted classes `(H, W)` int64.
        mask: true classes `(H, W)`, `ignore_index` where unlabelled.
    """
    cm = confusion_matrix(preds, mask.long(), num_classes, ignore_index)
    return iou_from_confusion(cm)


def rank_worst(scores: Sequence[float] | torch.Tensor, k: int | None = None) -> list[int]:
    """Indices of the `k` lowest scores, lowest first (all of them if `k` is None).

    NaN scores (images with nothing measured) are left out; equal scores keep their order.

    Introduced in `06_visualisation.ipynb`.

    Example:
        >>> rank_worst([0.9, float("nan"), 0.2, 0.9], k=3)
        [2, 0, 3]
    """
    values = [float(s) for s in scores]
    measured = [i for i, value in enumerate(values) if not math.isnan(value)]
    return sorted(measured, key=lambda i: values[i])[:k]  # sorted is stable: ties by index


def worst_k(
    model: nn.Module,
    dataset: Any,
    k: int,
    num_classes: int,
    ignore_index: int = IGNORE_INDEX,
) -> list[tuple[int, float]]:
    """The k images the model segments worst: `[(index, mIoU), ...]`, lowest mIoU first.

    Each image gets its own mIoU (`image_iou`, over the classes present in its mask or its
    prediction), computed at the mask's resolution. Images with no labelled pixels are skipped.
    Looking at these images is the quickest way to find label errors and hard cases.

    Introduced in `06_visualisation.ipynb`.
    """
    scores = []
    for index in range(len(dataset)):
        image, mask = dataset[index]
        mask = torch.as_tensor(mask)  # (H, W)
        preds = predict(model, image, size=tuple(mask.shape[-2:]))  # (H, W)
        scores.append(mean_ignoring_nan(image_iou(preds, mask, num_classes, ignore_index)))
    return [(index, scores[index]) for index in rank_worst(scores, k)]


# --- new photographs ---------------------------------------------------------------------------

# EXIF orientation -> the turn that shows the photo upright (the table of PIL.ImageOps.exif_transpose)
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION = 0x0112


def read_photo(source: str | Path | bytes | BinaryIO, name: str | None = None) -> np.ndarray:
    """A new photograph as RGB uint8 `(H, W, 3)`, upright as a photo viewer shows it.

    Introduced in `06_visualisation.ipynb`. Any mode `segtutor.formats.decode_image` reads
    (RGBA, greyscale, 16-bit, palette) becomes RGB. Cameras store a portrait photo as landscape
    pixels plus an EXIF "orientation" tag; the pixels are turned as the tag says (as
    `PIL.ImageOps.exif_transpose` does), so the prediction has the size and the orientation
    the user sees. Dataset images are never turned: their masks carry no such tag.

    Args:
        source: a file path, the file's bytes, or an open binary file (an upload).
        name: what to call a source that is not a path in error messages.

    Raises:
        DataError: the file cannot be read as an image; the message names it.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    if isinstance(source, (str, Path)):
        pixels = read_image(source)  # a DataError naming the file
    else:
        try:
            pixels = decode_image(source)
        except (OSError, UnidentifiedImageError, ValueError) as error:
            raise DataError(
                Problem(name or "the upload", f"cannot be read as an image ({error})",
                        "upload a .png, .jpg, .bmp or .tif image")
            ) from error  # fmt: skip
        source.seek(0)
    with Image.open(source) as img:
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    if orientation not in _UPRIGHT:
        return pixels
    return np.array(Image.fromarray(pixels).transpose(_UPRIGHT[orientation]))


@dataclass
class Predictor:
    """A trained model and how to feed it a new photograph of any size.

    Introduced in `06_visualisation.ipynb`. `Predictor.from_checkpoint(path)` reads how the model
    was trained (working scale, or the size whole images were resized to) from the checkpoint,
    so that new images are fed the same way; `logits(pixels)` and `predict(pixels)` give the
    answer at the photograph's own size. The `predict` command, the upload widget and the
    speed benchmark all predict through it.

    Attributes:
        model: a segmentation model returning logits `(N, C, H, W)`.
        num_classes: the model's number of classes.
        class_names, palette: from the checkpoint (None when it has none).
        scale: the working scale: each photo is resized by it first, the logits back.
        input_size: for a model trained on whole images resized to a square, that side (the
            photo is resized to it, never windowed); None for one trained on crops.
        window: side in pixels, at the working scale, of the sliding window
            (`sliding_window_logits`) for larger images; None predicts every image whole.
        overlap, blend: of the sliding window.
        tta: "flip" averages the predictions of the photo and its mirror image; None: off.
    """

    model: nn.Module
    num_classes: int
    class_names: list[str] | None = None
    palette: list[tuple[int, int, int]] | None = None
    scale: float = 1.0
    input_size: int | None = None
    window: int | None = DEFAULT_WINDOW
    overlap: float = 0.25
    blend: str = "gaussian"
    tta: str | None = None

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path | Mapping[str, Any], **options: Any
    ) -> Predictor:
        """The model of a checkpoint (a path or a loaded dict), fed as it was trained.

        `options` set the other attributes (`window`, `overlap`, `blend`, `tta`).
        """
        if not isinstance(checkpoint, Mapping):
            checkpoint = load_checkpoint(checkpoint)
        model = model_from_checkpoint(checkpoint)
        saved = checkpoint.get("config") or {}
        resize = saved.get("input_mode", "resize") == "resize"  # no config: the old default
        palette = checkpoint.get("palette")
        return cls(
            model=model,
            num_classes=int(model.num_classes),
            class_names=checkpoint.get("class_names"),
            palette=[tuple(int(c) for c in color) for color in palette] if palette else None,
            scale=1.0 if resize else float(saved.get("working_scale") or 1.0),
            input_size=int(saved.get("input_size") or 128) if resize else None,
            **options,
        )

    def logits(self, pixels: np.ndarray) -> torch.Tensor:
        """Logits of one RGB uint8 photo `(H, W, 3)`: float32 `(C, H, W)` at its own size."""
        height, width = pixels.shape[:2]
        image = torch.tensor(pixels, dtype=torch.uint8).permute(2, 0, 1)  # (3, H, W), a copy
        transform = eval_transforms(self.input_size, scale=self.scale)
        images, _ = transform(image, torch.zeros(height, width, dtype=torch.int64))
        window = None if self.input_size or self.window is None else self._window()
        return predict_logits(
            self.model,
            images,
            size=(height, width),
            window=window,
            overlap=self.overlap,
            blend=self.blend,
            tta=self.tta,
        )

    def predict(self, pixels: np.ndarray) -> torch.Tensor:
        """Predicted class per pixel of one RGB uint8 photo `(H, W, 3)`: int64 `(H, W)`."""
        return class_map(self.logits(pixels))

    def _window(self) -> int:
        # a multiple of what the U-Net divides by, so that no window needs padding
        multiple = int(getattr(self.model, "size_multiple", 1))
        return -(-int(self.window) // multiple) * multiple
