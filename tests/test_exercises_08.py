"""Tests for segtutor.exercises.ex08: the solutions pass, typical mistakes fail with a useful note."""

import torch
import torch.nn.functional as F

from segtutor.architectures import build_model
from segtutor.exercises import ex08 as ex

# ---- q1: one_upsampling ---------------------------------------------------------------------


def one_upsampling(masks, stride, num_classes):
    masks = masks.where(masks != 255, num_classes)
    votes = F.one_hot(masks, num_classes + 1)[..., :num_classes]
    votes = votes.permute(0, 3, 1, 2).float()
    coarse = F.avg_pool2d(votes, stride)
    fine = F.interpolate(coarse, size=masks.shape[-2:], mode="bilinear")
    return fine.argmax(dim=1)


def test_q1_solution_passes():
    assert ex.q1.check(one_upsampling, show=False)


def test_q1_reference_values():
    # A 4x4 mask, class 1 in its left half: at stride 2 each cell is pure, so the one
    # upsampling gives the mask back; at stride 4 the one cell is half 0, half 1 (a tie:
    # argmax takes class 0) except where 255 leaves class 1 the majority.
    masks = torch.tensor([[[1, 1, 0, 0]] * 4])
    assert ex.q1.reference(masks, 2, 2).tolist() == masks.tolist()
    masks[0, :, 2] = 255  # one column ignored: class 1 holds 8 of 12 votes
    assert ex.q1.reference(masks, 4, 2).tolist() == [[[1] * 4] * 4]


def test_q1_nearest_upsampling():
    def nearest(masks, stride, num_classes):
        masks = masks.where(masks != 255, num_classes)
        votes = F.one_hot(masks, num_classes + 1)[..., :num_classes].permute(0, 3, 1, 2).float()
        coarse = F.avg_pool2d(votes, stride)
        return F.interpolate(coarse, size=masks.shape[-2:], mode="nearest").argmax(dim=1)

    result = ex.q1.check(nearest, show=False)
    assert not result and "bilinear" in result.message


def test_q1_ignored_pixels_as_background():
    def background(masks, stride, num_classes):
        return one_upsampling(masks.where(masks != 255, 0), stride, num_classes)

    result = ex.q1.check(background, show=False)
    assert not result and "255" in result.message and "no class" in result.message


def test_q1_max_pooling():
    def max_pooled(masks, stride, num_classes):
        masks = masks.where(masks != 255, num_classes)
        votes = F.one_hot(masks, num_classes + 1)[..., :num_classes].permute(0, 3, 1, 2).float()
        coarse = F.max_pool2d(votes, stride)
        return F.interpolate(coarse, size=masks.shape[-2:], mode="bilinear").argmax(dim=1)

    result = ex.q1.check(max_pooled, show=False)
    assert not result and "avg_pool2d" in result.message


def test_q1_not_attempted():
    def one_upsampling(masks, stride, num_classes): ...

    assert ex.q1.check(one_upsampling, show=False).status == "not_attempted"


# ---- q2: receptive_field --------------------------------------------------------------------


def receptive_field(layers):
    rf, jump = 1, 1
    for kernel, stride, dilation in layers:
        rf += (kernel - 1) * dilation * jump
        jump *= stride
    return rf, jump


def test_q2_solution_passes():
    assert ex.q2.check(receptive_field, show=False)
    assert ex.q2.check(lambda layers: list(receptive_field(layers)), show=False)


def test_q2_reference_values():
    assert ex.q2.reference([(3, 1, 1)] * 3) == (7, 1)
    assert ex.q2.reference([(3, 1, 1), (3, 1, 2), (3, 1, 4)]) == (15, 1)
    assert ex.q2.reference([(3, 2, 1)] * 3) == (15, 8)


def test_q2_dilation_left_out():
    def no_dilation(layers):
        return receptive_field([(k, s, 1) for k, s, _ in layers])

    result = ex.q2.check(no_dilation, show=False)
    assert not result and "dilation was left out" in result.message


def test_q2_strides_left_out():
    def no_jump(layers):
        rf, jump = 1, 1
        for kernel, stride, dilation in layers:
            rf += (kernel - 1) * dilation
            jump *= stride
        return rf, jump

    result = ex.q2.check(no_jump, show=False)
    assert not result and "product of the strides" in result.message


def test_q2_kernel_times_dilation():
    def k_times_d(layers):
        rf, jump = 1, 1
        for kernel, stride, dilation in layers:
            rf += (kernel * dilation - 1) * jump
            jump *= stride
        return rf, jump

    result = ex.q2.check(k_times_d, show=False)
    assert not result and "(k - 1) * d + 1" in result.message


# ---- q3: choose_models ----------------------------------------------------------------------


def test_q3_solution_and_the_other_encoder_pass():
    answers = {"a": "lraspp-mobilenetv3", "b": "unet", "c": "unet-resnet18"}
    assert ex.q3.check(lambda: answers, show=False)
    assert ex.q3.check(lambda: answers | {"c": " unet-mobilenetv3"}, show=False)


def test_q3_wrong_choice_is_explained():
    answers = {"a": "lraspp-mobilenetv3", "b": "unet-resnet18", "c": "unet"}
    result = ex.q3.check(lambda: answers, show=False)
    assert not result and "2 of 3" in result.message and "ImageNet" in result.message


# ---- q4: epochs_to_reach --------------------------------------------------------------------


def epochs_to_reach(val_miou, target):
    for index, miou in enumerate(val_miou):
        if miou >= target:
            return index + 1
    return None


def test_q4_solution_passes():
    assert ex.q4.check(epochs_to_reach, show=False)


def test_q4_reference_values():
    assert ex.q4.reference([0.1, 0.5, 0.4], 0.5) == 2
    assert ex.q4.reference([0.1, float("nan")], 0.5) is None


def test_q4_zero_based_index():
    def zero_based(val_miou, target):
        return next((i for i, m in enumerate(val_miou) if m >= target), None)

    result = ex.q4.check(zero_based, show=False)
    assert not result and "count from 1" in result.message


def test_q4_strictly_greater():
    def strict(val_miou, target):
        return next((i + 1 for i, m in enumerate(val_miou) if m > target), None)

    result = ex.q4.check(strict, show=False)
    assert not result and "`>=`" in result.message


def test_q4_never_reached_must_be_none():
    def minus_one(val_miou, target):
        return epochs_to_reach(val_miou, target) or -1

    result = ex.q4.check(minus_one, show=False)
    assert not result and "no epoch reaches" in result.message


# ---- the questionnaire ----------------------------------------------------------------------
SOLUTION = {1: 2052, 2: 8, 3: "ring", 4: 31, 5: 16, 6: "1x1", 7: "low",
            8: "lraspp-mobilenetv3", 9: "encoder", 10: "random"}  # fmt: skip


def test_quiz_solution_and_other_spellings_pass():
    assert ex.quiz.check(lambda: SOLUTION, show=False)
    spelled = {1: 2052.0, 3: " Ring", 6: "1x1 convolution", 8: "LR-ASPP"}
    assert ex.quiz.check(lambda: SOLUTION | spelled, show=False)


def test_quiz_wrong_items_are_named_with_their_reason():
    result = ex.quiz.check(lambda: SOLUTION | {4: 15, 7: "high", 9: "head"}, show=False)
    assert not result and "3 of 10" in result.message
    assert "1 + 2 x (1 + 2 + 4 + 8) = 31" in result.message and "'high'" in result.message
    result = ex.quiz.check(lambda: {k: v for k, v in SOLUTION.items() if k != 10}, show=False)
    assert not result and "No answer" in result.message


def test_quiz_numbers_match_the_models():
    answers = ex.quiz.answers
    channels = build_model("unet-resnet18", num_classes=4).encoder.channels[-1]
    assert answers[1] == channels * 4 + 4  # FCN-32s's 1x1 head: weights + biases
    assert ex.q2.reference([(3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8)]) == (answers[4], 1)
    crop = torch.zeros(1, 3, 96, 96)
    with torch.no_grad():
        high = build_model("deeplabv3-mobilenetv3", num_classes=4).eval().net.backbone(crop)
        maps = build_model("lraspp-mobilenetv3", num_classes=4).eval().net.backbone(crop)
    assert 96 // high["out"].shape[-1] == answers[5]
    assert 96 // maps[answers[7]].shape[-1] == 8
