"""Exercises of 05_evaluation.ipynb: a confusion matrix by hand, IoU from it, mIoU, Dice from IoU
(`ex.q1` to `ex.q4`), precision or recall from a matrix (`ex.q5`), and the questionnaire
(`ex.quiz`).

Introduced in `05_evaluation.ipynb`.
"""

from __future__ import annotations

import math

import torch

from segtutor.exercises.compare import compare_tensors, compare_values
from segtutor.exercises.core import Case, Mistake, Question
from segtutor.exercises.progress import make_progress
from segtutor.exercises.quiz import ChoiceQuestion, Questionnaire
from segtutor.metrics import confusion_matrix, iou_from_confusion, mean_ignoring_nan
from segtutor.settings import IGNORE_INDEX

__all__ = ["q1", "q2", "q3", "q4", "q5", "quiz", "progress"]


def _preds_and_masks(g, shape, num_classes, ignored=0, absent=()):
    """Random preds and masks of `shape`; classes in `absent` appear in neither."""
    allowed = torch.tensor([c for c in range(num_classes) if c not in absent])
    masks = allowed[torch.randint(0, len(allowed), shape, generator=g)]
    preds = allowed[torch.randint(0, len(allowed), shape, generator=g)]
    agree = torch.rand(shape, generator=g) < 0.6  # a "model" that is right 60% of the time
    preds = preds.where(~agree, masks)
    if ignored:
        masks.view(-1)[torch.randperm(masks.numel(), generator=g)[:ignored]] = IGNORE_INDEX
    return preds, masks


class ConfusionFromScratch(Question):
    title = "A confusion matrix (rows = truth, columns = prediction) with one bincount"
    hints = (
        "Drop the ignored pixels first: `valid = masks != ignore_index`, then keep "
        "`masks[valid]` and `preds[valid]` (1-D tensors).",
        "Pixel (truth t, prediction p) goes to bin `num_classes * t + p`; "
        "`torch.bincount(..., minlength=num_classes**2)` counts every bin, even empty ones.",
        "`.reshape(num_classes, num_classes)`: row t, column p. Keep the int64 counts.",
    )
    solution_code = """\
def confusion_matrix_from_scratch(preds, masks, num_classes, ignore_index=255):
    valid = masks != ignore_index                   # (N, H, W) bool
    truth, pred = masks[valid], preds[valid]        # (P,) each, valid pixels only
    bins = torch.bincount(num_classes * truth + pred, minlength=num_classes**2)
    return bins.reshape(num_classes, num_classes)   # (C, C) int64"""
    mistakes = (
        Mistake(lambda *args, **kwargs: confusion_matrix(*args, **kwargs).T,
                "You have the transpose: rows must be the TRUE class and columns the prediction "
                "(`num_classes * truth + pred`, not the other way)."),
    )  # fmt: skip

    def reference(self, preds, masks, num_classes, ignore_index=IGNORE_INDEX):
        return confusion_matrix(preds, masks, num_classes, ignore_index)

    def cases(self):
        g = self.generator()
        yield Case(
            *_preds_and_masks(g, (2, 4, 5), 3),
            3,
            label="preds and masks (2, 4, 5), 3 classes, no ignored pixel",
        )
        yield Case(
            *_preds_and_masks(g, (3, 6, 6), 4, ignored=12),
            4,
            label="preds and masks (3, 6, 6), 4 classes, 12 pixels with mask 255",
        )
        yield Case(
            *_preds_and_masks(g, (1, 5, 7), 5, ignored=4, absent=(4,)),
            5,
            label="preds and masks (1, 5, 7), 5 classes, class 4 in neither",
        )
        preds, masks = _preds_and_masks(g, (2, 3, 3), 3, ignored=3)
        masks[masks == IGNORE_INDEX] = 9
        yield Case(
            preds,
            masks,
            3,
            ignore_index=9,
            label="preds and masks (2, 3, 3), 3 classes, ignore_index=9 (not 255)",
        )

    def explain_error(self, error, case):
        ignore = case.kwargs.get("ignore_index", IGNORE_INDEX)
        if (case.args[1] == ignore).any() and isinstance(error, RuntimeError | IndexError):
            return (
                f"This case has pixels whose mask is {ignore} (ignore_index): drop them "
                "before counting, `valid = masks != ignore_index`."
            )
        return None

    def diagnose(self, expected, got):
        if not isinstance(got, torch.Tensor):
            return None
        _, masks, num_classes = self.case.args
        ignore = self.case.kwargs.get("ignore_index", IGNORE_INDEX)
        if got.numel() < expected.numel():
            return (
                "A class that appears nowhere still needs its row and column: pass "
                f"`minlength=num_classes**2` to `bincount` (here C = {num_classes})."
            )
        if got.is_floating_point() and torch.equal(got.long(), expected):
            return "Counts are integers: keep the int64 that `bincount` returns."
        if ignore != IGNORE_INDEX and (masks == ignore).any():
            return f"This case uses ignore_index={ignore}: use the argument, not a hard-coded 255."
        if got.shape == expected.shape and int(got.sum()) > int(expected.sum()):
            return (
                "Your matrix counts more pixels than there are valid ones: leave the pixels "
                "whose mask is ignore_index out."
            )
        return None


def _iou_mistake(formula):
    """`iou_per_class` with a wrong `formula(tp, rows, cols)`, each `(C,)` float64."""
    return lambda cm: formula(cm.double().diagonal(), cm.double().sum(1), cm.double().sum(0))


class IoUPerClass(Question):
    title = "IoU per class from a confusion matrix, NaN for a class seen nowhere"
    hints = (
        "TP of class c is the diagonal `cm[c, c]`; row c sums all pixels whose truth is c "
        "(TP + FN), column c all pixels predicted c (TP + FP).",
        "IoU = TP / (TP + FP + FN) = TP / (row sum + column sum - TP): the diagonal is in "
        "both sums, so subtract it once.",
        "Convert to float first (`cm.double()`): then a class with no pixel anywhere gives "
        "0 / 0 = NaN by itself, which is what we want.",
    )
    solution_code = """\
def iou_per_class(cm):
    cm = cm.double()                                  # (C, C), float64: 0/0 -> NaN
    tp = cm.diagonal()                                # (C,)
    union = cm.sum(dim=0) + cm.sum(dim=1) - tp        # TP + FP + FN, (C,)
    return tp / union"""
    mistakes = (
        Mistake(_iou_mistake(lambda tp, rows, cols: tp / cols), "That is TP / (TP + FP), the "
                "precision: the union also needs the false negatives (the row)."),
        Mistake(_iou_mistake(lambda tp, rows, cols: tp / rows), "That is TP / (TP + FN), the "
                "recall: the union also needs the false positives (the column)."),
        Mistake(_iou_mistake(lambda tp, rows, cols: 2 * tp / (rows + cols)), "That is the Dice "
                "score 2 TP / (2 TP + FP + FN); IoU counts TP once."),
        Mistake(_iou_mistake(lambda tp, rows, cols: tp / (rows + cols)), "The union counts the "
                "diagonal twice: row sum + column sum - TP."),
    )  # fmt: skip

    def reference(self, cm):
        return iou_from_confusion(cm)

    def cases(self):
        g = self.generator()
        cm = torch.randint(1, 50, (3, 3), generator=g)
        yield Case(cm, label="a 3x3 matrix, every class present")
        cm = torch.randint(1, 50, (4, 4), generator=g)
        cm[2, :], cm[:, 2] = 0, 0  # class 2: in no mask and no prediction
        yield Case(cm, label="a 4x4 matrix where class 2 is in no mask and no prediction")
        cm = torch.randint(1, 20, (5, 5), generator=g)
        cm[4, :], cm[0, 0] = 0, 500  # class 4 never true, but predicted sometimes: IoU 0, not NaN
        yield Case(cm, label="a 5x5 matrix: class 4 is predicted but never true")

    def compare(self, expected, got, name):
        if isinstance(got, torch.Tensor) and not got.is_floating_point():
            return (
                f"`{name}` has dtype {got.dtype}: IoU is a fraction between 0 and 1. "
                "Convert the counts with `cm.double()` before dividing."
            )
        if not isinstance(got, torch.Tensor):
            return compare_tensors(expected, got, name)
        got = got.double()  # any floating dtype will do
        why = compare_tensors(expected, got, name)
        absent = expected.isnan()
        if why and got.shape == expected.shape and absent.any() and not got[absent].isnan().any():
            return why + (
                " A class in no mask and no prediction has no IoU: 0 / 0 should stay NaN, not "
                f"{got[absent][0].item():g} (0 would punish the model, 1 would reward it, for a "
                "class it never saw)."
            )
        return why


class MeanIoU(Question):
    title = "mIoU: the mean of the per-class IoUs that are not NaN"
    hints = (
        "`ious.isnan()` marks the classes that were not measured.",
        "Average the others: `ious[~ious.isnan()].mean()`, or `torch.nanmean(ious)`; "
        "return a Python float with `.item()`.",
    )
    solution_code = """\
def mean_iou(ious):
    return torch.nanmean(ious).item()   # NaN entries are left out of the mean"""
    mistakes = (
        Mistake(lambda ious: ious.mean().item(), "A plain mean of a tensor holding NaN is NaN: "
                "leave the NaN entries (classes not measured) out of the mean."),
        Mistake(lambda ious: ious.nan_to_num(0).mean().item(), "You counted the unmeasured "
                "classes as IoU 0: a class that is in no mask and no prediction says nothing "
                "about the model; leave it out."),
        Mistake(lambda ious: ious[ious > 0].mean().item(), "You dropped the classes with IoU 0: "
                "those were measured (the model missed them) and must count. Only NaN means "
                "'not measured'."),
    )  # fmt: skip

    def reference(self, ious):
        return mean_ignoring_nan(ious)

    def cases(self):
        g = self.generator()
        yield Case(torch.rand(4, generator=g, dtype=torch.float64), label="4 IoUs, none NaN")
        ious = torch.rand(5, generator=g, dtype=torch.float64)
        ious[[1, 3]] = math.nan
        yield Case(ious, label=f"5 IoUs, 2 of them NaN: {[round(v, 3) for v in ious.tolist()]}")
        yield Case(torch.tensor([0.5, math.nan, 0.0], dtype=torch.float64),
                   label="[0.5, nan, 0.0]: a class with IoU 0 is measured, and counts")  # fmt: skip

    def compare(self, expected, got, name):
        if isinstance(got, torch.Tensor) and got.shape == (1,):
            got = got[0]
        return compare_values(expected, got, name, self.atol, self.rtol)


class DiceFromIoU(Question):
    title = "Dice from IoU, class by class"
    hints = (
        "With I = TP and U = TP + FP + FN: IoU = I / U and Dice = 2 I / (I + U) (the predicted "
        "plus the true pixels count the intersection twice).",
        "Divide the top and the bottom of the Dice formula by U: Dice = 2 IoU / (1 + IoU). "
        "NaN stays NaN by itself.",
    )
    solution_code = """\
def dice_from_iou(iou):
    return 2 * iou / (1 + iou)   # (C,), NaN stays NaN"""
    mistakes = (
        Mistake(lambda iou: 2 * iou, "Dice is not twice the IoU (that can exceed 1); "
                "2 IoU / (1 + IoU)."),
        Mistake(lambda iou: 2 * iou / (2 + iou), "2 IoU / (2 + IoU)? Redo the algebra: "
                "Dice = 2 I / (I + U); divide by U."),
        Mistake(lambda iou: iou / (2 - iou), "That is IoU / (2 - IoU), the way back from Dice "
                "to IoU, fed an IoU."),
    )  # fmt: skip

    def reference(self, iou):
        return 2 * iou / (1 + iou)

    def cases(self):
        yield Case(torch.rand(4, generator=self.generator(), dtype=torch.float64), label="4 IoUs")
        yield Case(torch.tensor([0.0, 1.0, 0.5, math.nan], dtype=torch.float64),
                   label="[0.0, 1.0, 0.5, nan]")  # fmt: skip


# ---- q5: read a confusion matrix, decide what the error is; the questionnaire ----------------

# The matrix of q5 (rows = truth, columns = prediction), as the notebook prints it.
Q5_MATRIX = [[9000, 40, 600, 10], [20, 900, 5, 75], [10, 5, 485, 0], [5, 150, 0, 145]]
Q5_CLASSES = ["background", "disc", "bar", "ring"]


class ReadTheMatrix(ChoiceQuestion):
    title = "Precision or recall: what a confusion matrix says is wrong"
    hints = (
        "Recall of class c: the diagonal over row c (how much of the class is found). "
        "Precision: the diagonal over column c (how much of what is called c really is c).",
        "For 'c' and 'd', look off the diagonal: the largest cell of a column outside the "
        "diagonal is where that class's invented pixels come from; of a row, where its missed "
        "pixels went.",
    )
    answers = {"a": "bar", "b": "ring", "c": "background", "d": "disc", "e": "precision"}
    reasons = {
        "a": "bar: 485 / (600 + 5 + 485 + 0) = 44% of the pixels called bar are bar.",
        "b": "ring: 145 / 300 = 48% of the ring pixels are found; bar's recall is 97%.",
        "c": "Column bar: 600 of its 605 wrong pixels are background.",
        "d": "Row ring: 150 ring pixels are predicted as disc.",
        "e": "Bar's IoU suffers from invented pixels (FP): a precision problem, which the "
        "row-normalised heatmap hides and `normalize='pred'` shows.",
    }
    solution_code = f"""\
def read_the_matrix():
    return {answers!r}"""


class EvaluationQuiz(Questionnaire):
    hints = (
        "Every answer is in a cell of this notebook: the tiny confusion matrix, the IoU, Dice "
        "and mIoU formulas, the heatmaps, the batch-size table.",
    )
    answers = {1: (4, 4), 2: "truth", 3: 16, 4: 0.667, 5: 0.8, 6: "nan", 7: 0.6, 8: "pred",
               9: 0.667, 10: "dataset"}  # fmt: skip
    tolerances = {4: 0.001, 5: 1e-9, 7: 1e-9, 9: 0.001}
    reasons = {
        1: "One row per true class, one column per predicted class: (C, C).",
        2: "Rows are the truth, columns the prediction: cm[t, p].",
        3: "`minlength=C*C` = 16 keeps the empty bins of the last classes.",
        4: "4 / (4 + 1 + 1) = 0.667.",
        5: "2 * 4 / (2 * 4 + 1 + 1) = 0.8.",
        6: "0 / 0: not measured. Write the string 'nan'.",
        7: "The NaN class is left out: (0.5 + 0.7) / 2.",
        8: "`normalize='pred'` divides each column: precision on the diagonal.",
        9: "Dice = 2 IoU / (1 + IoU) = 1 / 1.5.",
        10: "One confusion matrix over the dataset: the counts are added first.",
    }


q1, q2, q3, q4 = ConfusionFromScratch(), IoUPerClass(), MeanIoU(), DiceFromIoU()
q5, quiz = ReadTheMatrix(), EvaluationQuiz()

# ex.progress(): a table of this notebook's questions and their state; .to_json(path) saves it
progress = make_progress(__name__)
