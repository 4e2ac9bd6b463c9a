"""Segmentation metrics from one confusion matrix accumulated over the whole dataset.

Introduced in `05_evaluation.ipynb`. The confusion matrix `cm` is `(C, C)` int64 with rows = truth
and columns = prediction: `cm[t, p]` counts the pixels of class t predicted as p. For class c:

    TP = cm[c, c]    FN = row c minus TP    FP = column c minus TP

    IoU_c  = TP / (TP + FP + FN)          (Jaccard index)
    Dice_c = 2 TP / (2 TP + FP + FN)      (F1 score)

A class absent from both truth and predictions has 0 / 0: its IoU is NaN ("not measured"),
not 0 or 1, and the mIoU averages the classes that are measured.

Why one matrix for the dataset, and not an IoU per batch averaged: a batch without a class
has no IoU for it, small batches would weigh as much as large ones, and the averages of ratios
are not the ratio of the sums. Summing the counts first and dividing once gives the number
every paper reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.distributed as dist

from segtutor.jsonio import json_ready
from segtutor.settings import IGNORE_INDEX

__all__ = [
    "ConfusionMatrix",
    "confusion_matrix",
    "dice_from_confusion",
    "iou_from_confusion",
    "mean_ignoring_nan",
    "pixel_accuracy_from_confusion",
]


def confusion_matrix(
    preds: torch.Tensor, masks: torch.Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Count (truth, prediction) pairs over every pixel whose mask is not `ignore_index`.

    Introduced in `05_evaluation.ipynb`.

    One `torch.bincount` does it: pixel (t, p) lands in bin `num_classes * t + p`, which is
    entry `[t, p]` of the matrix once the bins are reshaped to `(C, C)`.

    Args:
        preds: predicted class indices, any shape, e.g. `(N, H, W)`.
        masks: true class indices, same shape, with `ignore_index` where unlabelled.
        num_classes: C.
        ignore_index: mask value to skip.

    Returns:
        int64 `(C, C)`, rows = truth, columns = prediction, on the inputs' device.

    Raises:
        ValueError: shapes differ, or a value is outside `0..C-1` (and not `ignore_index`).

    Example:
        >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), num_classes=2)
        tensor([[1, 1],
                [0, 1]])
    """
    if preds.shape != masks.shape:
        raise ValueError(
            f"preds {tuple(preds.shape)} and masks {tuple(masks.shape)} must have the same shape"
        )
    if preds.is_floating_point() or masks.is_floating_point():
        raise ValueError(
            "preds and masks must hold integer class indices; for logits (N, C, H, W) "
            "take logits.argmax(dim=1) first"
        )
    valid = masks != ignore_index
    truth = masks[valid].long()  # (P,) valid pixels only
    pred = preds[valid].long()  # (P,)
    for name, values in (("masks", truth), ("preds", pred)):
        if values.numel() and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"{name} contain values outside 0..{num_classes - 1} (min {int(values.min())}, "
                f"max {int(values.max())}) that are not ignore_index={ignore_index}: check "
                "num_classes and how the masks were loaded"
            )
    bins = torch.bincount(num_classes * truth + pred, minlength=num_classes**2)
    return bins.reshape(num_classes, num_classes)


def iou_from_confusion(cm: torch.Tensor) -> torch.Tensor:
    """Per-class IoU `TP / (TP + FP + FN)`, float64 `(C,)`; NaN for a class seen nowhere.

    Introduced in `05_evaluation.ipynb`.
    """
    cm = cm.double()
    tp = cm.diagonal()
    union = cm.sum(dim=0) + cm.sum(dim=1) - tp  # TP + FP + FN
    return tp / union  # 0 / 0 = NaN


def dice_from_confusion(cm: torch.Tensor) -> torch.Tensor:
    """Per-class Dice `2 TP / (2 TP + FP + FN)`, float64 `(C,)`; NaN for a class seen nowhere.

    Introduced in `05_evaluation.ipynb`.
    """
    cm = cm.double()
    tp = cm.diagonal()
    return 2 * tp / (cm.sum(dim=0) + cm.sum(dim=1))  # 2TP+FP+FN = predicted + true pixels


def pixel_accuracy_from_confusion(cm: torch.Tensor) -> float:
    """Fraction of valid pixels predicted right (NaN for an empty matrix).

    Introduced in `05_evaluation.ipynb`.
    """
    total = cm.sum().item()
    return cm.diagonal().sum().item() / total if total else math.nan


def mean_ignoring_nan(values: torch.Tensor) -> float:
    """Mean of the non-NaN entries, as a float; NaN if every entry is NaN.

    Introduced in `05_evaluation.ipynb`.
    """
    return torch.nanmean(values.double()).item()


class ConfusionMatrix:
    """A confusion matrix accumulated batch by batch, and the metrics computed from it.

    Introduced in `05_evaluation.ipynb`.

    Args:
        num_classes: C.
        ignore_index: mask value to skip.

    Example:
        >>> cm = ConfusionMatrix(num_classes=4)
        >>> for images, masks in val_loader:  # doctest: +SKIP
        ...     cm.update(model(images), masks)
        >>> cm.miou()  # doctest: +SKIP
        >>> print(cm.table(class_names))  # doctest: +SKIP
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self._matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    @torch.no_grad()
    def update(self, preds_or_logits: torch.Tensor, masks: torch.Tensor) -> None:
        """Add one batch.

        Args:
            preds_or_logits: preds `(N, H, W)` int class indices, or logits `(N, C, H, W)`
                float (the class with the highest score is taken).
            masks: `(N, H, W)` int class indices, `ignore_index` where unlabelled.
        """
        preds = preds_or_logits
        if preds.is_floating_point():
            if (
                preds.ndim < 3
                or preds.ndim != masks.ndim + 1
                or preds.shape[-3] != self.num_classes
            ):
                raise ValueError(
                    f"float input {tuple(preds.shape)} is taken as logits and must be "
                    f"(N, {self.num_classes}, H, W) for masks {tuple(masks.shape)}; "
                    "pass class indices (N, H, W) as integers"
                )
            # the class axis: (N, C, H, W) -> (N, H, W); argmax(dim=-3), computed faster
            preds = preds.max(dim=-3).indices
        cm = confusion_matrix(preds, masks, self.num_classes, self.ignore_index)
        # Accumulate where the data is (no copy to the CPU per batch); `.matrix` brings it back.
        self._matrix = self._matrix.to(cm.device) + cm

    def reset(self) -> None:
        """Forget every batch seen so far."""
        self._matrix = torch.zeros_like(self._matrix)

    @property
    def matrix(self) -> torch.Tensor:
        """int64 `(C, C)` on the CPU; rows = truth, columns = prediction."""
        return self._matrix.cpu()

    def iou(self) -> torch.Tensor:
        """Per-class IoU, float64 `(C,)`; NaN for a class absent from truth and predictions."""
        return iou_from_confusion(self.matrix)

    def miou(self) -> float:
        """Mean IoU over the classes present (non-NaN IoU)."""
        return mean_ignoring_nan(self.iou())

    def dice(self) -> torch.Tensor:
        """Per-class Dice (F1), float64 `(C,)`; NaN for a class absent from both."""
        return dice_from_confusion(self.matrix)

    def pixel_accuracy(self) -> float:
        """Fraction of valid pixels predicted right."""
        return pixel_accuracy_from_confusion(self.matrix)

    def table(self, class_names: Sequence[str] | None = None) -> str:
        """Per-class text table: class, IoU, Dice, pixels in truth, pixels predicted."""
        names = self._names(class_names)
        cm = self.matrix
        iou, dice = self.iou().tolist(), self.dice().tolist()
        truth, predicted = cm.sum(dim=1).tolist(), cm.sum(dim=0).tolist()

        width = max(len("class"), *(len(n) for n in names))
        lines = [f"{'class':<{width}}  {'IoU':>6}  {'Dice':>6}  {'pixels':>12}  {'predicted':>12}"]
        lines.append("-" * len(lines[0]))
        for name, i, d, t, p in zip(names, iou, dice, truth, predicted, strict=True):
            lines.append(f"{name:<{width}}  {_fmt(i)}  {_fmt(d)}  {t:>12,}  {p:>12,}")
        lines.append("-" * len(lines[0]))
        lines.append(
            f"{'mean':<{width}}  {_fmt(self.miou())}  {_fmt(mean_ignoring_nan(self.dice()))}"
        )
        lines.append(f"pixel accuracy {self.pixel_accuracy():.4f}")
        return "\n".join(lines)

    def to_dict(self, class_names: Sequence[str] | None = None) -> dict:
        """The metrics as plain Python values for `json.dump` (NaN becomes None)."""
        names = self._names(class_names)
        cm = self.matrix
        per_class = zip(
            names,
            self.iou().tolist(),
            self.dice().tolist(),
            cm.sum(dim=1).tolist(),
            cm.sum(dim=0).tolist(),
            strict=True,
        )
        return json_ready(
            {
                "miou": self.miou(),
                "mean_dice": mean_ignoring_nan(self.dice()),
                "pixel_accuracy": self.pixel_accuracy(),
                "per_class": [
                    {"class": name, "iou": i, "dice": d, "pixels": t, "predicted": p}
                    for name, i, d, t, p in per_class
                ],
                "confusion_matrix": cm.tolist(),
            }
        )

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add the counts of `other` (e.g. from another process or split) into this one."""
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise ValueError("can only merge confusion matrices with the same classes")
        self._matrix = self._matrix + other._matrix.to(self._matrix.device)
        return self

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        result = ConfusionMatrix(self.num_classes, self.ignore_index)
        result._matrix = self._matrix.clone()
        return result.merge(other)

    def all_reduce(self) -> None:
        """Sum the matrices of every process (distributed training); no-op in a single process.

        Every process must call it, once per pass (a second call would add the sums again).
        Afterwards every process holds the matrix of all processes' pixels together.
        """
        if dist.is_available() and dist.is_initialized():
            if dist.get_backend() == "nccl":
                # NCCL sums GPU tensors only; a process whose share had no batch still holds
                # its zeros on the CPU.
                self._matrix = self._matrix.to(torch.device("cuda", torch.cuda.current_device()))
            dist.all_reduce(self._matrix, op=dist.ReduceOp.SUM)

    def __repr__(self) -> str:
        return (
            f"ConfusionMatrix(num_classes={self.num_classes}, pixels={int(self._matrix.sum())}, "
            f"miou={self.miou():.4f})"
        )

    def _names(self, class_names: Sequence[str] | None) -> list[str]:
        if class_names is None:
            return [f"class_{c}" for c in range(self.num_classes)]
        if len(class_names) != self.num_classes:
            raise ValueError(
                f"{len(class_names)} class names for {self.num_classes} classes: give one per class"
            )
        return [str(n) for n in class_names]


def _fmt(value: float) -> str:
    return f"{'n/a':>6}" if math.isnan(value) else f"{value:6.4f}"
