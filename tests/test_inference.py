"""Tests for segtutor.inference: predictions, the per-image score, the worst-first ranking."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from segtutor.inference import (
    image_iou,
    predict,
    predict_logits,
    rank_worst,
    resize_logits,
    worst_k,
)
from segtutor.metrics import ConfusionMatrix


def test_predict_shapes():
    torch.manual_seed(0)
    model = nn.Conv2d(3, 3, kernel_size=1)
    images = torch.rand(2, 3, 8, 8)
    assert predict_logits(model, images).shape == (2, 3, 8, 8)
    assert predict(model, images).dtype == torch.int64
    assert predict(model, images[0], size=(4, 6)).shape == (4, 6)
    assert torch.equal(predict(model, images)[1], predict(model, images[1]))
    model.train()
    predict(model, images)
    assert model.training  # put back as it was


def test_resize_logits_leaves_the_right_size_alone():
    logits = torch.rand(1, 2, 4, 4)
    assert resize_logits(logits, (4, 4)) is logits
    assert resize_logits(logits, (8, 6)).shape == (1, 2, 8, 6)


def test_image_iou_matches_the_confusion_matrix():
    mask = torch.tensor([[0, 0, 1, 1], [0, 2, 1, 255]])
    preds = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 2]])
    iou = image_iou(preds, mask, num_classes=4)
    cm = ConfusionMatrix(4)
    cm.update(preds[None], mask[None])
    torch.testing.assert_close(iou, cm.iou(), equal_nan=True)
    assert iou.dtype == torch.float64 and iou.shape == (4,)
    assert iou[0] == pytest.approx(2 / 4) and iou[1] == pytest.approx(3 / 4) and iou[2] == 0
    assert math.isnan(iou[3])  # class 3 in neither the mask nor the prediction
    assert image_iou(preds, torch.full_like(mask, 255), 4).isnan().all()  # nothing labelled


def test_rank_worst_lowest_first_nan_left_out_ties_in_order():
    nan = math.nan
    assert rank_worst([0.9, nan, 0.2, 0.9, 0.5]) == [2, 4, 0, 3]
    assert rank_worst([0.9, nan, 0.2, 0.9, 0.5], k=3) == [2, 4, 0]
    assert rank_worst([0.3, 0.3, 0.1], k=2) == [2, 0]  # equal scores keep the dataset order
    assert rank_worst(torch.tensor([nan, nan])) == []
    assert rank_worst([0.5, 0.4], k=10) == [1, 0]


class RedIsClassOne(nn.Module):
    """Predicts class 1 where the red channel is above 0.5, else class 0."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, images):
        red = (images[:, :1] > 0.5).float()
        return torch.cat([1 - red, red], dim=1) + self.dummy


def test_worst_k_orders_by_per_image_miou():
    dataset = []
    for wrong_pixels in [0, 8, 2, 16]:  # of 16 pixels, how many the model gets wrong
        image = torch.zeros(3, 4, 4)
        image[0].view(-1)[:8] = 1.0  # red on the top half
        mask = (image[0] > 0.5).long()
        mask.view(-1)[:wrong_pixels] = 1 - mask.view(-1)[:wrong_pixels]
        dataset.append((image, mask))
    dataset.append((torch.zeros(3, 4, 4), torch.full((4, 4), 255)))  # nothing labelled: skipped
    ranked = worst_k(RedIsClassOne(), dataset, k=3, num_classes=2)
    assert [index for index, _ in ranked] == [3, 1, 2]
    assert ranked[0][1] == pytest.approx(0.0)
    # image 2: class 1 has TP 6, FP 2 -> 6/8; class 0 has TP 8, FN 2 -> 8/10
    assert ranked[2][1] == pytest.approx((6 / 8 + 8 / 10) / 2)
