"""Exercises of 07_real_data.ipynb: `colors_to_classes`, `per_image_dice`, `choose_scores` (a
decision), `dice_by_kind` (an experiment), and the questionnaire (`ex.q1` to `ex.q4`, `ex.quiz`).

Introduced in `07_real_data.ipynb`.
"""

from __future__ import annotations

import numpy as np
import torch

from segtutor.exercises.compare import compare_tensors, compare_values
from segtutor.exercises.core import Case, Mistake, Question
from segtutor.exercises.progress import make_progress
from segtutor.exercises.quiz import ChoiceQuestion, Questionnaire
from segtutor.formats import VOC_PALETTE
from segtutor.settings import IGNORE_INDEX

__all__ = ["q1", "q2", "q3", "q4", "quiz", "progress"]

VOC_BORDER = (224, 224, 192)  # the cream VOC's colour table gives index 255


# ---- q1: colour-coded masks -----------------------------------------------------------------


def _paint(classes: np.ndarray, palette, extra=None) -> np.ndarray:
    """An RGB mask `(H, W, 3)` uint8: class c in palette[c]; `extra[value]` for other values."""
    colors = dict(enumerate(palette)) | (extra or {})
    rgb = np.zeros((*classes.shape, 3), dtype=np.uint8)
    for value, color in colors.items():
        rgb[classes == value] = color
    return rgb


def _lookup(rgb, palette, unknown):
    """Class indices of an RGB mask: palette colours to their index, any other to `unknown`."""
    rgb = np.asarray(rgb).astype(np.int64)
    keys = rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2]  # (H, W): one int per colour
    out = np.full(keys.shape, unknown, dtype=np.int64)
    for index, (r, g, b) in enumerate(palette):
        out[keys == r * 65536 + g * 256 + b] = index
    return torch.from_numpy(out)


class ColorsToClasses(Question):
    title = (
        "Colour-coded mask -> class indices, every unknown colour ignored (255), never background"
    )
    hints = (
        "Start from a mask full of 255 (`np.full(rgb.shape[:2], 255)`), not from zeros: a pixel "
        "whose colour is not in the palette must not become class 0.",
        "For each class c, `(rgb == palette[c]).all(axis=-1)` is the `(H, W)` boolean mask of "
        "its pixels; set them to c.",
        "Return int64 class indices `(H, W)`: `torch.from_numpy(out)` with `dtype=np.int64`.",
    )
    solution_code = """\
def colors_to_classes(rgb, palette):
    out = np.full(rgb.shape[:2], 255, dtype=np.int64)   # unknown colours: ignore
    for index, color in enumerate(palette):
        out[(rgb == np.array(color)).all(axis=-1)] = index
    return torch.from_numpy(out)                        # (H, W) int64"""
    allow_numpy = True
    mistakes = (
        Mistake(lambda rgb, palette: _lookup(rgb, palette, 0), "Colours that are not in the "
                "palette became class 0: that is the silent mislabelling of section 3 (VOC's "
                "border, a JPEG-shifted colour). Start from 255, ignore, instead."),
        Mistake(lambda rgb, palette: _lookup(np.repeat(rgb[..., :1], 3, axis=-1),
                                             [(c[0],) * 3 for c in palette], 255),
                "Two colours with the same red channel are not the same class: compare all "
                "three channels (`.all(axis=-1)`)."),
    )  # fmt: skip

    def reference(self, rgb, palette):
        return _lookup(rgb, palette, IGNORE_INDEX)

    def cases(self):
        g = np.random.default_rng(self.seed)
        classes = g.choice([0, 8, 12], size=(6, 7))
        classes[2, 1:5] = 255  # an outline
        palette = list(VOC_PALETTE)
        label = "a 6x7 VOC mask (background, cat, dog) with a cream border (VOC's 255)"
        yield Case(_paint(classes, palette, {255: VOC_BORDER}), palette, label=label)
        classes = g.choice([0, 1, 2, 9], size=(5, 5), p=[0.4, 0.25, 0.25, 0.1])
        palette = [(128, 128, 128), (128, 0, 0), (192, 192, 128)]  # CamVid's sky, building, pole
        label = "a 5x5 CamVid-style mask (sky, building, pole) with 3 JPEG-shifted pixels"
        yield Case(_paint(classes, palette, {9: (129, 0, 0)}), palette, label=label)
        classes = g.choice([0, 1, 2], size=(4, 6))
        palette = [(10, 0, 0), (10, 0, 200), (10, 200, 0)]  # same red channel everywhere
        yield Case(_paint(classes, palette), palette, label="a 4x6 mask, 3 colours sharing red")

    def compare(self, expected, got, name):
        if isinstance(got, np.ndarray | torch.Tensor) and got.shape == expected.shape:
            got = torch.as_tensor(np.asarray(got))
            if got.dtype != torch.int64:
                return f"`{name}` has dtype {got.dtype}; class indices are int64."
        return compare_tensors(expected, got, name, allow_numpy=True)


# ---- q2 and q4: Dice per image, Dice per kind -------------------------------------------------


def _counts(preds: torch.Tensor, masks: torch.Tensor, ignore: bool = True) -> torch.Tensor:
    """TP, FP, FN of class 1 per image: int64 `(N, 3)`; pixels whose mask is 255 left out."""
    valid = masks != IGNORE_INDEX if ignore else torch.ones_like(masks, dtype=torch.bool)
    pred, true = (preds == 1) & valid, (masks == 1) & valid
    dims = tuple(range(1, masks.ndim))
    return torch.stack(
        [(pred & true).sum(dims), (pred & ~true).sum(dims), (~pred & true).sum(dims)], dim=-1
    )


def _dice(counts: torch.Tensor) -> torch.Tensor:
    """Dice from `(..., 3)` TP, FP, FN counts: float64, NaN where all three are 0."""
    tp, fp, fn = counts.double().unbind(-1)
    return 2 * tp / (2 * tp + fp + fn)


def _binary_batch(g: torch.Generator, n: int, size: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Random preds and masks `(n, size, size)` of 0/1, the prediction right 70% of the time."""
    masks = (torch.rand(n, size, size, generator=g) < 0.3).long()
    flips = torch.rand(n, size, size, generator=g) < 0.3
    return masks.where(~flips, 1 - masks), masks


class PerImageDice(Question):
    title = "Nucleus Dice of each image: float64 (N,), NaN where mask and prediction are both empty"
    hints = (
        "Leave out the pixels whose mask is 255 first: `valid = masks != 255`.",
        "Per image, sum over the height and width axes: `tp = (pred & true).sum(dim=(1, 2))`, "
        "likewise FP (predicted 1, true 0) and FN (predicted 0, true 1).",
        "Dice = 2 TP / (2 TP + FP + FN) in float64: an image with no nucleus in its mask and "
        "none predicted gives 0 / 0 = NaN by itself.",
    )
    solution_code = """\
def per_image_dice(preds, masks):
    valid = masks != 255                                   # (N, H, W) bool
    pred, true = (preds == 1) & valid, (masks == 1) & valid
    tp = (pred & true).sum(dim=(1, 2)).double()           # (N,)
    fp = (pred & ~true).sum(dim=(1, 2)).double()
    fn = (~pred & true).sum(dim=(1, 2)).double()
    return 2 * tp / (2 * tp + fp + fn)                     # NaN where 0 / 0"""
    mistakes = (
        Mistake(lambda preds, masks: _dice(_counts(preds, masks).sum(0)).repeat(len(masks)),
                "Every image got the same number: that is the dataset's pooled Dice. Count TP, "
                "FP and FN per image (sum over dims 1 and 2 only)."),
        Mistake(lambda preds, masks: _dice(_counts(preds, masks, ignore=False)),
                "Pixels whose mask is 255 were counted: leave them out (`masks != 255`)."),
        Mistake(lambda preds, masks: _dice(_counts(preds, masks)).nan_to_num(1.0),
                "An image with no nucleus anywhere got Dice 1: it was not measured, keep NaN "
                "(MONAI's `DiceMetric` leaves such images out of its mean too)."),
        Mistake(lambda preds, masks: _dice(_counts(preds, masks)).nan_to_num(0.0),
                "An image with no nucleus anywhere got Dice 0: it was not measured, keep NaN."),
        Mistake(lambda preds, masks: (lambda d: d / (2 - d))(_dice(_counts(preds, masks))),
                "That is the IoU, TP / (TP + FP + FN); Dice counts TP twice."),
    )  # fmt: skip

    def reference(self, preds, masks):
        return _dice(_counts(preds, masks))

    def cases(self):
        g = self.generator()
        yield Case(*_binary_batch(g, 3), label="3 images 6x6, nuclei in every mask")
        preds, masks = _binary_batch(g, 4)
        masks[1], preds[1] = 0, 0  # no nucleus, none predicted: NaN
        masks[2], preds[2, 0, :3] = 0, 1  # no nucleus, three predicted: Dice 0
        masks[3, :, 0] = 255  # a column of ignored pixels
        preds[3, :, 0] = 1
        label = (
            "4 images 6x6: image 1 with no nucleus and none predicted, image 2 with no nucleus "
            "but 3 predicted, image 3 with a column of 255 predicted as nucleus"
        )
        yield Case(preds, masks, label=label)

    def compare(self, expected, got, name):
        if isinstance(got, torch.Tensor) and got.is_floating_point():
            got = got.double()
        return compare_tensors(expected, got, name)


def _dice_by_kind(preds, masks, kinds, pooled=True):
    """Nucleus Dice of each kind: pooled over its images, or the mean of its per-image Dice."""
    counts = _counts(preds, masks)  # (N, 3)
    out = {}
    for kind in dict.fromkeys(kinds):  # in order of first appearance
        rows = counts[torch.tensor([k == kind for k in kinds])]
        if pooled:
            out[kind] = _dice(rows.sum(0)).item()
        else:
            out[kind] = torch.nanmean(_dice(rows)).item()
    return out


class DiceByKind(Question):
    title = "Pooled nucleus Dice of each kind of image: {kind: Dice over all its images}"
    hints = (
        "Group the images by `kinds[i]`; for each kind, add up TP, FP and FN over its images "
        "(pixels whose mask is 255 left out), then take Dice once: 2 TP / (2 TP + FP + FN).",
        "Boolean indexing picks a kind's images: `keep = torch.tensor([k == kind for k in "
        "kinds])`, then `preds[keep]`, `masks[keep]`. Return plain floats (`.item()`).",
    )
    solution_code = """\
def dice_by_kind(preds, masks, kinds):
    scores = {}
    for kind in sorted(set(kinds)):
        keep = torch.tensor([k == kind for k in kinds])    # (N,) bool
        valid = masks[keep] != 255
        pred, true = (preds[keep] == 1) & valid, (masks[keep] == 1) & valid
        tp, fp, fn = (pred & true).sum(), (pred & ~true).sum(), (~pred & true).sum()
        scores[kind] = (2 * tp / (2 * tp + fp + fn)).item()   # pooled over the kind
    return scores"""
    mistakes = (
        Mistake(lambda preds, masks, kinds: _dice_by_kind(preds, masks, kinds, pooled=False),
                "That is the mean of each kind's per-image Dice; this question pools: add up "
                "TP, FP and FN over the kind's images, then divide once."),
    )  # fmt: skip

    def reference(self, preds, masks, kinds):
        return _dice_by_kind(preds, masks, kinds)

    def cases(self):
        g = self.generator()
        preds, masks = _binary_batch(g, 5)
        masks[4, :4], preds[0, :, :2] = 0, 1  # a sparse image: per-image and pooled differ
        kinds = ["fluorescence", "histology", "fluorescence", "brightfield", "fluorescence"]
        yield Case(preds, masks, kinds, label="5 images 6x6 of three kinds")
        preds, masks = _binary_batch(g, 4)
        masks[:, 0] = 255
        yield Case(preds, masks, ["a", "b", "a", "b"], label="4 images, their first row 255")

    def explain_error(self, error, case):
        if isinstance(error, TypeError | IndexError) and isinstance(case.args[2], list):
            return "`kinds` is a list of strings, one per image: group the images by it."
        return None

    def compare(self, expected, got, name):
        if isinstance(got, dict):
            got = {k: v.item() if isinstance(v, torch.Tensor) else v for k, v in got.items()}
        return compare_values(expected, got, name)


# ---- q3 and the questionnaire: answers as a dict --------------------------------------------


class ChooseScores(ChoiceQuestion):
    title = "For each report, the score it needs: 'per-image' or 'dataset'"
    hints = (
        "Ask who or what each number stands for: one case (a patient, a slide, an image) that "
        "counts as much as any other, or the pixels of the whole set together?",
        "Pooling lets large images and large objects weigh more; a per-image mean weighs every "
        "image the same, and keeps one score per image to sort by.",
    )
    solution_code = """\
def choose_scores():
    return {"a": "per-image", "b": "dataset", "c": "dataset", "d": "per-image"}"""
    answers = {"a": "per-image", "b": "dataset", "c": "dataset", "d": "per-image"}
    reasons = {
        "a": "Each patient counts the same, however small the lesion: a per-case mean (as "
        "medical challenges rank).",
        "b": "A street-scene benchmark asks how many pixels of each class are right over the "
        "whole test set: pool the confusion matrix.",
        "c": "The total area over the plate is a sum of pixels: the pooled score says how well "
        "those pixels are found; a tiny image should not weigh as much as a crowded one.",
        "d": "To find images to re-annotate you need a score per image, to sort by.",
    }


class RealDataQuiz(Questionnaire):
    hints = (
        "Every answer is printed by a cell of this notebook: the kinds table (section 1), the "
        "VOC mask values (section 3), the layout table (section 3), the empty-image example "
        "(section 6).",
    )
    solution_code = """\
def questionnaire():
    return {1: 3, 2: 255, 3: 0, 4: 13, 5: 255, 6: 11, 7: "nan", 8: "dataset"}"""
    answers = {1: 3, 2: 255, 3: 0, 4: 13, 5: 255, 6: 11, 7: "nan", 8: "dataset"}
    reasons = {
        1: "Fluorescence, brightfield and histology (section 1).",
        2: "VOC marks object outlines and unclear regions 255 (section 3).",
        3: "The lookup starts from zeros and the cream border is none of the 21 colours.",
        4: "Cityscapes' car: label id 26, train id 13 (the layout table).",
        5: "The trimap's border (3) is ignored by default.",
        6: "SegNet's CamVid stores void as 11; segtutor reads it as 255.",
        7: "0 / 0: not measured. Write the string 'nan'.",
        8: "VOC and Cityscapes pool the pixels of the whole test set.",
    }


q1, q2, q3, q4 = ColorsToClasses(), PerImageDice(), ChooseScores(), DiceByKind()
quiz = RealDataQuiz()

# ex.progress(): a table of this notebook's questions and their state; .to_json(path) saves it
progress = make_progress(__name__)
