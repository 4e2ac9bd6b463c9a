"""Tests for segtutor.exercises.ex06: the solutions pass, typical mistakes fail with a useful note."""

import numpy as np
import torch
from choice_checks import assert_solutions_pass_and_wrong_items_are_named

from segtutor.exercises import ex06 as ex
from segtutor.viz import overlay

# ---- q1: colorize_mask ----------------------------------------------------------------------


def colorize_mask(mask, palette, ignore_color=(255, 255, 255)):
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = palette
    lut[255] = ignore_color
    return lut[np.asarray(mask)]


def test_q1_solution_passes():
    assert ex.q1.check(colorize_mask, show=False)


def test_q1_tensor_result_passes():
    def as_tensor(mask, palette, ignore_color=(255, 255, 255)):
        return torch.from_numpy(colorize_mask(mask, palette, ignore_color))

    assert ex.q1.check(as_tensor, show=False)


def test_q1_palette_indexing_crashes_on_255():
    def no_ignore(mask, palette, ignore_color=(255, 255, 255)):
        return np.asarray(palette, dtype=np.uint8)[np.asarray(mask)]

    result = ex.q1.check(no_ignore, show=False)
    assert not result and "255" in result.message and "ignore_color" in result.message


def test_q1_ignore_drawn_black():
    def black(mask, palette, ignore_color=(255, 255, 255)):
        return colorize_mask(mask, palette, (0, 0, 0))

    result = ex.q1.check(black, show=False)
    assert not result and "ignore_color" in result.message


def test_q1_hard_coded_white():
    def white(mask, palette, ignore_color=(255, 255, 255)):
        return colorize_mask(mask, palette)

    result = ex.q1.check(white, show=False)
    assert not result and "use the argument" in result.message


def test_q1_channels_first():
    def channels_first(mask, palette, ignore_color=(255, 255, 255)):
        return colorize_mask(mask, palette, ignore_color).transpose(2, 0, 1)

    result = ex.q1.check(channels_first, show=False)
    assert not result and "(H, W, 3)" in result.message


def test_q1_float_colours():
    def floats(mask, palette, ignore_color=(255, 255, 255)):
        return colorize_mask(mask, palette, ignore_color) / 255

    result = ex.q1.check(floats, show=False)
    assert not result and "uint8" in result.message and "0..1" in result.message


def test_q1_not_attempted():
    def colorize_mask(mask, palette, ignore_color=(255, 255, 255)):
        raise NotImplementedError

    assert ex.q1.check(colorize_mask, show=False).status == "not_attempted"


# ---- q2: error_counts -----------------------------------------------------------------------


def error_counts(pred, mask, ignore_index=255):
    return int(((pred == 1) & (mask == 0)).sum()), int(((pred == 0) & (mask == 1)).sum())


def test_q2_solution_passes():
    assert ex.q2.check(error_counts, show=False)


def test_q2_tensor_counts_pass():
    def tensors(pred, mask, ignore_index=255):
        valid = mask != ignore_index
        return ((pred == 1) & (mask == 0) & valid).sum(), ((pred == 0) & (mask == 1)).sum()

    assert ex.q2.check(tensors, show=False)


def test_q2_swapped():
    result = ex.q2.check(lambda p, m, ignore_index=255: error_counts(p, m)[::-1], show=False)
    assert not result and "swapped" in result.message


def test_q2_counted_ignored_pixels():
    def loose(pred, mask, ignore_index=255):
        return int(((pred == 1) & (mask != 1)).sum()), int(((pred == 0) & (mask != 0)).sum())

    result = ex.q2.check(loose, show=False)
    assert not result and "ignore_index" in result.message and "leave them out" in result.message


def test_q2_not_attempted():
    def error_counts(pred, mask, ignore_index=255): ...

    assert ex.q2.check(error_counts, show=False).status == "not_attempted"


# ---- q3: worst_k_indices --------------------------------------------------------------------


def worst_k_indices(per_image_iou, k):
    measured = (~per_image_iou.isnan()).nonzero().squeeze(1)
    order = per_image_iou[measured].argsort()
    return measured[order][:k].tolist()


def test_q3_solution_passes():
    assert ex.q3.check(worst_k_indices, show=False)


def test_q3_tensor_result_passes():
    def as_tensor(per_image_iou, k):
        return torch.tensor(worst_k_indices(per_image_iou, k))

    assert ex.q3.check(as_tensor, show=False)


def test_q3_nan_not_skipped():
    result = ex.q3.check(lambda ious, k: ious.argsort()[:k].tolist(), show=False)
    assert not result and "NaN" in result.message and "skip" in result.message


def test_q3_best_first():
    def best(per_image_iou, k):
        measured = (~per_image_iou.isnan()).nonzero().squeeze(1)
        order = per_image_iou[measured].argsort(descending=True)
        return measured[order][:k].tolist()

    result = ex.q3.check(best, show=False)
    assert not result and "lowest IoU first" in result.message


def test_q3_values_instead_of_indices():
    def values(per_image_iou, k):
        measured = per_image_iou[~per_image_iou.isnan()]
        return measured.sort().values[:k].tolist()

    result = ex.q3.check(values, show=False)
    assert not result and "IoU values" in result.message and "indices" in result.message


def test_q3_not_attempted():
    def worst_k_indices(per_image_iou, k):
        pass

    assert ex.q3.check(worst_k_indices, show=False).status == "not_attempted"


# ---- q4: overlay_mask -----------------------------------------------------------------------


def overlay_mask(image, mask, palette, alpha=0.5):
    mask = np.asarray(mask)
    colors = np.zeros((256, 3))
    colors[: len(palette)] = palette
    colors = colors[mask]
    tint = (mask != 0) & (mask != 255)
    out = image.astype(np.float64)
    out[tint] = (1 - alpha) * out[tint] + alpha * colors[tint]
    return out.round().astype(np.uint8)


def test_q4_solution_and_library_pass():
    assert ex.q4.check(overlay_mask, show=False)
    assert ex.q4.check(overlay, show=False)


def test_q4_truncation_is_accepted():
    def truncated(image, mask, palette, alpha=0.5):
        mask = np.asarray(mask)
        colors = np.zeros((256, 3))
        colors[: len(palette)] = palette
        tint = (mask != 0) & (mask != 255)
        out = image.astype(np.float64)
        out[tint] = (1 - alpha) * out[tint] + alpha * colors[mask][tint]
        return out.astype(np.uint8)

    assert ex.q4.check(truncated, show=False)


def test_q4_alpha_swapped():
    result = ex.q4.check(lambda i, m, p, alpha=0.5: overlay_mask(i, m, p, 1 - alpha), show=False)
    assert not result and "weight of the MASK" in result.message


def test_q4_background_tinted():
    def everywhere(image, mask, palette, alpha=0.5):
        return overlay(image, mask, palette, alpha, background=None)

    result = ex.q4.check(everywhere, show=False)
    assert not result and "object classes only" in result.message


def test_q4_float_result():
    def floats(image, mask, palette, alpha=0.5):
        return overlay_mask(image, mask, palette, alpha).astype(np.float32)

    result = ex.q4.check(floats, show=False)
    assert not result and "uint8" in result.message


def test_q4_not_attempted():
    def overlay_mask(image, mask, palette, alpha=0.5):
        raise NotImplementedError("your code here")

    assert ex.q4.check(overlay_mask, show=False).status == "not_attempted"


# ---- q5 (a decision) and the questionnaire --------------------------------------------------


def test_q5_and_quiz_solutions_pass_and_a_wrong_item_is_named():
    assert_solutions_pass_and_wrong_items_are_named(ex.q5, ex.quiz)


def test_quiz_numbers_match_the_library():
    from segtutor.inference import _starts
    from segtutor.transforms import denormalize
    from segtutor.viz import DEFAULT_PALETTE, ERROR_COLORS, error_map

    assert _starts(400, 96, 0.25)[:3] == [0, ex.quiz.answers[7], 2 * ex.quiz.answers[7]]
    shown = denormalize(torch.zeros(3, 1, 1))[:, 0, 0]
    assert abs(shown[0].item() - ex.quiz.answers[5]) < 1e-6
    assert abs(2 / 255 - ex.quiz.answers[4]) <= ex.quiz.tolerances[4]
    assert ERROR_COLORS["false negative"] == DEFAULT_PALETTE[2]  # sky blue
    assert error_map(torch.tensor([[1]]), torch.tensor([[3]]))[0, 0].tolist() == list(
        ERROR_COLORS[ex.quiz.answers[3]]
    )
