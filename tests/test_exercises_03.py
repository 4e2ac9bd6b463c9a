"""Tests for segtutor.exercises.ex03: the solutions pass, typical mistakes fail with a useful note."""

import numpy as np
import torch
import torch.nn.functional as F

from segtutor.exercises import ex03 as ex
from segtutor.losses import DiceLoss

# ---- q1: pixel_cross_entropy ----------------------------------------------------------------


def pixel_cross_entropy(logits, masks, ignore_index=255):
    valid = masks != ignore_index
    log_probs = F.log_softmax(logits, dim=1)
    safe = masks.where(valid, 0).unsqueeze(1)
    losses = -log_probs.gather(1, safe).squeeze(1)
    return losses[valid].mean()


def _per_pixel(logits, masks, ignore_index=255):
    valid = masks != ignore_index
    safe = masks.where(valid, 0).unsqueeze(1)
    return -F.log_softmax(logits, dim=1).gather(1, safe).squeeze(1), valid


def test_q1_solution_passes():
    assert ex.q1.check(pixel_cross_entropy, show=False)


def test_q1_float_result_is_accepted():
    assert ex.q1.check(
        lambda lo, m, ignore_index=255: pixel_cross_entropy(lo, m).item(), show=False
    )


def test_q1_forgot_ignore_crashes_with_explanation():
    def no_ignore(logits, masks, ignore_index=255):
        return -F.log_softmax(logits, 1).gather(1, masks.unsqueeze(1)).mean()

    result = ex.q1.check(no_ignore, show=False)
    assert not result and "mask is 255" in result.message and "gather" in result.message


def test_q1_mean_over_all_pixels():
    def all_pixels(logits, masks, ignore_index=255):
        losses, valid = _per_pixel(logits, masks)
        return (losses * valid).mean()

    result = ex.q1.check(all_pixels, show=False)
    assert not result and "number of valid pixels" in result.message


def test_q1_sum_instead_of_mean():
    def summed(logits, masks, ignore_index=255):
        losses, valid = _per_pixel(logits, masks)
        return losses[valid].sum()

    result = ex.q1.check(summed, show=False)
    assert not result and "sum" in result.message and "mean" in result.message


def test_q1_probabilities_instead_of_log():
    def no_log(logits, masks, ignore_index=255):
        valid = masks != ignore_index
        probs = logits.softmax(1).gather(1, masks.where(valid, 0).unsqueeze(1)).squeeze(1)
        return -probs[valid].mean()

    result = ex.q1.check(no_log, show=False)
    assert not result and "log_softmax" in result.message


def test_q1_sign_flipped():
    result = ex.q1.check(lambda lo, m, ignore_index=255: -pixel_cross_entropy(lo, m), show=False)
    assert not result and "sign" in result.message


def test_q1_not_attempted():
    def pixel_cross_entropy(logits, masks, ignore_index=255):
        raise NotImplementedError("your code here")

    assert ex.q1.check(pixel_cross_entropy, show=False).status == "not_attempted"


# ---- q2: median_frequency_weights -----------------------------------------------------------


def median_frequency_weights(pixel_counts):
    freq = pixel_counts.double() / pixel_counts.sum()
    return (freq.quantile(0.5) / freq).float()


def test_q2_solution_passes():
    assert ex.q2.check(median_frequency_weights, show=False)


def test_q2_numpy_median_passes():
    def with_numpy(pixel_counts):
        freq = pixel_counts.numpy() / pixel_counts.sum().item()
        return torch.from_numpy(np.median(freq) / freq).float()

    assert ex.q2.check(with_numpy, show=False)


def test_q2_torch_median_takes_the_lower_middle():
    def lower(pixel_counts):
        freq = pixel_counts.float() / pixel_counts.sum()
        return freq.median() / freq

    result = ex.q2.check(lower, show=False)
    assert not result and "quantile(0.5)" in result.message and "lower" in result.message


def test_q2_inverted():
    def inverted(pixel_counts):
        freq = pixel_counts.double() / pixel_counts.sum()
        return (freq / freq.quantile(0.5)).float()

    result = ex.q2.check(inverted, show=False)
    assert not result and "upside down" in result.message


def test_q2_inverse_frequency():
    result = ex.q2.check(lambda c: (c.sum() / (len(c) * c.double())).float(), show=False)
    assert not result and "inverse-frequency" in result.message


def test_q2_float64():
    def float64(pixel_counts):
        freq = pixel_counts.double() / pixel_counts.sum()
        return freq.quantile(0.5) / freq

    result = ex.q2.check(float64, show=False)
    assert not result and "float64" in result.message and ".float()" in result.message


def test_q2_not_attempted():
    def median_frequency_weights(pixel_counts):
        raise NotImplementedError("your code here")

    assert ex.q2.check(median_frequency_weights, show=False).status == "not_attempted"


# ---- q3: soft_dice_loss ---------------------------------------------------------------------


def soft_dice_loss(logits, masks, ignore_index=255, smooth=1.0):
    num_classes = logits.shape[1]
    valid = masks != ignore_index
    probs = logits.softmax(dim=1) * valid.unsqueeze(1)
    onehot = F.one_hot(masks.where(valid, 0), num_classes)
    onehot = onehot.permute(0, 3, 1, 2).float() * valid.unsqueeze(1)
    inter = (probs * onehot).sum((0, 2, 3))
    card = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    dice = (2 * inter + smooth) / (card + smooth)
    present = onehot.sum((0, 2, 3)) > 0
    return (1 - dice)[present].mean()


def _dice(logits, masks, smooth=1.0, present_only=True, ignore_probs=True, dims=(0, 2, 3)):
    valid = masks != 255
    probs = logits.softmax(1)
    if ignore_probs:
        probs = probs * valid.unsqueeze(1)
    onehot = F.one_hot(masks.where(valid, 0), logits.shape[1]).permute(0, 3, 1, 2).float()
    onehot = onehot * valid.unsqueeze(1)
    inter, card = (probs * onehot).sum(dims), probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + smooth) / (card + smooth)
    present = onehot.sum(dims) > 0
    return (1 - dice)[present].mean() if present_only else (1 - dice).mean()


def test_q3_solution_passes():
    assert ex.q3.check(soft_dice_loss, show=False)


def test_q3_segtutor_dice_loss_passes():
    def with_library(logits, masks, ignore_index=255, smooth=1.0):
        return DiceLoss(ignore_index=ignore_index, smooth=smooth)(logits, masks)

    assert ex.q3.check(with_library, show=False)


def test_q3_mean_over_all_classes():
    def all_classes(logits, masks, ignore_index=255, smooth=1.0):
        return _dice(logits, masks, smooth, present_only=False)

    result = ex.q3.check(all_classes, show=False)
    assert not result and "PRESENT" in result.message


def test_q3_ignored_pixels_left_in_probabilities():
    def leaky(logits, masks, ignore_index=255, smooth=1.0):
        return _dice(logits, masks, smooth, ignore_probs=False)

    result = ex.q3.check(leaky, show=False)
    assert not result and "Ignored pixels" in result.message


def test_q3_one_hot_of_255_crashes_with_explanation():
    def no_ignore(logits, masks, ignore_index=255, smooth=1.0):
        onehot = F.one_hot(masks, logits.shape[1]).permute(0, 3, 1, 2).float()
        probs = logits.softmax(1)
        inter = (probs * onehot).sum((0, 2, 3))
        return (
            1 - (2 * inter + smooth) / (probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3)) + smooth)
        ).mean()

    result = ex.q3.check(no_ignore, show=False)
    assert not result and "one_hot" in result.message and "255" in result.message


def test_q3_per_image():
    def per_image(logits, masks, ignore_index=255, smooth=1.0):
        return _dice(logits, masks, smooth, dims=(2, 3))

    result = ex.q3.check(per_image, show=False)
    assert not result and "whole batch" in result.message


def test_q3_forgot_smooth_argument():
    def fixed_smooth(logits, masks, ignore_index=255, smooth=1.0):
        return soft_dice_loss(logits, masks, ignore_index, 1.0)

    result = ex.q3.check(fixed_smooth, show=False)
    assert not result and "smooth" in result.message


def test_q3_not_attempted():
    def soft_dice_loss(logits, masks, ignore_index=255, smooth=1.0):
        raise NotImplementedError("your code here")

    assert ex.q3.check(soft_dice_loss, show=False).status == "not_attempted"


# ---- q4 (a decision) and the questionnaire --------------------------------------------------


def test_q4_solution_and_dice_for_weighted_ce():
    answers = {"a": "weighted ce", "b": "ce", "c": "dice", "d": "dice", "e": "ce+dice"}
    assert ex.q4.check(lambda: answers, show=False)
    result = ex.q4.check(lambda: answers | {"a": "dice"}, show=False)
    assert not result and "1 of 5" in result.message and "62x" in result.message


def test_quiz_accepts_long_for_int64_and_checks_numbers():
    answers = dict(ex.quiz.answers) | {2: "torch.long", 1: 1.0986}
    assert ex.quiz.check(lambda: answers, show=False)
    result = ex.quiz.check(lambda: answers | {2: "float32", 3: 255}, show=False)
    assert not result and "2 of 10" in result.message and "-100" in result.message
