"""Tests for segtutor.callbacks: PredictionSnapshots records what the model predicted each epoch."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from segtutor.callbacks import PredictionSnapshots
from segtutor.config import TrainConfig
from segtutor.inference import predict
from segtutor.train import fit


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 2, 1))  # fmt: skip


def test_snapshots_hold_each_epochs_prediction_and_leave_the_mode_alone():
    model = _tiny_model()
    images = torch.randn(2, 3, 6, 6)
    snapshots = PredictionSnapshots(model, images)
    model.train()
    snapshots.on_epoch_end(1, None)
    assert model.training  # put back as it was
    model.eval()
    snapshots.on_epoch_end(2, None)
    assert not model.training
    assert snapshots.epochs == [1, 2]
    assert snapshots.preds[0].shape == (2, 6, 6) and snapshots.preds[0].dtype == torch.int64
    assert torch.equal(snapshots.preds[1], predict(model, images))
    assert all(p.grad is None for p in model.parameters())


def test_snapshots_during_fit_follow_the_changing_weights():
    g = torch.Generator().manual_seed(0)
    images = torch.randn(8, 3, 6, 6, generator=g)
    masks = (images[:, 0] > 0).long()  # (8, 6, 6): a rule the model can learn
    loader = DataLoader(TensorDataset(images, masks), batch_size=4)
    model = _tiny_model()
    every_other = PredictionSnapshots(model, images[0], every=2)  # one image: (H, W) preds
    config = TrainConfig(num_epochs=4, lr=0.05, scheduler="none", loss="ce", progress=False,
                         device="cpu", amp=False, channels_last=False, num_classes=2)  # fmt: skip
    history = fit(model, loader, loader, config, callbacks=[every_other])
    assert every_other.epochs == [2, 4] and len(history) == 4
    assert every_other.preds[0].shape == (6, 6)
    # fit left the best epoch's weights in the model; epoch 4's snapshot is epoch 4's weights
    if history.best_epoch == 4:
        assert torch.equal(every_other.preds[-1], predict(model, images[0]))


def test_snapshots_refuse_bad_arguments():
    with pytest.raises(ValueError, match="every"):
        PredictionSnapshots(_tiny_model(), torch.zeros(1, 3, 4, 4), every=0)
    with pytest.raises(ValueError, match="images"):
        PredictionSnapshots(_tiny_model(), torch.zeros(4, 4))
