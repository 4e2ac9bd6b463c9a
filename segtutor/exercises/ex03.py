"""Exercises of 03_losses.ipynb: `pixel_cross_entropy`, `median_frequency_weights`,
`soft_dice_loss` (`ex.q1` to `ex.q3`), `choose_loss` (a decision, `ex.q4`) and the
questionnaire (`ex.quiz`).

Introduced in `03_losses.ipynb`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from segtutor.exercises.compare import compare_tensors
from segtutor.exercises.core import Case, Mistake, Question
from segtutor.exercises.progress import make_progress
from segtutor.exercises.quiz import ChoiceQuestion, Questionnaire
from segtutor.losses import DiceLoss, class_weights
from segtutor.settings import IGNORE_INDEX

__all__ = ["q1", "q2", "q3", "q4", "quiz", "progress"]


def _logits_and_masks(g, n, c, h, w, ignored=0, absent=None):
    logits = torch.randn(n, c, h, w, generator=g) * 2
    masks = torch.randint(0, c, (n, h, w), generator=g)
    if absent is not None:
        masks[masks == absent] = (absent + 1) % c
    if ignored:
        masks.view(-1)[torch.randperm(masks.numel(), generator=g)[:ignored]] = IGNORE_INDEX
    return logits, masks


def _case(g, n, c, h, w, ignored=0, absent=None):
    """A `Case` of random logits `(n, c, h, w)` and masks, labelled with what it holds."""
    label = f"logits {(n, c, h, w)}" + (f", class {absent} absent" if absent is not None else "")
    label += f", {ignored} pixels with mask 255" if ignored else ", no ignored pixel"
    return Case(*_logits_and_masks(g, n, c, h, w, ignored, absent), label=label)


def _cross_entropy(logits, masks, reduction="none", ignore_index=IGNORE_INDEX):
    return F.cross_entropy(logits, masks, ignore_index=ignore_index, reduction=reduction)


def _true_probs(logits, masks):
    """The probability of the true class at each valid pixel, (P,): a mistake without the log."""
    valid = masks != IGNORE_INDEX
    return logits.softmax(1).gather(1, masks.where(valid, 0).unsqueeze(1)).squeeze(1)[valid]


_NO_LOG = "Take the log of the probabilities (`F.log_softmax`), not the probabilities."


class PixelCrossEntropy(Question):
    title = "Per-pixel cross-entropy by hand, skipping ignored pixels"
    hints = (
        "`F.log_softmax(logits, dim=1)` gives log-probabilities `(N, C, H, W)`; the loss of a "
        "pixel is minus the log-probability of its true class.",
        "`log_probs.gather(1, masks.unsqueeze(1))` picks the true class's value at every pixel. "
        "Pixels whose mask is 255 must not be gathered (255 is not a class): replace them by 0 "
        "first with `masks.where(valid, 0)`, then leave them out of the mean.",
        "Mean over the valid pixels only: `losses[valid].mean()`.",
    )
    solution_code = """\
def pixel_cross_entropy(logits, masks, ignore_index=255):
    valid = masks != ignore_index                           # (N, H, W)
    log_probs = F.log_softmax(logits, dim=1)                # (N, C, H, W)
    safe = masks.where(valid, 0).unsqueeze(1)               # (N, 1, H, W)
    losses = -log_probs.gather(1, safe).squeeze(1)          # (N, H, W)
    return losses[valid].mean()"""

    mistakes = (
        Mistake(lambda logits, masks: _cross_entropy(logits, masks, "sum"),
                "That is the sum over pixels; the loss is the mean."),
        Mistake(lambda logits, masks: _cross_entropy(logits, masks).mean(),
                "You divided by every pixel, ignored ones included: divide by the number of "
                "valid pixels (`losses[valid].mean()`)."),
        Mistake(lambda logits, masks: -_cross_entropy(logits, masks, "mean"),
                "The sign is flipped: the loss is MINUS the log-probability of the true class."),
        Mistake(lambda logits, masks: -_true_probs(logits, masks).mean(), _NO_LOG),
        Mistake(lambda logits, masks: _true_probs(logits, masks).mean(), _NO_LOG),
    )  # fmt: skip

    def reference(self, logits, masks, ignore_index=IGNORE_INDEX):
        return float(_cross_entropy(logits, masks, "mean", ignore_index))

    def cases(self):
        g = self.generator()
        yield from (_case(g, 2, 3, 4, 5), _case(g, 1, 4, 3, 3, 3), _case(g, 3, 2, 4, 4, 10))

    def explain_error(self, error, case):
        if (case.args[1] == IGNORE_INDEX).any():
            return (
                "This case has pixels whose mask is 255 (ignore). 255 is not a class: "
                "replace those pixels by a valid class before `gather`, then leave them "
                "out of the mean."
            )
        return None


class MedianFrequencyWeights(Question):
    title = "Median-frequency class weights"
    hints = (
        "The frequency of class c is `pixel_counts[c] / pixel_counts.sum()`; the weight is "
        "`median(freq) / freq[c]`.",
        "With an even number of classes the median is the mean of the two middle values. "
        "`torch.median` returns the lower one instead; `freq.quantile(0.5)` or `np.median` "
        "average them.",
        "Return float32 weights, as the loss expects: `.float()`.",
    )
    solution_code = """\
def median_frequency_weights(pixel_counts):
    freq = pixel_counts.double() / pixel_counts.sum()
    return (freq.quantile(0.5) / freq).float()"""

    mistakes = (
        Mistake(lambda counts: _freq(counts).median() / _freq(counts),
                "`torch.median` takes the lower of the two middle values when the count is even; "
                "the median is their mean: use `freq.quantile(0.5)`."),
        Mistake(lambda counts: _freq(counts) / _freq(counts).quantile(0.5),
                "Your weights are upside down: rare classes should get LARGE weights, "
                "`median / freq`."),
        Mistake(lambda counts: 1 / (len(counts) * _freq(counts)),
                "That is inverse-frequency weighting, `1 / (K * freq)`; here the numerator is "
                "the median frequency."),
    )  # fmt: skip

    def reference(self, pixel_counts):
        return class_weights(pixel_counts, method="median")

    def cases(self):
        yield Case(torch.tensor([900, 60, 40]))
        yield Case(torch.tensor([5000, 400, 300, 100]))  # even: the median is a mean
        yield Case(torch.tensor([70, 30]))
        yield Case(torch.tensor([12000, 1500, 800, 600, 100]))

    def diagnose(self, expected, got):
        if got.dtype != expected.dtype and not compare_tensors(expected, got.float()):
            return "The values are right: convert with `.float()`."
        return None


def _freq(counts):
    return counts.double() / counts.sum()


def _dice_variant(
    logits, masks, smooth=1.0, present_only=True, use_ignore=True, softmax=True, per_image=False
):
    """Soft Dice with one typical mistake (the library's `DiceLoss` is the right one)."""
    num_classes = logits.shape[1]
    valid = (masks != IGNORE_INDEX).unsqueeze(1).float()
    probs = logits.softmax(1) if softmax else logits
    onehot = F.one_hot(masks.where(masks != IGNORE_INDEX, 0), num_classes)
    onehot = onehot.permute(0, 3, 1, 2).float() * valid
    if use_ignore:
        probs = probs * valid
    dims = (2, 3) if per_image else (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    card = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + smooth) / (card + smooth)
    present = onehot.sum(dims) > 0 if present_only else torch.ones_like(dice, dtype=torch.bool)
    return (1 - dice)[present].mean()


def _dice_mistake(**mistake):
    """`soft_dice_loss` made with `mistake` (keywords of `_dice_variant`)."""

    def soft_dice_loss(logits, masks, smooth=1.0):
        return _dice_variant(logits, masks, **{"smooth": smooth, **mistake})

    return soft_dice_loss


class SoftDiceLoss(Question):
    title = "Multi-class soft Dice loss, skipping ignored pixels"
    hints = (
        "Softmax over the classes, one-hot the masks (after replacing 255 by 0), then multiply "
        "both by the valid-pixel mask `(N, 1, H, W)` so ignored pixels count nowhere.",
        "Sum over the batch and the pixels (dims 0, 2, 3) to get, per class, "
        "`dice_c = (2 * sum(p * g) + smooth) / (sum(p) + sum(g) + smooth)`.",
        "The loss is `1 - dice_c` averaged over the classes that appear in the (valid) masks.",
    )
    solution_code = """\
def soft_dice_loss(logits, masks, ignore_index=255, smooth=1.0):
    num_classes = logits.shape[1]
    valid = (masks != ignore_index)                                   # (N, H, W)
    probs = logits.softmax(dim=1) * valid.unsqueeze(1)                # (N, C, H, W)
    onehot = F.one_hot(masks.where(valid, 0), num_classes)            # (N, H, W, C)
    onehot = onehot.permute(0, 3, 1, 2).float() * valid.unsqueeze(1)  # (N, C, H, W)
    inter = (probs * onehot).sum((0, 2, 3))                           # (C,)
    card = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))               # (C,)
    dice = (2 * inter + smooth) / (card + smooth)                     # (C,)
    present = onehot.sum((0, 2, 3)) > 0
    return (1 - dice)[present].mean()"""

    mistakes = (
        Mistake(_dice_mistake(present_only=False), "Average over the classes PRESENT in the "
                "masks only: an absent class has no overlap to score."),
        Mistake(_dice_mistake(use_ignore=False), "Ignored pixels (255) still count: zero them in "
                "the probabilities too, not only in the one-hot masks."),
        Mistake(_dice_mistake(softmax=False), "Dice needs probabilities: apply `softmax(dim=1)` "
                "to the logits first."),
        Mistake(_dice_mistake(per_image=True), "Sum over the whole batch (dims 0, 2, 3), not "
                "per image: an image without a class would otherwise score 0/0 for it."),
        Mistake(_dice_mistake(smooth=1.0), "Use the `smooth` argument you were given."),
    )  # fmt: skip

    def reference(self, logits, masks, ignore_index=IGNORE_INDEX, smooth=1.0):
        return float(DiceLoss(ignore_index=ignore_index, smooth=smooth)(logits, masks))

    def cases(self):
        g = self.generator()
        yield from (_case(g, 2, 3, 5, 4), _case(g, 2, 4, 4, 4, 6, absent=2))
        yield _case(g, 1, 2, 6, 6, 12)
        logits, masks = _logits_and_masks(g, 3, 3, 4, 4)
        masks[0] = 0  # image 0 holds only background: per-image Dice would differ
        yield Case(
            logits,
            masks,
            smooth=0.5,
            label="logits (3, 3, 4, 4), smooth=0.5, an image of background only",
        )

    def explain_error(self, error, case):
        if (case.args[1] == IGNORE_INDEX).any():
            return (
                "This case has pixels whose mask is 255 (ignore): `F.one_hot` cannot take "
                "255 with fewer classes. Replace them by 0 first (`masks.where(valid, 0)`), "
                "then zero them out of both the one-hot masks and the probabilities."
            )
        return None


# ---- q4 (a decision) and the questionnaire: answers as a dict --------------------------------


class ChooseLoss(ChoiceQuestion):
    title = "For each need, the loss that meets it: 'ce', 'weighted ce', 'dice' or 'ce+dice'"
    hints = (
        "Look at the table of the four models under each loss: which loss charges 'misses every "
        "ring' and 'misses as many bg' the same, which charges them most differently?",
        "And at the plot of the losses against the probability of the true class: which one "
        "grows without bound as that probability goes to 0, which one stays at most 1?",
    )
    solution_code = """\
def choose_loss():
    return {"a": "weighted ce", "b": "ce", "c": "dice", "d": "dice", "e": "ce+dice"}"""
    answers = {"a": "weighted ce", "b": "ce", "c": "dice", "d": "dice", "e": "ce+dice"}
    reasons = {
        "a": "Weighted CE charged missing the rings 62x missing as many background pixels; "
        "Dice 10x; plain CE 1x.",
        "b": "Plain CE gave both models 0.1714: a pixel is a pixel.",
        "c": "Dice scores each class as a whole against its own size: no weights needed.",
        "d": "1 - Dice stays between 0 and 1; -log p has no upper bound as p goes to 0.",
        "e": "The sum keeps CE's smooth per-pixel gradient and Dice's equal say per class; it "
        "is the loss the recipe trains with.",
    }


class LossQuiz(Questionnaire):
    hints = (
        "Every answer is printed by a cell of this notebook: the 2x2 example, the dtype errors, "
        "the 255 share, the all-background table, the class weights, the loss tables.",
    )
    answers = {1: 1.10, 2: ("int64", "long", "torch.int64", "torch.long"), 3: -100, 4: 2.75,
               5: 0, 6: 4.564, 7: 2.572, 8: 62.4, 9: "ce", 10: "ce"}  # fmt: skip
    tolerances = {1: 0.01, 4: 0.01, 6: 0.001, 7: 0.001, 8: 0.1}
    reasons = {
        1: "A three-way tie: probability 1/3, loss log 3 = 1.10.",
        2: "Class indices are int64 (`torch.long`); float, int32 and uint8 are refused.",
        3: "PyTorch's default ignore_index is -100, so 255 counts as a class number.",
        4: "2.75% of the validation pixels are marked 255.",
        5: "Predicting background everywhere finds no object: IoU 0 for disc, bar and ring.",
        6: "Median frequency over all pixels: the ring gets 4.564.",
        7: "Counted over the 113 images with a ring (Eigen & Fergus): 2.572.",
        8: "Missing the rings costs 62.4x missing as many background pixels under weighted CE.",
        9: "Plain CE charges both models 0.1714.",
        10: "`CEDiceLoss` passes the weights to its cross-entropy term only.",
    }


q1, q2, q3 = PixelCrossEntropy(), MedianFrequencyWeights(), SoftDiceLoss()
q4, quiz = ChooseLoss(), LossQuiz()

# ex.progress(): a table of this notebook's questions and their state; .to_json(path) saves it
progress = make_progress(__name__)
