"""Tests for segtutor.exercises.ex07: the solutions pass, typical mistakes fail with a useful note."""

import math

import numpy as np
import torch

from segtutor.exercises import ex07 as ex
from segtutor.formats import VOC_PALETTE

# ---- q1: colors_to_classes ------------------------------------------------------------------


def colors_to_classes(rgb, palette):
    out = np.full(rgb.shape[:2], 255, dtype=np.int64)
    for index, color in enumerate(palette):
        out[(rgb == np.array(color)).all(axis=-1)] = index
    return torch.from_numpy(out)


def test_q1_solution_passes():
    assert ex.q1.check(colors_to_classes, show=False)


def test_q1_numpy_result_passes():
    assert ex.q1.check(lambda rgb, palette: colors_to_classes(rgb, palette).numpy(), show=False)


def test_q1_reference_decodes_the_voc_border_as_ignore():
    classes = np.array([[0, 12], [255, 8]])
    rgb = np.array([[VOC_PALETTE[0], VOC_PALETTE[12]], [(224, 224, 192), VOC_PALETTE[8]]])
    out = ex.q1.reference(rgb.astype(np.uint8), list(VOC_PALETTE))
    assert out.tolist() == classes.tolist() and out.dtype == torch.int64


def test_q1_unknown_colours_as_background():
    def from_zeros(rgb, palette):
        out = np.zeros(rgb.shape[:2], dtype=np.int64)
        for index, color in enumerate(palette):
            out[(rgb == np.array(color)).all(axis=-1)] = index
        return torch.from_numpy(out)

    result = ex.q1.check(from_zeros, show=False)
    assert not result and "silent mislabelling" in result.message and "255" in result.message


def test_q1_red_channel_only():
    def red_only(rgb, palette):
        out = np.full(rgb.shape[:2], 255, dtype=np.int64)
        for index, color in enumerate(palette):
            out[rgb[..., 0] == color[0]] = index
        return torch.from_numpy(out)

    result = ex.q1.check(red_only, show=False)
    assert not result and "all three channels" in result.message


def test_q1_uint8_result():
    result = ex.q1.check(lambda rgb, p: colors_to_classes(rgb, p).to(torch.uint8), show=False)
    assert not result and "int64" in result.message


def test_q1_not_attempted():
    def colors_to_classes(rgb, palette): ...

    assert ex.q1.check(colors_to_classes, show=False).status == "not_attempted"


# ---- q2: per_image_dice ---------------------------------------------------------------------


def per_image_dice(preds, masks):
    valid = masks != 255
    pred, true = (preds == 1) & valid, (masks == 1) & valid
    tp = (pred & true).sum(dim=(1, 2)).double()
    fp = (pred & ~true).sum(dim=(1, 2)).double()
    fn = (~pred & true).sum(dim=(1, 2)).double()
    return 2 * tp / (2 * tp + fp + fn)


def test_q2_solution_passes():
    assert ex.q2.check(per_image_dice, show=False)


def test_q2_reference_values():
    masks = torch.tensor([[[1, 1], [0, 0]], [[0, 0], [0, 0]], [[0, 0], [0, 255]]])
    preds = torch.tensor([[[1, 0], [1, 0]], [[0, 0], [0, 0]], [[1, 0], [0, 1]]])
    dice = ex.q2.reference(preds, masks)
    assert dice[0].item() == 0.5  # TP 1, FP 1, FN 1: 2 / 4
    assert math.isnan(dice[1].item())  # nothing anywhere
    assert dice[2].item() == 0.0  # one false positive; the pixel under 255 does not count


def test_q2_float32_passes():
    assert ex.q2.check(lambda p, m: per_image_dice(p, m).float(), show=False)


def test_q2_pooled_dice():
    def pooled(preds, masks):
        valid = masks != 255
        pred, true = (preds == 1) & valid, (masks == 1) & valid
        tp, fp, fn = (pred & true).sum(), (pred & ~true).sum(), (~pred & true).sum()
        return (2 * tp / (2 * tp + fp + fn)).double().repeat(len(masks))

    result = ex.q2.check(pooled, show=False)
    assert not result and "pooled Dice" in result.message


def test_q2_forgot_ignore():
    def no_ignore(preds, masks):
        return per_image_dice(preds, torch.where(masks == 255, 0, masks))

    result = ex.q2.check(no_ignore, show=False)
    assert not result and "255" in result.message


def test_q2_empty_image_as_one():
    result = ex.q2.check(lambda p, m: per_image_dice(p, m).nan_to_num(1.0), show=False)
    assert not result and "Dice 1" in result.message and "NaN" in result.message


def test_q2_iou_instead():
    def iou(preds, masks):
        valid = masks != 255
        pred, true = (preds == 1) & valid, (masks == 1) & valid
        inter = (pred & true).sum(dim=(1, 2)).double()
        return inter / (pred | true).sum(dim=(1, 2)).double()

    result = ex.q2.check(iou, show=False)
    assert not result and "IoU" in result.message


# ---- q3: choose_scores ----------------------------------------------------------------------


def test_q3_solution_passes():
    def choose_scores():
        return {"a": "per-image", "b": "dataset", "c": "dataset", "d": " Per-Image"}

    assert ex.q3.check(choose_scores, show=False)


def test_q3_one_wrong_choice_is_explained():
    def choose_scores():
        return {"a": "per-image", "b": "per-image", "c": "dataset", "d": "per-image"}

    result = ex.q3.check(choose_scores, show=False)
    assert not result and "1 of 4" in result.message and "'b'" in result.message
    assert "pool the confusion matrix" in result.message


def test_q3_missing_answer_and_wrong_type():
    result = ex.q3.check(lambda: {"a": "per-image"}, show=False)
    assert not result and "No answer for 'b'" in result.message
    result = ex.q3.check(lambda: ["per-image"], show=False)
    assert not result and "Return a dict" in result.message


def test_q3_not_attempted():
    def choose_scores(): ...

    assert ex.q3.check(choose_scores, show=False).status == "not_attempted"


# ---- q4: dice_by_kind -----------------------------------------------------------------------


def dice_by_kind(preds, masks, kinds):
    scores = {}
    for kind in sorted(set(kinds)):
        keep = torch.tensor([k == kind for k in kinds])
        valid = masks[keep] != 255
        pred, true = (preds[keep] == 1) & valid, (masks[keep] == 1) & valid
        tp, fp, fn = (pred & true).sum(), (pred & ~true).sum(), (~pred & true).sum()
        scores[kind] = (2 * tp / (2 * tp + fp + fn)).item()
    return scores


def test_q4_solution_passes():
    assert ex.q4.check(dice_by_kind, show=False)


def test_q4_reference_pools_over_the_kind():
    masks = torch.tensor([[[1, 1], [1, 1]], [[1, 0], [0, 0]]])
    preds = torch.tensor([[[1, 1], [1, 1]], [[0, 0], [0, 0]]])
    # pooled: TP 4, FN 1 -> 8 / 9; the mean of per-image Dice would be (1 + 0) / 2
    assert ex.q4.reference(preds, masks, ["x", "x"]) == {"x": 8 / 9}


def test_q4_per_image_mean_is_explained():
    def mean_per_image(preds, masks, kinds):
        dice = per_image_dice(preds, masks)
        return {
            kind: torch.nanmean(dice[torch.tensor([k == kind for k in kinds])]).item()
            for kind in set(kinds)
        }

    result = ex.q4.check(mean_per_image, show=False)
    assert not result and "per-image Dice" in result.message and "pools" in result.message


def test_q4_tensor_values_pass():
    def tensors(preds, masks, kinds):
        return {k: torch.tensor(v) for k, v in dice_by_kind(preds, masks, kinds).items()}

    assert ex.q4.check(tensors, show=False)


# ---- the questionnaire ----------------------------------------------------------------------


def test_quiz_solution_and_nan_as_float_pass():
    answers = {1: 3, 2: 255, 3: 0, 4: 13, 5: 255, 6: 11, 7: "nan", 8: "dataset"}
    assert ex.quiz.check(lambda: answers, show=False)
    assert ex.quiz.check(lambda: answers | {7: float("nan")}, show=False)


def test_quiz_wrong_numbers_are_explained():
    answers = {1: 3, 2: 0, 3: 0, 4: 26, 5: 255, 6: 11, 7: "nan", 8: "dataset"}
    result = ex.quiz.check(lambda: answers, show=False)
    assert not result and "2 of 8" in result.message and "train id 13" in result.message
    result = ex.quiz.check(lambda: answers | {2: 255, 4: 13, 1: True}, show=False)
    assert not result and "1 of 8" in result.message  # True is not the number 3


# ---- segtutor.exercises.quiz itself (what 01-06 and the capstone use too) -------------------


class _Quiz(ex.Questionnaire):
    answers = {1: 255, 2: "nearest", 3: 0.69, 4: ("dice", "ce+dice"), 5: (2, 128, 12, 20)}
    tolerances = {3: 0.01}
    reasons = {3: "-log(0.5) = 0.69."}


def test_quiz_tolerance_only_where_the_item_says_so():
    quiz = _Quiz()
    shape = torch.Size([2, 128, 12, 20])
    assert quiz.check(lambda: {1: 255.0, 2: " Nearest", 3: 0.695, 4: "Dice", 5: shape}, show=False)
    assert quiz.check(lambda: {1: 255, 2: "nearest", 3: torch.tensor(0.68), 4: "ce+dice",
                               5: [2, 128, 12, 20]}, show=False)  # fmt: skip
    answers = {1: 255.001, 2: "nearest", 3: 0.67, 4: "ce", 5: (2, 12, 20, 128)}
    result = quiz.check(lambda: answers, show=False)
    assert not result and "4 of 5" in result.message and "-log(0.5)" in result.message
    result = quiz.check(lambda: answers | {1: 255, 3: 0.69, 4: "dice", 5: (2, 128, 12)},
                        show=False)  # fmt: skip
    assert not result and "1 of 5" in result.message


def test_quiz_writes_its_solution_from_the_answers():
    assert "return {1: 255, 2: 'nearest'" in _Quiz().solution_code
    assert ex.quiz.solution_code.startswith("def questionnaire():")
