"""Callbacks that record what a model does during `fit`, for a notebook to draw afterwards.

Introduced in `04_training.ipynb`.

The training loop knows no plotting (DEVELOPERS.md, "The layers"): a callback here only stores
tensors, and `segtutor.viz` draws them. `PredictionSnapshots` is the course's version of
TensorFlow's segmentation-tutorial `DisplayCallback`, which shows one image's prediction after
every epoch: here the predictions are kept, so that one strip shows how they changed.

Example:
    >>> snapshots = PredictionSnapshots(model, images[:1])  # images (1, 3, H, W)
    >>> history = fit(model, train_loader, val_loader, config, callbacks=[snapshots])
    >>> plot_prediction_strip(images[0], masks[0], snapshots.preds, snapshots.epochs)
"""

from __future__ import annotations

import torch
from torch import nn

from segtutor.config import Callback, History
from segtutor.inference import class_map, predict_logits

__all__ = ["PredictionSnapshots"]


class PredictionSnapshots(Callback):
    """Predict the same images after every `every`-th epoch and keep the class maps.

    Introduced in `04_training.ipynb`.

    Args:
        model: the model `fit` trains (the same object: its weights change in place).
        images: `(N, 3, H, W)` normalised, as the model sees them (or `(3, H, W)` for one).
        every: predict after epochs `every`, `2 * every`, ... (1: after every epoch).

    After training, `epochs` lists the epoch numbers and `preds` the predictions, one
    `(N, H, W)` int64 CPU tensor per recorded epoch (`(H, W)` for one image). The model's
    train/eval mode is left as `fit` had it.
    """

    def __init__(self, model: nn.Module, images: torch.Tensor, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be 1 or more, got {every}")
        if images.ndim not in (3, 4):
            raise ValueError(f"images must be (N, 3, H, W) or (3, H, W), got {tuple(images.shape)}")
        self.model, self.images, self.every = model, images, every
        self.epochs: list[int] = []
        self.preds: list[torch.Tensor] = []

    def on_epoch_end(self, epoch: int, history: History) -> None:
        """Predict the images with the weights of this epoch (not the best so far)."""
        if epoch % self.every:
            return None
        with torch.no_grad():  # a snapshot must not leave a graph behind, nor touch the grads
            logits = predict_logits(self.model, self.images)  # (N, C, H, W), mode restored
        self.epochs.append(epoch)
        self.preds.append(class_map(logits))
        return None
