"""Tests for segtutor.metrics, with torchmetrics as the oracle."""

import json
import math

import pytest
import torch
import torch.distributed as dist
from torchmetrics.classification import (
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassJaccardIndex,
)

from segtutor.metrics import (
    ConfusionMatrix,
    confusion_matrix,
    dice_from_confusion,
    iou_from_confusion,
    mean_ignoring_nan,
    pixel_accuracy_from_confusion,
)

NAN = float("nan")


def test_hand_computed():
    preds = torch.tensor([[0, 1], [1, 1]])
    masks = torch.tensor([[0, 1], [0, 255]])
    cm = confusion_matrix(preds, masks, num_classes=3)
    # truth 0 -> predicted 0 once, 1 once; truth 1 -> 1 once; the 255 pixel is skipped
    assert cm.dtype == torch.int64
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    # class 0: TP 1, FN 1, FP 0 -> IoU 1/2, Dice 2/3; class 1: TP 1, FP 1 -> 1/2, 2/3;
    # class 2: nowhere -> NaN
    torch.testing.assert_close(
        iou_from_confusion(cm), torch.tensor([0.5, 0.5, NAN]).double(), equal_nan=True
    )
    torch.testing.assert_close(
        dice_from_confusion(cm), torch.tensor([2 / 3, 2 / 3, NAN]).double(), equal_nan=True
    )
    assert pixel_accuracy_from_confusion(cm) == pytest.approx(2 / 3)
    assert mean_ignoring_nan(iou_from_confusion(cm)) == pytest.approx(0.5)


def test_class_only_predicted_has_iou_zero_not_nan():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([[0, 2]]), torch.tensor([[0, 0]]))
    iou = cm.iou()
    assert iou[0] == 0.5 and iou[2] == 0.0 and math.isnan(iou[1])
    assert cm.miou() == pytest.approx(0.25)  # mean of 0.5 and 0.0; class 1 not measured


def random_batches(num_batches=4, num_classes=5, seed=0):
    """Batches where class 4 never occurs, class 3 is only predicted, ~15 % of pixels ignored."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(num_batches):
        masks = torch.randint(0, 3, (2, 16, 12), generator=generator)
        masks[torch.rand(masks.shape, generator=generator) < 0.15] = 255
        logits = torch.randn(2, num_classes, 16, 12, generator=generator)
        logits[:, 4] = -1e9  # never predicted either
        yield logits, masks


def test_matches_torchmetrics_over_several_batches():
    num_classes = 5
    ours = ConfusionMatrix(num_classes)
    tm_cm = MulticlassConfusionMatrix(num_classes, ignore_index=255)
    tm_iou = MulticlassJaccardIndex(num_classes, average=None, ignore_index=255)
    tm_miou = MulticlassJaccardIndex(num_classes, average="macro", ignore_index=255)
    tm_dice = MulticlassF1Score(num_classes, average=None, ignore_index=255)
    for logits, masks in random_batches(num_classes=num_classes):
        ours.update(logits, masks)
        preds = logits.argmax(dim=1)
        for metric in (tm_cm, tm_iou, tm_miou, tm_dice):
            metric.update(preds, masks)

    assert torch.equal(ours.matrix, tm_cm.compute().long())
    iou = ours.iou()
    assert math.isnan(iou[4]) and not iou[:4].isnan().any()
    # torchmetrics reports 0 for the class seen nowhere; we report NaN ("not measured")
    torch.testing.assert_close(iou[:4], tm_iou.compute()[:4].double())
    assert ours.miou() == pytest.approx(tm_miou.compute().item(), abs=1e-6)
    torch.testing.assert_close(ours.dice()[:4], tm_dice.compute()[:4].double())
    valid = tm_cm.compute().sum().item()
    assert ours.pixel_accuracy() == pytest.approx(tm_cm.compute().trace().item() / valid)


def test_logits_and_preds_give_the_same_matrix():
    by_logits, by_preds = ConfusionMatrix(5), ConfusionMatrix(5)
    for logits, masks in random_batches():
        by_logits.update(logits, masks)
        by_preds.update(logits.argmax(dim=1), masks)
    assert torch.equal(by_logits.matrix, by_preds.matrix)
    single = ConfusionMatrix(5)  # one image: logits (C, H, W), mask (H, W)
    single.update(logits[0], masks[0])
    reference = ConfusionMatrix(5)
    reference.update(logits[:1], masks[:1])
    assert torch.equal(single.matrix, reference.matrix)


def test_ignored_pixels_are_not_counted():
    logits, masks = next(random_batches())
    cm = ConfusionMatrix(5)
    cm.update(logits, masks)
    assert cm.matrix.sum() == (masks != 255).sum()
    other = ConfusionMatrix(5, ignore_index=0)  # another ignore value
    other.update(logits, masks.where(masks != 255, 0))
    assert other.matrix[0].sum() == 0


def test_uint8_masks_do_not_overflow():
    masks = torch.full((1, 4, 4), 20, dtype=torch.uint8)  # 25 * 20 + 20 > 255
    cm = confusion_matrix(masks.long(), masks, num_classes=25)
    assert cm[20, 20] == 16


def test_reset_merge_and_add():
    first, second, whole = ConfusionMatrix(5), ConfusionMatrix(5), ConfusionMatrix(5)
    for i, (logits, masks) in enumerate(random_batches()):
        (first if i % 2 else second).update(logits, masks)
        whole.update(logits, masks)
    total = first + second
    assert torch.equal(total.matrix, whole.matrix)
    assert torch.equal(first.matrix + second.matrix, whole.matrix)  # + left both unchanged
    first.merge(second)
    assert torch.equal(first.matrix, whole.matrix)
    whole.reset()
    assert whole.matrix.sum() == 0 and math.isnan(whole.miou())
    with pytest.raises(ValueError, match="same classes"):
        whole.merge(ConfusionMatrix(3))


def test_all_reduce_single_process(tmp_path):
    cm = ConfusionMatrix(5)
    cm.update(*next(random_batches()))
    before = cm.matrix.clone()
    cm.all_reduce()  # not initialised: nothing happens
    assert torch.equal(cm.matrix, before)
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        cm.all_reduce()  # world of one: the sum is itself
    finally:
        dist.destroy_process_group()
    assert torch.equal(cm.matrix, before)


def test_clear_errors():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="same shape"):
        cm.update(torch.zeros(2, 4, 4, dtype=torch.long), torch.zeros(2, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"masks contain values outside 0..2"):
        cm.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.tensor([[[0, 1], [7, 255]]]))
    with pytest.raises(ValueError, match=r"preds contain values outside 0..2"):
        cm.update(torch.tensor([[[0, 3]]]), torch.tensor([[[0, 1]]]))
    with pytest.raises(ValueError, match=r"must be \(N, 3, H, W\)"):
        cm.update(torch.randn(1, 4, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="integer class indices"):
        confusion_matrix(torch.rand(2, 2), torch.zeros(2, 2, dtype=torch.long), 3)
    assert cm.matrix.sum() == 0  # nothing was added by the failed updates


def test_table_and_to_dict():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([[0, 1], [1, 1]]), torch.tensor([[0, 1], [0, 255]]))
    table = cm.table(["background", "disc", "ring"])
    lines = table.splitlines()
    assert lines[0].split() == ["class", "IoU", "Dice", "pixels", "predicted"]
    assert lines[2].split() == ["background", "0.5000", "0.6667", "2", "1"]
    assert lines[4].split() == ["ring", "n/a", "n/a", "0", "0"]
    assert "mean" in table and "pixel accuracy 0.6667" in table
    assert "class_0" in cm.table()

    result = json.loads(json.dumps(cm.to_dict(["background", "disc", "ring"]), allow_nan=False))
    assert result["miou"] == pytest.approx(0.5)
    assert result["per_class"][2] == {
        "class": "ring",
        "iou": None,
        "dice": None,
        "pixels": 0,
        "predicted": 0,
    }
    assert result["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="one per class"):
        cm.table(["only", "two"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_accumulates_on_the_gpu_and_returns_on_the_cpu():
    cm = ConfusionMatrix(5)
    for logits, masks in random_batches():
        cm.update(logits.cuda(), masks.cuda())
    assert cm._matrix.device.type == "cuda"
    assert cm.matrix.device.type == "cpu"
    reference = ConfusionMatrix(5)
    for logits, masks in random_batches():
        reference.update(logits, masks)
    assert torch.equal(cm.matrix, reference.matrix)
