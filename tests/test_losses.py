"""Tests for segtutor.losses against hand-computed tiny cases and torch's cross-entropy."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segtutor.losses import (
    CEDiceLoss,
    DeepSupervisionLoss,
    DiceLoss,
    PriorAdjustedLoss,
    build_loss,
    class_weights,
    dense_float,
    shrink_masks,
)

LN3 = math.log(3)


def tiny_case():
    """One 2x2 image, 2 classes, chosen so that every softmax is a simple fraction.

    masks = [[0, 1],      probabilities (class 0, class 1) per pixel:
             [1, 255]]    (0,0): (1/2, 1/2)  (0,1): (1/4, 3/4)  (1,0): (3/4, 1/4)  (1,1): ignored
    """
    masks = torch.tensor([[[0, 1], [1, 255]]])  # (1, 2, 2)
    logits = torch.tensor([[[[0.0, 0.0], [LN3, 7.0]], [[0.0, LN3], [0.0, -5.0]]]])  # (1, 2, 2, 2)
    return logits, masks


def test_tiny_case_probabilities():
    logits, _ = tiny_case()
    probs = logits.softmax(dim=1)[0]
    torch.testing.assert_close(probs[1, 0, 0], torch.tensor(0.5))
    torch.testing.assert_close(probs[1, 0, 1], torch.tensor(0.75))
    torch.testing.assert_close(probs[1, 1, 0], torch.tensor(0.25))


def test_dice_hand_computed():
    logits, masks = tiny_case()
    # Valid pixels only: p0 = (1/2, 1/4, 3/4), g0 = (1, 0, 0); p1 = (1/2, 3/4, 1/4), g1 = (0, 1, 1).
    # class 0: intersection 1/2, sum p0 = 3/2, sum g0 = 1 -> dice (1 + 1) / (5/2 + 1) = 4/7
    # class 1: intersection 1,   sum p1 = 3/2, sum g1 = 2 -> dice (2 + 1) / (7/2 + 1) = 2/3
    # loss = mean(1 - 4/7, 1 - 2/3) = (3/7 + 1/3) / 2 = 8/21
    torch.testing.assert_close(DiceLoss()(logits, masks), torch.tensor(8 / 21))
    # smooth = 0: dice0 = 1 / (5/2) = 2/5, dice1 = 2 / (7/2) = 4/7 -> (3/5 + 3/7) / 2 = 18/35
    torch.testing.assert_close(DiceLoss(smooth=0.0)(logits, masks), torch.tensor(18 / 35))
    # weights (1, 3): (1 * 3/7 + 3 * 1/3) / (1 + 3) = 5/14
    torch.testing.assert_close(DiceLoss(weight=[1.0, 3.0])(logits, masks), torch.tensor(5 / 14))


def test_dice_averages_over_classes_present_in_the_masks():
    logits, masks = tiny_case()
    # A third class with probability ~0 everywhere and absent from the masks: same loss.
    logits3 = torch.cat([logits, torch.full((1, 1, 2, 2), -1e4)], dim=1)
    torch.testing.assert_close(DiceLoss()(logits3, masks), torch.tensor(8 / 21))


def test_cross_entropy_hand_computed():
    logits, masks = tiny_case()
    # -log p(true class): ln 2 at (0,0), ln(4/3) at (0,1), ln 4 at (1,0) -> mean ln(32/3) / 3
    expected = torch.tensor(math.log(32 / 3) / 3)
    torch.testing.assert_close(build_loss("ce")(logits, masks), expected)
    torch.testing.assert_close(F.cross_entropy(logits, masks, ignore_index=255), expected)


def test_ce_dice_is_the_weighted_sum():
    logits, masks = tiny_case()
    loss = CEDiceLoss(ce_weight=0.5, dice_weight=2.0)(logits, masks)
    torch.testing.assert_close(loss, torch.tensor(0.5 * math.log(32 / 3) / 3 + 2.0 * 8 / 21))
    torch.testing.assert_close(
        build_loss("ce+dice")(logits, masks), torch.tensor(math.log(32 / 3) / 3 + 8 / 21)
    )


def random_case(seed=0, num_classes=4):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, num_classes, 8, 8, generator=generator)
    masks = torch.randint(0, num_classes, (3, 8, 8), generator=generator)
    masks[torch.rand(3, 8, 8, generator=generator) < 0.3] = 255
    return logits, masks


def test_class_weighted_ce_matches_torch():
    logits, masks = random_case()
    weights = [0.5, 1.0, 2.0, 4.0]
    expected = F.cross_entropy(logits, masks, weight=torch.tensor(weights), ignore_index=255)
    torch.testing.assert_close(build_loss("ce", 4, class_weights=weights)(logits, masks), expected)
    combined = build_loss("ce+dice", 4, class_weights=weights)(logits, masks)
    torch.testing.assert_close(combined, expected + DiceLoss()(logits, masks))


@pytest.mark.parametrize("name", ["ce", "dice", "ce+dice"])
def test_ignored_pixels_change_nothing(name):
    logits, masks = random_case()
    ignored = (masks == 255).unsqueeze(1).expand_as(logits)
    loss_fn = build_loss(name, 4)
    changed = logits.clone()
    changed[ignored] = 100 * torch.randn(int(ignored.sum()))
    torch.testing.assert_close(loss_fn(changed, masks), loss_fn(logits, masks))
    logits.requires_grad_(True)
    loss_fn(logits, masks).backward()
    assert (logits.grad[ignored] == 0).all()
    assert (logits.grad[~ignored] != 0).any()


def test_dice_perfect_prediction_is_zero_and_wrong_is_near_one():
    _, masks = random_case()
    one_hot = F.one_hot(masks.where(masks != 255, 0), 4).permute(0, 3, 1, 2).float()
    assert DiceLoss()(20 * one_hot, masks) < 1e-4
    assert DiceLoss()(-20 * one_hot, masks) > 0.95


def test_dice_with_every_pixel_ignored_is_zero_not_nan():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = DiceLoss()(logits, torch.full((2, 4, 4), 255))
    assert loss.item() == 0.0
    loss.backward()  # still part of the graph


def test_build_loss_errors_and_devices():
    assert isinstance(build_loss("ce", 3), nn.CrossEntropyLoss)
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss("focal")
    with pytest.raises(ValueError, match="one weight per class"):
        build_loss("ce", 3, class_weights=[1.0, 2.0])
    # weights are buffers: they follow .to() and the loss works in float64 too
    loss_fn = build_loss("ce+dice", 2, class_weights=[1.0, 2.0]).to(torch.float64)
    assert loss_fn.ce.weight.dtype == torch.float64
    logits, masks = tiny_case()
    assert loss_fn(logits.double(), masks).dtype == torch.float64


def test_class_weights_median_frequency():
    # freq = 0.6, 0.3, 0.1; median 0.3 -> 0.3 / freq
    torch.testing.assert_close(class_weights([600, 300, 100]), torch.tensor([0.5, 1.0, 3.0]))
    # even count: median of (0.1, 0.2, 0.3, 0.4) is 0.25
    torch.testing.assert_close(
        class_weights(torch.tensor([100, 200, 300, 400])),
        torch.tensor([2.5, 1.25, 0.25 / 0.3, 0.625]),
    )
    # what DatasetReport.pixel_counts() returns: an int64 numpy array
    torch.testing.assert_close(
        class_weights(np.array([600, 300, 100])), torch.tensor([0.5, 1.0, 3.0])
    )


def test_class_weights_inverse():
    # 1 / (K * freq) with K = 3
    torch.testing.assert_close(
        class_weights([600, 300, 100], method="inverse"),
        torch.tensor([1 / 1.8, 1 / 0.9, 1 / 0.3]),
    )
    torch.testing.assert_close(class_weights([5, 5, 5, 5], method="inverse"), torch.ones(4))


def test_class_weights_sqrt_median():
    # sqrt(0.3 / freq) for freq 0.6, 0.3, 0.1; an absent class keeps weight 0
    torch.testing.assert_close(
        class_weights([600, 300, 100], method="sqrt-median"),
        torch.tensor([0.5**0.5, 1.0, 3.0**0.5]),
    )
    with pytest.warns(UserWarning, match="no pixels"):
        weights = class_weights([100, 0, 300], method="sqrt-median")
    torch.testing.assert_close(weights, torch.tensor([2.0**0.5, 0.0, (2 / 3) ** 0.5]))


def test_class_weights_for_absent_classes():
    with pytest.warns(UserWarning, match=r"classes \[1\] have no pixels"):
        weights = class_weights([100, 0, 300])
    # median over the present classes only: freq 0.25, 0.75 -> median 0.5
    torch.testing.assert_close(weights, torch.tensor([2.0, 0.0, 2 / 3]))
    with pytest.raises(ValueError, match="no pixels"):
        class_weights([100, 0, 300], ignore_zero=False)
    with pytest.raises(ValueError, match="unknown method"):
        class_weights([1, 2], method="log")


def test_deep_supervision_loss_is_the_weighted_sum_and_plain_for_one_tensor():
    torch.manual_seed(0)
    base = build_loss("ce+dice", 3)
    masks = torch.randint(0, 3, (2, 8, 8))
    masks[0, 0, :4] = 255
    logits, a1, a2 = (torch.randn(2, 3, 8, 8) for _ in range(3))
    loss = DeepSupervisionLoss(base)
    expected = base(logits, masks) + 0.5 * base(a1, masks) + 0.5 * base(a2, masks)
    torch.testing.assert_close(loss((logits, [a1, a2]), masks), expected)
    torch.testing.assert_close(loss(logits, masks), base(logits, masks))  # eval-mode output
    custom = DeepSupervisionLoss(base, weights=[1.0, 0.0])
    torch.testing.assert_close(
        custom((logits, [a1, a2]), masks), base(logits, masks) + base(a1, masks)
    )
    with pytest.raises(ValueError, match="2 auxiliary outputs but 1 weights"):
        DeepSupervisionLoss(base, weights=[1.0])((logits, [a1, a2]), masks)


def test_coarse_outputs_are_scored_against_masks_shrunk_to_their_size():
    torch.manual_seed(0)
    base = build_loss("ce+dice", 3)
    masks = torch.randint(0, 3, (2, 8, 8))
    masks[:, :4, :4] = 255  # an ignored block stays ignored, never averaged into a class
    logits, coarse = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 2, 2)
    shrunk = shrink_masks(masks, (2, 2))
    # each 4x4 cell takes the label at its centre, pixel (4i + 2, 4j + 2)
    torch.testing.assert_close(shrunk, masks[:, 2::4, 2::4])
    assert shrunk[:, 0, 0].tolist() == [255, 255]
    loss = DeepSupervisionLoss(base)((logits, [coarse]), masks)
    torch.testing.assert_close(loss, base(logits, masks) + 0.5 * base(coarse, shrunk))
    assert shrink_masks(masks, (8, 8)) is masks


def test_prior_adjusted_loss_is_the_loss_of_the_shifted_logits():
    weights = [0.5, 2.0, 0.0]  # a class with no pixels (weight 0) gets no offset
    ce = build_loss("ce", 3, class_weights=weights)
    adjusted = PriorAdjustedLoss(ce, weights)
    logits, masks = torch.randn(2, 3, 4, 4), torch.randint(0, 2, (2, 4, 4))
    shift = torch.tensor([math.log(0.5), math.log(2.0), 0.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(adjusted(logits, masks), ce(logits + shift, masks))
    torch.testing.assert_close(PriorAdjustedLoss(ce, weights, tau=0)(logits, masks),
                               ce(logits, masks))  # fmt: skip
    assert "offset" not in adjusted.state_dict()  # derived from the weights, not saved
    built = build_loss("ce", 3, class_weights=weights, prior_adjustment=1.0)
    torch.testing.assert_close(built(logits, masks), adjusted(logits, masks))
    assert adjusted.to(torch.float64)(logits.double(), masks).dtype == torch.float64


def test_ce_dice_adjusts_its_cross_entropy_term_only():
    weights = [0.5, 2.0, 0.0]
    logits, masks = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
    shift = torch.tensor([math.log(0.5), math.log(2.0), 0.0]).view(1, 3, 1, 1)
    ce, dice = build_loss("ce", 3, class_weights=weights), DiceLoss()
    adjusted = build_loss("ce+dice", 3, class_weights=weights, prior_adjustment=1.0)
    torch.testing.assert_close(
        adjusted(logits, masks), ce(logits + shift, masks) + dice(logits, masks)
    )
    half = CEDiceLoss(class_weights=weights, prior_adjustment=0.5)
    torch.testing.assert_close(
        half(logits, masks), ce(logits + shift / 2, masks) + dice(logits, masks)
    )
    plain = build_loss("ce+dice", 3, class_weights=weights, prior_adjustment=0.0)
    torch.testing.assert_close(plain(logits, masks), ce(logits, masks) + dice(logits, masks))
    for name, w in (("dice", weights), ("ce", None), ("ce+dice", None)):  # nothing to adjust
        with pytest.raises(ValueError, match="prior_adjustment"):
            build_loss(name, 3, class_weights=w, prior_adjustment=1.0)
    with pytest.raises(ValueError, match="give class_weights"):
        CEDiceLoss(prior_adjustment=1.0)


def test_prior_adjustment_takes_the_class_weights_bias_off_the_logits():
    # A model that is one logit per class, the same for every pixel, learns the class shares
    # of the masks: 80% class 0, 20% class 1. Weighted cross-entropy (weights 1 and 4) biases
    # it to 50/50; trained with the offset log(w), its own logits give the true 80/20 again.
    masks = torch.zeros(1, 10, 10, dtype=torch.long)
    masks[0, :2] = 1
    weights = [1.0, 4.0]

    def learned_share(loss_fn: nn.Module) -> float:
        bias = torch.zeros(1, 2, 1, 1, requires_grad=True)
        optimizer = torch.optim.Adam([bias], lr=0.05)
        for _ in range(800):
            optimizer.zero_grad()
            loss_fn(bias.expand(1, 2, 10, 10), masks).backward()
            optimizer.step()
        return bias.detach().softmax(1)[0, 1, 0, 0].item()

    weighted = build_loss("ce", 2, class_weights=weights)
    assert learned_share(weighted) == pytest.approx(0.5, abs=0.01)
    assert learned_share(PriorAdjustedLoss(weighted, weights)) == pytest.approx(0.2, abs=0.01)

    # CE + Dice: Dice has no weights to undo. Offsetting the whole sum's logits makes Dice pull
    # the model's own logits below the rare class's share (0.163 here, against the unweighted
    # sum's 0.196); offsetting the cross-entropy term alone, as build_loss does, leaves the
    # unweighted sum's answer (0.198).
    unweighted = learned_share(build_loss("ce+dice", 2))
    whole_sum = PriorAdjustedLoss(build_loss("ce+dice", 2, class_weights=weights), weights)
    assert learned_share(whole_sum) < unweighted - 0.02
    ce_term = build_loss("ce+dice", 2, class_weights=weights, prior_adjustment=1.0)
    assert learned_share(ce_term) == pytest.approx(unweighted, abs=0.01)


def test_dense_float_copies_half_precision_channels_last_logits_to_plain_float32():
    logits = (
        torch.randn(2, 3, 8, 8).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    )
    dense = dense_float(logits)
    assert dense.dtype == torch.float32 and dense.is_contiguous()
    assert torch.equal(dense, logits.float())
    as_is = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    assert dense_float(as_is) is as_is  # float64 and plain already: no copy, no downcast


def test_losses_on_channels_last_logits_equal_those_on_plain_ones():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 3, 16, 16, generator=generator)
    masks = torch.randint(0, 3, (4, 16, 16), generator=generator)
    masks[:, :2] = 255
    loss = CEDiceLoss(class_weights=[0.5, 1.0, 2.0], prior_adjustment=1.0)
    plain = logits.clone().requires_grad_()
    last = logits.clone().contiguous(memory_format=torch.channels_last).requires_grad_()
    loss(plain, masks).backward()
    loss(last, masks).backward()
    torch.testing.assert_close(loss(last, masks), loss(plain, masks))
    torch.testing.assert_close(last.grad, plain.grad)
