"""Using a trained model: logits and predictions for new images, and which images it gets wrong.

Introduced in `05_evaluation.ipynb` (`predict_logits`, `predict`) and `06_visualisation.ipynb`
(`image_iou`, `rank_worst`, `worst_k`). The viewers, the plots and the `predict` command use these
functions, so they import this small module rather than the training loop.

One scoring rule for single images everywhere: `image_iou` (the IoU per class of one image, NaN
for a class in neither its mask nor its prediction), and one ranking rule: `rank_worst` (lowest
score first, unmeasured images left out, ties in dataset order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from segtutor.metrics import confusion_matrix, iou_from_confusion, mean_ignoring_nan
from segtutor.runtime import model_device
from segtutor.settings import IGNORE_INDEX

__all__ = [
    "class_map",
    "image_iou",
    "predict",
    "predict_logits",
    "rank_worst",
    "resize_logits",
    "worst_k",
]


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
) -> torch.Tensor:
    """Logits for a batch `(N, 3, H, W)` or one image `(3, H, W)`, float32 on the CPU.

    Introduced in `05_evaluation.ipynb`.

    Args:
        size: resize the logits bilinearly to this `(height, width)`, e.g. the original image's.

    Shape:
        `(N, C, H, W)`, or `(C, H, W)` for one image.
    """
    single = images.ndim == 3
    batch = images.unsqueeze(0) if single else images
    was_training = model.training
    model.eval()
    logits = model(batch.to(model_device(model))).float()
    model.train(was_training)
    if size is not None:
        logits = resize_logits(logits, size)
    logits = logits.cpu()
    return logits[0] if single else logits


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
