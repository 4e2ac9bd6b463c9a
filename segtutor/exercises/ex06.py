"""Exercises of 06_visualisation.ipynb: `colorize_mask`, `error_counts`, `worst_k_indices`,
`overlay_mask` (`ex.q1` to `ex.q4`), what to do after looking at the errors (`ex.q5`), and
the questionnaire (`ex.quiz`).

Introduced in `06_visualisation.ipynb`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from segtutor.exercises.compare import compare_tensors, compare_values
from segtutor.exercises.core import Case, Mistake, Question
from segtutor.exercises.progress import make_progress
from segtutor.exercises.quiz import ChoiceQuestion, Questionnaire
from segtutor.inference import rank_worst
from segtutor.settings import IGNORE_INDEX
from segtutor.viz import colorize, overlay

__all__ = ["q1", "q2", "q3", "q4", "q5", "quiz", "progress"]

_PALETTES = {
    3: [(0, 0, 0), (230, 159, 0), (86, 180, 233)],
    4: [(0, 0, 0), (230, 159, 0), (86, 180, 233), (0, 158, 115)],
    5: [(10, 10, 10), (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66)],
}


def _mask(g, shape, num_classes, ignored=0):
    mask = torch.randint(0, num_classes, shape, generator=g)
    if ignored:
        mask.view(-1)[torch.randperm(mask.numel(), generator=g)[:ignored]] = IGNORE_INDEX
    return mask


def _as_numpy(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x


class ColorizeMask(Question):
    title = "Colour a mask: class c as palette[c], ignored pixels (255) as ignore_color"
    hints = (
        "Build a lookup table: a uint8 array of 256 colours, `lut = np.zeros((256, 3), "
        "np.uint8)`, with `lut[:len(palette)] = palette` and `lut[255] = ignore_color`.",
        "Indexing the table with the whole mask, `lut[mask]`, gives `(H, W, 3)` in one step "
        "(convert a tensor mask with `np.asarray(mask)` first).",
    )
    solution_code = """\
def colorize_mask(mask, palette, ignore_color=(255, 255, 255)):
    lut = np.zeros((256, 3), dtype=np.uint8)    # one colour per possible value
    lut[: len(palette)] = palette
    lut[255] = ignore_color
    return lut[np.asarray(mask)]                  # (H, W, 3) uint8"""
    allow_numpy = True

    def reference(self, mask, palette, ignore_color=(255, 255, 255)):
        colors = colorize(mask, palette)  # (H, W, 3) uint8, ignored pixels in white
        colors[np.asarray(mask) == IGNORE_INDEX] = ignore_color
        return colors

    def cases(self):
        g = self.generator()
        yield Case(_mask(g, (4, 5), 3), _PALETTES[3], label="a 4x5 mask, 3 classes, no 255")
        label = "a 6x6 mask, 4 classes, 7 pixels of 255"
        yield Case(_mask(g, (6, 6), 4, ignored=7), _PALETTES[4], label=label)
        yield Case(
            _mask(g, (3, 7), 5, ignored=4),
            _PALETTES[5],
            ignore_color=(255, 0, 255),
            label="a 3x7 mask, 5 classes, 4 pixels of 255, ignore_color=(255, 0, 255)",
        )

    def explain_error(self, error, case):
        if isinstance(error, IndexError) and (np.asarray(case.args[0]) == IGNORE_INDEX).any():
            return (
                "The mask holds 255 (ignore), which is not a class: `palette[255]` does not "
                "exist. Give 255 its own colour, `ignore_color`."
            )
        return None

    def compare(self, expected, got, name):
        got = _as_numpy(got)
        if isinstance(got, np.ndarray) and got.shape == (3, *expected.shape[:2]):
            return (
                f"`{name}` has shape {got.shape}; matplotlib's `imshow` wants colours "
                f"last, `(H, W, 3)` = {expected.shape}."
            )
        if isinstance(got, np.ndarray) and got.shape == expected.shape and got.dtype != np.uint8:
            scaled = " (values in 0..1?)" if got.max() <= 1 else ""
            return (
                f"`{name}` has dtype {got.dtype}{scaled}; expected uint8 colours 0..255. "
                "Build the table with `dtype=np.uint8`."
            )
        return compare_values(expected, got, name, allow_numpy=True)

    def diagnose(self, expected, got):
        got, ignored = _as_numpy(got), np.asarray(self.case.args[0]) == IGNORE_INDEX
        if got.shape == expected.shape and np.array_equal(got[~ignored], expected[~ignored]):
            color = self.case.kwargs.get("ignore_color", (255, 255, 255))
            return (
                "The classes are right, but the pixels of 255 should be "
                f"`ignore_color` = {tuple(color)}; use the argument."
            )
        return None


def _error_counts(pred, mask, ignore_index=IGNORE_INDEX):
    valid = mask != ignore_index
    false_positives = int(((pred == 1) & (mask == 0) & valid).sum())
    return false_positives, int(((pred == 0) & (mask == 1) & valid).sum())


class ErrorCounts(Question):
    title = "Count false positives and false negatives of a binary prediction (255 skipped)"
    hints = (
        "Class 1 is the object, class 0 the background. A false positive is predicted 1 where "
        "the mask says 0; a false negative is predicted 0 where the mask says 1.",
        "Compare with the mask's values explicitly (`mask == 0`, `mask == 1`): then the pixels "
        "whose mask is `ignore_index` are in neither count. Return two ints: `int(x.sum())`.",
    )
    solution_code = """\
def error_counts(pred, mask, ignore_index=255):
    false_positives = int(((pred == 1) & (mask == 0)).sum())
    false_negatives = int(((pred == 0) & (mask == 1)).sum())
    return false_positives, false_negatives"""

    mistakes = (
        Mistake(lambda pred, mask: _error_counts(pred, mask)[::-1], "The two are swapped: false "
                "positives (predicted object, truly background) first, then false negatives."),
    )  # fmt: skip

    def reference(self, pred, mask, ignore_index=IGNORE_INDEX):
        return _error_counts(pred, mask, ignore_index)

    def cases(self):
        g = self.generator()
        yield Case(_mask(g, (5, 6), 2), _mask(g, (5, 6), 2), label="a 5x6 pair, no 255")
        label = "an 8x8 pair, 10 mask pixels of 255"
        yield Case(_mask(g, (8, 8), 2), _mask(g, (8, 8), 2, ignored=10), label=label)
        pred = torch.zeros(4, 6, dtype=torch.int64)
        pred[:, :2] = 1
        mask = torch.zeros(4, 6, dtype=torch.int64)
        mask[1:, 1:4] = 1
        mask[0, :] = IGNORE_INDEX
        yield Case(pred, mask, label="a 4x6 pair: object on the left, first mask row all 255")

    def diagnose(self, expected, got):
        pred, mask = self.case.args[:2]
        loose = (int(((pred == 1) & (mask != 1)).sum()), int(((pred == 0) & (mask != 0)).sum()))
        if any(int(v) == w != e for v, w, e in zip(got, loose, expected, strict=True)):
            return (
                "Pixels whose mask is ignore_index (255) were counted as errors: "
                "they are neither background nor object, so leave them out."
            )
        return None


_BEST_FIRST = "Those are the best images, or the worst in reverse: lowest IoU first."


class WorstKIndices(Question):
    title = "Indices of the k lowest per-image IoUs, lowest first, NaN skipped"
    hints = (
        "NaN means the image had nothing to score; it must never be among the worst. Keep the "
        "indices whose IoU is not NaN: `(~per_image_iou.isnan()).nonzero()`.",
        "Sort those by their IoU (`argsort`), lowest first, and keep at most k. Return a list "
        "of Python ints (`.tolist()`).",
    )
    solution_code = """\
def worst_k_indices(per_image_iou, k):
    measured = (~per_image_iou.isnan()).nonzero().squeeze(1)    # indices, (M,)
    order = per_image_iou[measured].argsort()                   # lowest first
    return measured[order][:k].tolist()"""

    mistakes = (
        Mistake(lambda ious, k: rank_worst(-ious, k), _BEST_FIRST),
        Mistake(lambda ious, k: rank_worst(ious, k)[::-1], _BEST_FIRST),
    )

    def reference(self, per_image_iou, k):
        return rank_worst(per_image_iou, k)

    def cases(self):
        g = self.generator()
        ious = torch.rand(8, generator=g, dtype=torch.float64)
        yield Case(ious, 3, label="8 IoUs, none NaN, k=3")
        ious = torch.rand(10, generator=g, dtype=torch.float64)
        ious[[0, 4, 7]] = math.nan
        shown = [round(v, 2) for v in ious.tolist()]
        yield Case(ious, 4, label=f"10 IoUs with NaN at 0, 4 and 7, k=4: {shown}")
        ious = torch.tensor([math.nan, 0.4, math.nan, 0.1, math.nan], dtype=torch.float64)
        yield Case(ious, 3, label="[nan, 0.4, nan, 0.1, nan], k=3: only 2 images measured")

    def compare(self, expected, got, name):
        got = got.tolist() if isinstance(got, torch.Tensor | np.ndarray) else got
        got = list(got) if isinstance(got, tuple) else got
        if isinstance(got, list) and got and all(isinstance(v, float) for v in got):
            return (
                f"`{name}` holds floats ({got[0]:.4g}, ...): those look like IoU values. "
                "Return the indices of the images (their positions), as ints."
            )
        why = compare_values(expected, got, name)
        ious, k = self.case.args
        if why is None or not isinstance(got, list) or not all(isinstance(v, int) for v in got):
            return why
        if any(math.isnan(ious[i]) for i in got if 0 <= i < len(ious)):
            return (
                f"{why} It holds images whose IoU is NaN (nothing to score): skip them; "
                "NaN is neither good nor bad."
            )
        if len(got) != len(expected):
            return f"{why} Return at most k={k} indices (fewer if fewer images are measured)."
        return why


class OverlayMask(Question):
    title = "Blend the object classes of a mask into an image (background and 255 untouched)"
    hints = (
        "Colour the mask first (your `colorize_mask`, or a lookup table), as float.",
        "Only the object pixels change: `tint = (mask != 0) & (mask != 255)`. There, "
        "`(1 - alpha) * image + alpha * colours`; elsewhere the image as it is.",
        "Round and return uint8 `(H, W, 3)`: `out.round().astype(np.uint8)`.",
    )
    solution_code = """\
def overlay_mask(image, mask, palette, alpha=0.5):
    mask = np.asarray(mask)
    colors = np.zeros((256, 3))
    colors[: len(palette)] = palette
    colors = colors[mask]                               # (H, W, 3) float
    tint = (mask != 0) & (mask != 255)                  # objects only, (H, W)
    out = image.astype(np.float64)
    out[tint] = (1 - alpha) * out[tint] + alpha * colors[tint]
    return out.round().astype(np.uint8)"""

    atol, rtol = 1, 0  # truncating instead of rounding is fine
    mistakes = (
        Mistake(
            lambda image, mask, palette, alpha: overlay(image, mask, palette, 1 - alpha),
            "alpha is the weight of the MASK's colour: `(1 - alpha) * image + alpha * colours`.",
        ),
    )

    def reference(self, image, mask, palette, alpha=0.5):
        return overlay(image, mask, palette, alpha)

    def cases(self):
        g = self.generator()

        def image(h, w):
            return torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8).numpy()

        label = "a 4x5 image and mask, 3 classes, alpha 0.5"
        yield Case(image(4, 5), _mask(g, (4, 5), 3), _PALETTES[3], 0.5, label=label)
        label = "a 6x6 image and mask with 5 pixels of 255, alpha 0.3"
        yield Case(image(6, 6), _mask(g, (6, 6), 4, ignored=5), _PALETTES[4], 0.3, label=label)

    def compare(self, expected, got, name):
        got = _as_numpy(got)
        if not isinstance(got, np.ndarray) or got.shape != expected.shape:
            return compare_values(expected, got, name, allow_numpy=True)
        if got.dtype != np.uint8:
            return (
                f"`{name}` has dtype {got.dtype}; expected uint8 (round, then `.astype(np.uint8)`)."
            )
        if np.abs(got.astype(int) - expected.astype(int)).max() <= self.atol:
            return None
        return compare_tensors(expected, got, name)

    def diagnose(self, expected, got):
        image, mask = self.case.args[0], np.asarray(self.case.args[1])
        objects = (mask != 0) & (mask != IGNORE_INDEX)
        if not np.array_equal(_as_numpy(got)[~objects], image[~objects]):
            return (
                "Background pixels (class 0) and ignored pixels (255) must keep the "
                "image's own colours: tint the object classes only."
            )
        return None


# ---- q5: what the pictures say to do next; the questionnaire --------------------------------


class WhatNext(ChoiceQuestion):
    title = "What the pictures say to do next"
    hints = (
        "First ask whether it is an error at all (white is not scored), then whether the mask "
        "or the model is wrong, then whether the model is still learning.",
        "The choices: 'fix the label', 'weight the rare class', 'train longer', 'nothing'.",
    )
    answers = {"a": "fix the label", "b": "weight the rare class", "c": "train longer",
               "d": "nothing"}  # fmt: skip
    reasons = {
        "a": "The image shows the ring the model drew: the mask is wrong, and no training fixes "
        "a label error.",
        "b": "One rare class lost to a common one in every image while the curves are flat: "
        "the loss barely sees it (class weights or Dice, notebook 03).",
        "c": "Still improving at the last epoch: the run ended too early.",
        "d": "White is 'ignored': the 255 borders are not scored, whatever the prediction.",
    }
    solution_code = f"""\
def what_next():
    return {answers!r}"""


class VisualisationQuiz(Questionnaire):
    hints = (
        "Every answer is in a cell or a table of this notebook: the error-map colours, the grey "
        "levels of `imshow`, `denormalize`, the palette, the sliding window and flip TTA.",
    )
    answers = {1: "sky blue", 2: "white", 3: "wrong class", 4: 0.008, 5: 0.485, 6: 2, 7: 72,
               8: "okabe-ito", 9: "lowest", 10: "main head"}  # fmt: skip
    tolerances = {4: 0.0005, 5: 1e-6}
    reasons = {
        1: "Sky blue: background predicted where the mask has an object.",
        2: "White: the mask is 255, not scored.",
        3: "Both are object classes and they differ: yellow, wrong class.",
        4: "With 255 in the mask, imshow puts class 2 at 2 / 255 = 0.8% grey.",
        5: "denormalize: x * std + mean, so 0 becomes the mean, 0.485.",
        6: "The picture and its mirror image: two passes.",
        7: "Windows start every 96 * (1 - 0.25) = 72 pixels.",
        8: "Okabe-Ito, readable with the common colour-vision deficiencies.",
        9: "worst_k returns the lowest per-image mIoU first.",
        10: "The main head's training loss; the dashed all-heads total is on another scale.",
    }


q1, q2, q3, q4 = ColorizeMask(), ErrorCounts(), WorstKIndices(), OverlayMask()
q5, quiz = WhatNext(), VisualisationQuiz()

# ex.progress(): a table of this notebook's questions and their state; .to_json(path) saves it
progress = make_progress(__name__)
