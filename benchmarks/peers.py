"""The library peers of benchmarks/compare.py, fed and trained at their own best settings.

`smp` (segmentation_models_pytorch's `Unet("resnet18")`), `lraspp` and `deeplabv3`
(torchvision's MobileNetV3-Large segmentation models), all from random weights so that nothing
is downloaded. They share one way of being fed and trained, chosen to be fast rather than to
copy a tutorial, so that segtutor is compared with peers that are not handicapped:

- `peer_data` decodes every file once (with segtutor's own decoding, so any folder segtutor
  loads works), resizes it once to `PEER_SIZE` (image bilinear with antialiasing, mask nearest:
  no new labels), and keeps uint8 tensors in memory, before the clock starts;
- `peer_batches` draws shuffled batches from those tensors in the main process, flips half of
  them horizontally and normalises with ImageNet's mean and std;
- `train_peer` runs Adam at a constant learning rate (picked per dataset by compare.py) with
  cross-entropy, and scores snapshots every `curve_every` seconds of training with the clock
  paused, so that one run gives its whole mIoU-against-time curve.

Scoring is `measure.evaluate_tutorial`: images predicted at `PEER_SIZE`, logits resized to each
mask's own size, one confusion matrix over the whole validation set.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from measure import evaluate_tutorial
from torch import nn
from torch.utils.data import Dataset

from segtutor.data import load_splits
from segtutor.model import count_parameters
from segtutor.runtime import choose_device, seed_everything
from segtutor.settings import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "PEERS",
    "PEER_BATCH",
    "PEER_LRS",
    "PEER_SIZE",
    "LogitsOnly",
    "PeerData",
    "PeerValSet",
    "build_peer",
    "normalise",
    "peer_batches",
    "peer_data",
    "resize_pair",
    "run_fast_peer",
    "train_peer",
]

PEERS = ("smp", "lraspp", "deeplabv3")
PEER_SIZE = 128  # whole images resized to 128x128, as the smp reference was trained
PEER_BATCH = 8
PEER_LRS = (3e-4, 1e-3, 3e-3)  # the learning rates compare.py picks from, per dataset


class LogitsOnly(nn.Module):
    """Wraps a torchvision segmentation model, whose forward returns `{"out": logits}`, so that
    it returns the logits `(N, C, H, W)` like every other model the benchmark scores."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """`images` `(N, 3, H, W)` -> logits `(N, C, H, W)`."""
        return self.model(images)["out"]


def build_peer(name: str, num_classes: int) -> nn.Module:
    """A peer's model from random weights (`weights=None`: nothing is ever downloaded).

    smp is imported only here, so that the rest of the benchmark runs without it.
    """
    if name == "smp":
        try:
            import segmentation_models_pytorch as smp
        except ImportError as error:
            raise SystemExit(
                "the smp pipeline needs segmentation_models_pytorch: "
                ".venv/bin/pip install -r benchmarks/requirements.txt "
                "(or leave it out of --pipelines)"
            ) from error
        return smp.Unet("resnet18", encoder_weights=None, in_channels=3, classes=num_classes)
    from torchvision.models import segmentation

    from segtutor.architectures import use_pytorch_batchnorm_momentum

    if name == "lraspp":
        model = segmentation.lraspp_mobilenet_v3_large(
            weights=None, weights_backbone=None, num_classes=num_classes
        )
    elif name == "deeplabv3":
        model = segmentation.deeplabv3_mobilenet_v3_large(
            weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False
        )
    else:
        raise ValueError(f"unknown peer {name!r}; choose from {PEERS}")
    # torchvision's MobileNetV3 keeps BatchNorm momentum 0.01, which handicaps short runs from
    # random weights; the peers get PyTorch's 0.1, as segtutor's models do (the rows measured
    # from 2026-12-02 on; earlier ones ran at 0.01).
    return LogitsOnly(use_pytorch_batchnorm_momentum(model))


def resize_pair(
    image: torch.Tensor, mask: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Image uint8 `(3, H, W)` and mask `(H, W)` -> uint8 `(3, size, size)` and `(size, size)`.

    The image is resized bilinearly with antialiasing (as PIL does); the mask with nearest, so
    that it holds only labels it held before (255 included).
    """
    image = F.interpolate(
        image[None].float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )[0]
    mask = F.interpolate(mask[None, None].float(), size=(size, size), mode="nearest-exact")[0, 0]
    return image.round().clamp(0, 255).to(torch.uint8), mask.to(torch.uint8)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 `(N, 3, H, W)` -> float32 `(N, 3, H, W)` with ImageNet's mean and std."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255 - mean) / std


class PeerValSet(Dataset):
    """The validation set, decoded once: images at the peers' size, masks at their own.

    Shape:
        `(image float32 (3, size, size) normalised, mask int64 (H, W))` per item.
    """

    def __init__(self, images: list[torch.Tensor], masks: list[torch.Tensor]):
        self.images, self.masks = images, masks

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return normalise(self.images[index][None])[0], self.masks[index].long()

    def mask_sizes(self) -> set[tuple[int, int]]:
        """The distinct `(H, W)` of the masks: one size allows batches, several need 1."""
        return {tuple(m.shape) for m in self.masks}


@dataclass
class PeerData:
    """What `peer_data` decoded: the training set as two tensors, the validation set, names.

    Shape:
        `train_images` uint8 `(N, 3, size, size)`, `train_masks` uint8 `(N, size, size)`.
    """

    train_images: torch.Tensor
    train_masks: torch.Tensor
    val_set: PeerValSet
    num_classes: int
    class_names: list[str]
    train_image_paths: list[Path] = field(repr=False)
    val_image_paths: list[Path] = field(repr=False)
    decode_s: float = 0.0


def peer_data(data: str | Path, size: int = PEER_SIZE) -> PeerData:
    """Decode and resize every file of segtutor's split of `data` once (before any clock starts).

    The files and the split are `segtutor.data.load_splits`'s, the decoding its
    `read_sample` (so palette masks and the famous layouts are read as segtutor reads them).
    """
    start = time.monotonic()
    train_ds, val_ds = load_splits(data, cache=False)
    pairs = [resize_pair(*train_ds.read_sample(i), size) for i in range(len(train_ds))]
    val_images, val_masks = [], []
    for i in range(len(val_ds)):
        image, mask = val_ds.read_sample(i)
        val_images.append(resize_pair(image, mask, size)[0])
        val_masks.append(mask.to(torch.uint8))  # labels and 255 fit in a byte
    return PeerData(
        train_images=torch.stack([p[0] for p in pairs]),
        train_masks=torch.stack([p[1] for p in pairs]),
        val_set=PeerValSet(val_images, val_masks),
        num_classes=train_ds.num_classes,
        class_names=list(train_ds.class_names),
        train_image_paths=list(train_ds.image_paths),
        val_image_paths=list(val_ds.image_paths),
        decode_s=time.monotonic() - start,
    )


def peer_batches(
    images: torch.Tensor, masks: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One shuffled epoch of `(images float32 (B, 3, S, S) normalised, masks int64 (B, S, S))`.

    Half the samples (at random) are flipped left-right. A last short batch is dropped when
    there is more than one batch: deeplabv3's image-pooling branch has a BatchNorm over 1x1
    maps, which cannot train on a single sample.
    """
    n = len(images)
    order = torch.randperm(n, generator=generator)
    usable = n - n % batch_size if n > batch_size else n
    for start in range(0, usable, batch_size):
        index = order[start : start + batch_size]
        x, y = images[index], masks[index]
        flip = torch.rand(len(index), generator=generator) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        y = torch.where(flip.view(-1, 1, 1), y.flip(-1), y)
        yield normalise(x), y.long()


def train_peer(
    model: nn.Module,
    data: PeerData,
    *,
    lr: float,
    budget_s: float,
    curve_every: float | None,
    score: Callable[[], float],
    seed: int = 0,
) -> dict[str, Any]:
    """Adam at a constant `lr` and cross-entropy until `budget_s` seconds of training are spent.

    Every `curve_every` seconds of training (None or 0: never), `score()` is called with the
    clock paused; the points `(training seconds, mIoU)` form the run's curve. The clock is
    checked after every step (`loss.item()` waits for the device, so the time is honest).

    Returns:
        steps, images, epochs, train_s, curve, curve_eval_s, final_loss.
    """
    device = next(model.parameters()).device
    criterion = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    batch = min(PEER_BATCH, len(data.train_images))
    curve: list[tuple[float, float]] = []
    steps = images_seen = epochs = 0
    paused = 0.0
    next_point = curve_every or math.inf
    loss_value = math.nan
    start = time.monotonic()

    def elapsed() -> float:
        return time.monotonic() - start - paused

    model.train()
    while elapsed() < budget_s:
        epochs += 1
        for images, masks in peer_batches(data.train_images, data.train_masks, batch, generator):
            images, masks = images.to(device), masks.to(device)  # (B, 3, S, S), (B, S, S)
            loss = criterion(model(images), masks)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_value = loss.item()
            steps += 1
            images_seen += len(images)
            if elapsed() >= budget_s:
                break
            if elapsed() >= next_point:
                pause_start, at = time.monotonic(), elapsed()
                curve.append((at, score()))
                paused += time.monotonic() - pause_start
                next_point += curve_every
    return {
        "steps": steps,
        "images": images_seen,
        "epochs": epochs,
        "train_s": elapsed(),
        "curve": curve,
        "curve_eval_s": paused,
        "final_loss": loss_value,
    }


def run_fast_peer(
    pipeline: str,
    data: str,
    budget: float,
    *,
    lr: float,
    device: str = "auto",
    curve_every: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """One peer run: decode, train for `budget` seconds at `lr`, score; the numbers as a dict.

    The last point of `curve` is the final score, at the training seconds actually spent.
    `seed` gives the initial weights and the shuffling (benchmarks/seeds.py varies it).
    """
    prepared = peer_data(data)
    seed_everything(seed)
    model = build_peer(pipeline, prepared.num_classes).to(choose_device(device))
    val_batch = 1 if len(prepared.val_set.mask_sizes()) > 1 else PEER_BATCH

    def score() -> float:
        cm = evaluate_tutorial(model, prepared.val_set, prepared.num_classes, batch_size=val_batch)
        return cm.miou()

    stats = train_peer(
        model, prepared, lr=lr, budget_s=budget, curve_every=curve_every, score=score, seed=seed
    )
    eval_start = time.monotonic()
    cm = evaluate_tutorial(model, prepared.val_set, prepared.num_classes, batch_size=val_batch)
    miou = cm.miou()
    ious = cm.iou().tolist()
    return {
        "miou": None if math.isnan(miou) else miou,
        "miou_last_epoch": None if math.isnan(miou) else miou,
        "per_class_iou": dict(zip(prepared.class_names, ious, strict=True)),
        "pixel_accuracy": cm.pixel_accuracy(),
        "curve": [*stats["curve"], (stats["train_s"], miou)],
        "curve_eval_s": stats["curve_eval_s"],
        "epochs": stats["epochs"],
        "steps": stats["steps"],
        "train_images": stats["images"],
        "train_s": stats["train_s"],
        "fit_s": stats["train_s"],
        "eval_s": time.monotonic() - eval_start,
        "decode_s": prepared.decode_s,
        "images_per_s": stats["images"] / stats["train_s"] if stats["train_s"] > 0 else math.nan,
        "params": count_parameters(model),
        "input_size": PEER_SIZE,
        "input_mode": "resize",
        "batch_size": min(PEER_BATCH, len(prepared.train_images)),
        "lr": lr,
        "final_loss": stats["final_loss"],
    }
