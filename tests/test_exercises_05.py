"""Tests for segtutor.exercises.ex05: the solutions pass, typical mistakes fail with a useful note."""

import numpy as np
import torch
from choice_checks import assert_solutions_pass_and_wrong_items_are_named

from segtutor.exercises import ex05 as ex
from segtutor.metrics import confusion_matrix, iou_from_confusion

# ---- q1: confusion_matrix_from_scratch ------------------------------------------------------


def confusion_matrix_from_scratch(preds, masks, num_classes, ignore_index=255):
    valid = masks != ignore_index
    truth, pred = masks[valid], preds[valid]
    bins = torch.bincount(num_classes * truth + pred, minlength=num_classes**2)
    return bins.reshape(num_classes, num_classes)


def test_q1_solution_passes():
    assert ex.q1.check(confusion_matrix_from_scratch, show=False)


def test_q1_library_passes():
    assert ex.q1.check(confusion_matrix, show=False)


def test_q1_loop_version_passes():
    def with_loops(preds, masks, num_classes, ignore_index=255):
        cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        for t, p in zip(masks.flatten().tolist(), preds.flatten().tolist(), strict=True):
            if t != ignore_index:
                cm[t, p] += 1
        return cm

    assert ex.q1.check(with_loops, show=False)


def test_q1_transposed():
    def transposed(preds, masks, num_classes, ignore_index=255):
        return confusion_matrix_from_scratch(preds, masks, num_classes, ignore_index).T

    result = ex.q1.check(transposed, show=False)
    assert not result and "transpose" in result.message and "TRUE class" in result.message


def test_q1_forgot_ignore_explains():
    def no_ignore(preds, masks, num_classes, ignore_index=255):
        bins = torch.bincount(
            num_classes * masks.flatten() + preds.flatten(), minlength=num_classes**2
        )
        return bins.reshape(num_classes, num_classes)

    result = ex.q1.check(no_ignore, show=False)
    assert not result and "masks != ignore_index" in result.message


def test_q1_forgot_minlength():
    def no_minlength(preds, masks, num_classes, ignore_index=255):
        valid = masks != ignore_index
        bins = torch.bincount(num_classes * masks[valid] + preds[valid])
        return bins.reshape(num_classes, -1)

    result = ex.q1.check(no_minlength, show=False)
    assert not result and "minlength" in result.message


def test_q1_float_counts():
    def floats(preds, masks, num_classes, ignore_index=255):
        return confusion_matrix_from_scratch(preds, masks, num_classes, ignore_index).float()

    result = ex.q1.check(floats, show=False)
    assert not result and "dtype" in result.message and "int64" in result.message


def test_q1_hard_coded_255():
    def hard_coded(preds, masks, num_classes, ignore_index=255):
        valid = masks != 255
        bins = torch.bincount(num_classes * masks[valid] + preds[valid], minlength=num_classes**2)
        return bins.reshape(num_classes, num_classes)

    result = ex.q1.check(hard_coded, show=False)
    assert not result and "ignore_index=9" in result.message


def test_q1_not_attempted():
    def confusion_matrix_from_scratch(preds, masks, num_classes, ignore_index=255):
        raise NotImplementedError("your code here")

    assert ex.q1.check(confusion_matrix_from_scratch, show=False).status == "not_attempted"


# ---- q2: iou_per_class ----------------------------------------------------------------------


def iou_per_class(cm):
    cm = cm.double()
    tp = cm.diagonal()
    return tp / (cm.sum(dim=0) + cm.sum(dim=1) - tp)


def test_q2_solution_passes():
    assert ex.q2.check(iou_per_class, show=False)


def test_q2_library_and_float32_pass():
    assert ex.q2.check(iou_from_confusion, show=False)
    assert ex.q2.check(lambda cm: iou_per_class(cm).float(), show=False)


def test_q2_precision():
    result = ex.q2.check(lambda cm: cm.diagonal() / cm.sum(dim=0).double(), show=False)
    assert not result and "precision" in result.message


def test_q2_recall():
    result = ex.q2.check(lambda cm: cm.diagonal() / cm.sum(dim=1).double(), show=False)
    assert not result and "recall" in result.message


def test_q2_diagonal_counted_twice():
    def twice(cm):
        cm = cm.double()
        return cm.diagonal() / (cm.sum(dim=0) + cm.sum(dim=1))

    result = ex.q2.check(twice, show=False)
    assert not result and "twice" in result.message


def test_q2_absent_class_as_zero():
    result = ex.q2.check(lambda cm: iou_per_class(cm).nan_to_num(0.0), show=False)
    assert not result and "NaN" in result.message and "0 / 0" in result.message


def test_q2_integer_division():
    def integer(cm):
        tp = cm.diagonal()
        return tp // (cm.sum(dim=0) + cm.sum(dim=1) - tp).clamp(min=1)

    result = ex.q2.check(integer, show=False)
    assert not result and "cm.double()" in result.message


def test_q2_not_attempted():
    def iou_per_class(cm): ...

    assert ex.q2.check(iou_per_class, show=False).status == "not_attempted"


# ---- q3: mean_iou ---------------------------------------------------------------------------


def mean_iou(ious):
    return torch.nanmean(ious).item()


def test_q3_solution_passes():
    assert ex.q3.check(mean_iou, show=False)


def test_q3_mask_and_numpy_pass():
    assert ex.q3.check(lambda ious: ious[~ious.isnan()].mean(), show=False)
    assert ex.q3.check(lambda ious: float(np.nanmean(ious.numpy())), show=False)


def test_q3_plain_mean_is_nan():
    result = ex.q3.check(lambda ious: ious.mean().item(), show=False)
    assert not result and "NaN" in result.message and "leave" in result.message


def test_q3_nan_as_zero():
    result = ex.q3.check(lambda ious: ious.nan_to_num(0).mean().item(), show=False)
    assert not result and "as IoU 0" in result.message


def test_q3_dropped_zero_iou():
    result = ex.q3.check(lambda ious: ious[ious > 0].mean().item(), show=False)
    assert not result and "IoU 0" in result.message and "must count" in result.message


def test_q3_not_attempted():
    def mean_iou(ious):
        raise NotImplementedError

    assert ex.q3.check(mean_iou, show=False).status == "not_attempted"


# ---- q4: dice_from_iou ----------------------------------------------------------------------


def test_q4_solution_passes():
    assert ex.q4.check(lambda iou: 2 * iou / (1 + iou), show=False)


def test_q4_twice_the_iou():
    result = ex.q4.check(lambda iou: 2 * iou, show=False)
    assert not result and "not twice the IoU" in result.message


def test_q4_inverse_formula():
    result = ex.q4.check(lambda iou: iou / (2 - iou), show=False)
    assert not result and "way back" in result.message


def test_q4_numpy_result():
    result = ex.q4.check(lambda iou: (2 * iou / (1 + iou)).numpy(), show=False)
    assert not result and "torch.from_numpy" in result.message


def test_q4_not_attempted():
    def dice_from_iou(iou):
        pass

    assert ex.q4.check(dice_from_iou, show=False).status == "not_attempted"


# ---- q5 (a decision) and the questionnaire --------------------------------------------------


def test_q5_and_quiz_solutions_pass_and_a_wrong_item_is_named():
    assert_solutions_pass_and_wrong_items_are_named(ex.q5, ex.quiz)


def test_q5_answers_follow_from_the_matrix():
    cm = torch.tensor(ex.Q5_MATRIX, dtype=torch.float64)
    names = ex.Q5_CLASSES
    precision, recall = cm.diagonal() / cm.sum(0), cm.diagonal() / cm.sum(1)
    off = cm.clone().fill_diagonal_(-1)
    bar, ring = names.index("bar"), names.index("ring")
    assert names[int(precision.argmin())] == ex.q5.answers["a"]
    assert names[int(recall.argmin())] == ex.q5.answers["b"]
    assert names[int(off[:, bar].argmax())] == ex.q5.answers["c"]
    assert names[int(off[ring].argmax())] == ex.q5.answers["d"]
