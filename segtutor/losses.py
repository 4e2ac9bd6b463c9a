"""Losses for semantic segmentation: cross-entropy, soft Dice, and their sum.

Introduced in `03_losses.ipynb`. Every loss takes `logits` `(N, C, H, W)` (raw scores, no
softmax) and `masks` `(N, H, W)` int64 class indices, and skips the pixels whose mask value is
`ignore_index` (255: object borders, unlabelled pixels).

- Cross-entropy scores every pixel on its own; with `class_weights` a rare class counts more.
- Soft Dice scores each class's overlap as a whole, so a class of 50 pixels weighs as much as a
  background of 50 000: a classic remedy for class imbalance.
- `CEDiceLoss` adds them: cross-entropy gives smooth gradients from the first step, Dice keeps
  the small classes in view.
- `DeepSupervisionLoss` wraps any of them for a `UNet(deep_supervision=True)`: the same loss on
  the coarse decoder levels' predictions too, so that the deep, shape-aware features learn the
  classes early instead of leaving it to the colour seen through the skip connections.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segtutor.settings import IGNORE_INDEX

__all__ = [
    "LOSS_NAMES",
    "RECOMMENDED_WEIGHTING",
    "CEDiceLoss",
    "DeepSupervisionLoss",
    "DiceLoss",
    "PriorAdjustedLoss",
    "build_loss",
    "class_weights",
    "dense_float",
    "shrink_masks",
]

LOSS_NAMES = ("ce", "dice", "ce+dice")
# The class weighting the recipe trains with and `check-data` recommends (one place for both):
# full median weights over-predict rare classes; their square root still lifts them.
RECOMMENDED_WEIGHTING = "sqrt-median"


def _as_weight_tensor(weight: torch.Tensor | Sequence[float] | None) -> torch.Tensor | None:
    return None if weight is None else torch.as_tensor(weight, dtype=torch.float32)


class DiceLoss(nn.Module):
    """Multi-class soft Dice loss from logits: 1 - mean over classes of soft Dice.

    Introduced in `03_losses.ipynb`.

    For each class c, with p the softmax probability of c and g = 1 where the mask says c:

        dice_c = (2 * sum(p * g) + smooth) / (sum(p) + sum(g) + smooth)

    The sums run over every valid pixel of the whole batch (not per image), so an image
    without class c does not produce a meaningless 0/0 for it. Pixels whose mask is
    `ignore_index` count in neither numerator nor denominator.

    The mean runs over the classes *present in the batch's masks*: a class absent from the
    masks has no overlap to score (its Dice would only push its probabilities to 0, which the
    present classes already do). If no valid pixel is left, the loss is 0.

    Args:
        ignore_index: mask value to skip.
        smooth: added to numerator and denominator; keeps the ratio defined and the gradient
            smooth for small classes.
        weight: optional `(C,)` weights for a weighted mean over the present classes.

    Shape:
        logits: (N, C, H, W) float, masks: (N, H, W) int64 -> scalar

    Example:
        >>> loss = DiceLoss()(torch.randn(2, 4, 8, 8), torch.randint(0, 4, (2, 8, 8)))
    """

    def __init__(
        self,
        ignore_index: int = IGNORE_INDEX,
        smooth: float = 1.0,
        weight: torch.Tensor | Sequence[float] | None = None,
    ):
        super().__init__()
        self.ignore_index = ignore_index
        self.smooth = smooth
        self.register_buffer("weight", _as_weight_tensor(weight))

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        logits = dense_float(logits)
        num_classes = logits.shape[1]
        probs = logits.softmax(dim=1)  # (N, C, H, W)
        valid = masks != self.ignore_index  # (N, H, W)
        # one_hot(255) would fail: give ignored pixels class 0 first, then zero them out.
        targets = F.one_hot(masks.where(valid, 0), num_classes)  # (N, H, W, C)
        targets = targets.permute(0, 3, 1, 2).to(probs.dtype)  # (N, C, H, W)
        valid = valid.unsqueeze(1).to(probs.dtype)  # (N, 1, H, W)
        probs = probs * valid
        targets = targets * valid

        dims = (0, 2, 3)  # sum over batch and pixels, keep classes
        intersection = (probs * targets).sum(dims)  # (C,)
        cardinality = probs.sum(dims) + targets.sum(dims)  # (C,)
        dice = (2 * intersection + self.smooth) / (cardinality + self.smooth)  # (C,)

        present = (targets.sum(dims) > 0).to(probs.dtype)  # (C,)
        weight = present if self.weight is None else present * self.weight
        # clamp: no valid pixel at all gives 0 / 1e-12 = 0, not NaN
        return ((1 - dice) * weight).sum() / weight.sum().clamp_min(1e-12)


class CEDiceLoss(nn.Module):
    """`ce_weight * cross-entropy + dice_weight * DiceLoss`, both skipping `ignore_index`.

    Introduced in `03_losses.ipynb`.

    Args:
        ce_weight: factor on the cross-entropy term.
        dice_weight: factor on the Dice term.
        class_weights: optional `(C,)` weights for the cross-entropy (see `class_weights`).
            Dice is not weighted: it already gives every present class the same say.
        ignore_index: mask value skipped by both terms.
        prior_adjustment: with `class_weights`, the cross-entropy term becomes a
            `PriorAdjustedLoss` with this `tau` (0: none). Only that term: the Dice term has
            no weights, so no bias to take off, and sees the model's own logits.

    Shape:
        logits: (N, C, H, W) float, masks: (N, H, W) int64 -> scalar
    """

    def __init__(
        self,
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        class_weights: torch.Tensor | Sequence[float] | None = None,
        ignore_index: int = IGNORE_INDEX,
        prior_adjustment: float = 0.0,
    ):
        super().__init__()
        self.ce_weight = ce_weight
        self.dice_weight = dice_weight
        self.ce = nn.CrossEntropyLoss(
            weight=_as_weight_tensor(class_weights), ignore_index=ignore_index
        )
        if prior_adjustment:
            if class_weights is None:
                raise ValueError(
                    "prior_adjustment takes the class weights' bias off: give class_weights"
                )
            self.ce = PriorAdjustedLoss(self.ce, class_weights, prior_adjustment)
        self.dice = DiceLoss(ignore_index=ignore_index)

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        logits = dense_float(logits)  # one copy for both terms
        return self.ce_weight * self.ce(logits, masks) + self.dice_weight * self.dice(logits, masks)


class PriorAdjustedLoss(nn.Module):
    """`loss(logits + tau * log(class_weights), masks)`: class weights that leave no bias behind.

    Introduced in `03_losses.ipynb`. Weighted cross-entropy does what it is for (a rare class
    gets gradient enough to be learned), but the model it trains predicts as if each class were
    `w_c` times as frequent as it is: its best logits are `log p(c | x) + log w_c`, so it
    over-predicts the rare classes and eats into the background. Training on the logits plus
    the fixed offset `log w_c` (the "logit-adjusted loss" of Menon et al. 2021) lets the offset
    carry that bias during training; the model's own logits, which validation and prediction
    use, are left with `log p(c | x)`. The gradients are those of the weighted loss itself.

    Wrap the weighted cross-entropy, not a sum with Dice: Dice has no weights and so no bias,
    and on offset logits it pulls the model's own logits away from the rare classes instead
    (one logit per class on 80/20 masks, weights 1 and 4: CE+Dice unweighted learns 19.6% for
    the rare class, the whole sum on offset logits 16.3%, its cross-entropy alone 19.8%).
    `build_loss(..., prior_adjustment=tau)` and `CEDiceLoss(prior_adjustment=tau)` wrap the
    cross-entropy term alone: against the whole sum offset, +0.009 mIoU on the bundled scenes'
    20 epochs (every seed of three), +0.007 on nuclei at 60 s (two seeds), +0.007 on ccp9 at
    120 s (five seeds, within their noise) (docs/benchmarks.md, "The offset on the
    cross-entropy term alone").

    Args:
        loss: the weighted cross-entropy, e.g. `nn.CrossEntropyLoss(weight=w)`.
        class_weights: the same `(C,)` weights. A class of weight 0 (no pixels) gets no offset.
        tau: the share of `log w` added; 1 removes the weights' bias exactly, 0 adds nothing.

    Shape:
        logits: (N, C, H, W) float, masks: (N, H, W) int64 -> scalar
    """

    def __init__(
        self, loss: nn.Module, class_weights: torch.Tensor | Sequence[float], tau: float = 1.0
    ):
        super().__init__()
        self.loss = loss
        offset = self.offsets(class_weights, tau)
        self.register_buffer("offset", offset.view(1, -1, 1, 1), persistent=False)

    @staticmethod
    def offsets(class_weights: torch.Tensor | Sequence[float], tau: float = 1.0) -> torch.Tensor:
        """`(C,)` `tau * log(w_c)`, 0 for a class of weight 0: what is added to each logit."""
        weight = _as_weight_tensor(class_weights)
        return tau * torch.where(weight > 0, weight, torch.ones_like(weight)).log()

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return self.loss(logits + self.offset.to(logits.dtype), masks)


class DeepSupervisionLoss(nn.Module):
    """`loss(logits) + sum_k weight_k * loss(aux_k)` for a model with auxiliary outputs.

    Introduced in `03_losses.ipynb`.

    Takes what a `UNet(deep_supervision=True)` returns: `(logits, aux)` in training mode, the
    logits alone in eval mode (then it is `loss` itself, so validation losses stay comparable).
    Each auxiliary output is compared with the masks shrunk to its size by `shrink_masks`
    (the label at the centre of each coarse cell), as nnU-Net does: scoring coarse logits
    upsampled to full size cost a step about a third more for no better learning
    (docs/benchmarks.md).

    Args:
        loss: the loss of each output, e.g. `build_loss("ce+dice", ...)`.
        weights: one factor per auxiliary output, ordered as `aux` (deepest first). Default:
            1/2 for each. (nnU-Net halves the weight with every level down; on the bundled
            scenes 1/2 each learned faster, see docs/benchmarks.md.)

    Shape:
        outputs: logits (N, C, H, W), or (logits, [aux (N, C, h_k, w_k), ...]); masks (N, H, W)
        -> scalar
    """

    def __init__(self, loss: nn.Module, weights: Sequence[float] | None = None):
        super().__init__()
        self.loss = loss
        self.weights = None if weights is None else [float(w) for w in weights]
        # the main output's own loss in the last call, detached: what `fit` logs as the training
        # loss comparable with validation (History.train_main_loss), without computing it again
        self.last_main_loss: torch.Tensor | None = None

    def forward(self, outputs, masks: torch.Tensor) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            self.last_main_loss = None
            return self.loss(outputs, masks)
        logits, aux = outputs
        weights = [0.5] * len(aux) if self.weights is None else self.weights
        if len(weights) != len(aux):
            raise ValueError(f"{len(aux)} auxiliary outputs but {len(weights)} weights")
        total = self.loss(logits, masks)
        self.last_main_loss = total.detach()
        for weight, coarse in zip(weights, aux, strict=True):
            total = total + weight * self.loss(coarse, shrink_masks(masks, coarse.shape[-2:]))
        return total


def dense_float(logits: torch.Tensor) -> torch.Tensor:
    """`logits` as float32 (if half precision) in plain `(N, C, H, W)` memory order.

    Introduced in `04_training.ipynb`. A channels-last model hands its loss channels-last
    logits (each pixel's classes side by side in memory), in which the loss's sums over pixels
    run slowly: one copy first made the recipe's CE + Dice with deep supervision 13-41%
    cheaper, forward and backward, on batches of the bundled scenes, ccp9 and nuclei (two
    runs; docs/benchmarks.md, "A cheaper step, and 24 epochs"). Under autocast both terms
    would each cast bfloat16 logits to float32 anyway.
    """
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return logits.contiguous()


def shrink_masks(masks: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """`masks` `(N, H, W)` at a coarser `size` `(h, w)`: each cell takes the label at its centre.

    Introduced in `03_losses.ipynb`. Nearest-neighbour, never an average, so class indices and
    the ignore value stay what they are; masks already of that size come back unchanged.
    """
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    shrunk = F.interpolate(masks[:, None].float(), size=tuple(size), mode="nearest-exact")
    return shrunk[:, 0].to(masks.dtype)


def build_loss(
    name: str,
    num_classes: int | None = None,
    class_weights: torch.Tensor | Sequence[float] | None = None,
    ignore_index: int = IGNORE_INDEX,
    prior_adjustment: float = 0.0,
) -> nn.Module:
    """The loss called `name`: "ce", "dice" or "ce+dice".

    Introduced in `03_losses.ipynb`.

    Args:
        name: one of `LOSS_NAMES`.
        num_classes: if given, `class_weights` must have this many entries.
        class_weights: optional `(C,)` weights for the cross-entropy ("ce" and "ce+dice");
            for "dice" they weight the mean over classes.
        ignore_index: mask value skipped by the loss.
        prior_adjustment: with `class_weights`, `tau` of a `PriorAdjustedLoss` around the
            cross-entropy ("ce", and the cross-entropy term of "ce+dice"); 0: none.

    Example:
        >>> loss_fn = build_loss("ce+dice", num_classes=4)
    """
    weight = _as_weight_tensor(class_weights)
    if weight is not None and num_classes is not None and weight.numel() != num_classes:
        raise ValueError(
            f"class_weights has {weight.numel()} entries but there are {num_classes} classes: "
            "give one weight per class"
        )
    if prior_adjustment and (weight is None or name == "dice"):
        raise ValueError(
            "prior_adjustment takes the class weights' bias off a cross-entropy: it needs "
            f"class_weights and loss 'ce' or 'ce+dice' (got {name!r}, "
            f"{'no ' if weight is None else ''}class weights)"
        )
    if name == "ce":
        ce = nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index)
        return PriorAdjustedLoss(ce, weight, prior_adjustment) if prior_adjustment else ce
    if name == "dice":
        return DiceLoss(ignore_index=ignore_index, weight=weight)
    if name == "ce+dice":
        return CEDiceLoss(
            class_weights=weight, ignore_index=ignore_index, prior_adjustment=prior_adjustment
        )
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSS_NAMES)}")


def class_weights(
    pixel_counts: torch.Tensor | np.ndarray | Sequence[int],
    method: str = "median",
    ignore_zero: bool = True,
) -> torch.Tensor:
    """One cross-entropy weight per class from the number of pixels of each class.

    Introduced in `03_losses.ipynb`.

    With `freq_c = pixel_counts[c] / sum(pixel_counts)`:

    - "median": median-frequency balancing (Eigen & Fergus 2015, used by SegNet),
      `w_c = median(freq) / freq_c`. A class as frequent as the median class gets 1, rarer
      classes more, frequent ones (the background) less. (SegNet divides by the pixels of
      the images where c appears; here by all pixels, which is what `check-data` counts.)
    - "inverse": `w_c = 1 / (K * freq_c)` with K the number of classes that have pixels;
      a perfectly balanced dataset gets all 1s.
    - "sqrt-median": the square root of "median", a gentler push. Full median weights make the
      model over-predict rare classes (more false positives, lower IoU); on the bundled scenes
      the square root scored higher (`python -m segtutor train` uses it by default).

    Args:
        pixel_counts: `(C,)` pixels per class (e.g. `DatasetReport.pixel_counts()`), ignored
            pixels excluded.
        method: "median", "inverse" or "sqrt-median".
        ignore_zero: a class with no pixels gets weight 0 (and a warning) and is left out of
            the median; with False it is an error.

    Returns:
        float32 `(C,)` weights, to pass as `build_loss(..., class_weights=...)`.

    Example:
        >>> class_weights([600, 300, 100])  # freq 0.6, 0.3, 0.1; median 0.3
        tensor([0.5000, 1.0000, 3.0000])
    """
    counts = torch.as_tensor(pixel_counts, dtype=torch.float64)
    if counts.ndim != 1 or (counts < 0).any():
        raise ValueError(f"pixel_counts must be a 1-D list of counts >= 0, got {pixel_counts!r}")
    present = counts > 0
    if not present.any():
        raise ValueError("pixel_counts are all zero: no labelled pixels to weigh")
    if not present.all():
        absent = present.logical_not().nonzero().flatten().tolist()
        if not ignore_zero:
            raise ValueError(f"classes {absent} have no pixels; their weight would be infinite")
        warnings.warn(f"classes {absent} have no pixels; giving them weight 0", stacklevel=2)

    freq = counts / counts.sum()
    if method in ("median", "sqrt-median"):
        # quantile(0.5) is numpy's median: the mean of the two middle values for an even count
        numerator = freq[present].quantile(0.5)
    elif method == "inverse":
        numerator = 1.0 / present.sum()
    else:
        raise ValueError(f"unknown method {method!r}; choose 'median', 'inverse' or 'sqrt-median'")
    weights = torch.zeros_like(freq)
    weights[present] = numerator / freq[present]
    if method == "sqrt-median":
        weights = weights.sqrt()
    return weights.float()
