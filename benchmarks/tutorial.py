"""Pipeline 2 of benchmarks/compare.py: the source tutorial's code as it writes it.

Its transforms, its `SegmentationDataset` (here `TutorialDataset`), its U-Net and its training
loop, with one fix: masks become labels with `np.array`, not `ToTensor` (which divides every
label by 255). The smp pipeline is fed and trained by the same code; only the model differs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn, optim
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

__all__ = [
    "IGNORE_INDEX",
    "TUTORIAL_BATCH",
    "TUTORIAL_LR",
    "TUTORIAL_SIZE",
    "TUTORIAL_WORKERS",
    "TutorialDataset",
    "UNet",
    "train_tutorial",
    "tutorial_datasets",
    "tutorial_image_transform",
    "tutorial_mask_transform",
    "tutorial_train_loader",
]

# The tutorial's configuration, as it writes it.
TUTORIAL_SIZE = 128  # transforms.Resize((128, 128))
TUTORIAL_BATCH = 8  # DataLoader(..., batch_size=8, shuffle=True, num_workers=4)
TUTORIAL_WORKERS = 4
TUTORIAL_LR = 1e-4  # optim.Adam(model.parameters(), lr=1e-4)
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
IGNORE_INDEX = 255


def tutorial_image_transform(size: int = TUTORIAL_SIZE) -> Callable:
    """The tutorial's `image_transform`: PIL resize to a square, to tensor, ImageNet normalise."""
    return transforms.Compose(
        [
            transforms.Resize((size, size)),
            transforms.ToTensor(),
            transforms.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        ]
    )


def tutorial_mask_transform(size: int = TUTORIAL_SIZE) -> Callable:
    """The tutorial's `mask_transform` without its `ToTensor()` (which divides labels by 255)."""
    return transforms.Resize((size, size), interpolation=transforms.InterpolationMode.NEAREST)


class TutorialDataset(Dataset):
    """The tutorial's `SegmentationDataset`: opens and decodes both files with PIL every time.

    Two changes from the source: it takes the file lists (segtutor's `load_splits` pairs them by
    stem, so every pipeline sees the same pairs) instead of two sorted directory listings, and
    the mask becomes labels with `torch.from_numpy(np.array(mask)).long()` after the resize,
    instead of `ToTensor()` then `.long()` (defect 1 of the source: all labels become 0).
    With `mask_transform=None` the mask keeps its own size (the tutorial's `else` branch): that
    is how the validation set is read, so that metrics are taken at the masks' resolution.

    Shape:
        `(image float32 (3, size, size), mask int64 (size, size) or (H, W))`.
    """

    def __init__(
        self,
        image_paths: Sequence[Path],
        mask_paths: Sequence[Path],
        transform: Callable | None = None,
        mask_transform: Callable | None = None,
    ):
        self.image_paths = list(image_paths)
        self.mask_paths = list(mask_paths)
        self.transform = transform
        self.mask_transform = mask_transform
        assert len(self.image_paths) == len(self.mask_paths), (
            "Number of images and masks must be the same."
        )

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = Image.open(self.image_paths[idx]).convert("RGB")
        mask = Image.open(self.mask_paths[idx]).convert("L")  # the tutorial: greyscale masks
        if self.transform:
            image = self.transform(image)
        if self.mask_transform:
            mask = self.mask_transform(mask)
        mask = torch.from_numpy(np.array(mask)).long()  # THE FIX (was ToTensor() then .long())
        return image, mask


# The tutorial's U-Net, as it writes it (the same parts as milesial/Pytorch-UNet).


class DoubleConv(nn.Module):
    """(convolution => [BN] => ReLU) * 2"""

    def __init__(self, in_channels, out_channels, mid_channels=None):
        super().__init__()
        if not mid_channels:
            mid_channels = out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    """Downscaling with maxpool then double conv"""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    """Upscaling then double conv"""

    def __init__(self, in_channels, out_channels, bilinear=True):
        super().__init__()
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        diffY = x2.size()[2] - x1.size()[2]
        diffX = x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [diffX // 2, diffX - diffX // 2, diffY // 2, diffY - diffY // 2])
        x = torch.cat([x2, x1], dim=1)
        return self.conv(x)


class OutConv(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x):
        return self.conv(x)


class UNet(nn.Module):
    """The tutorial's `UNet(n_channels, n_classes, bilinear=True)`: 64..1024 channels, and with
    its default bilinear upsampling the bottleneck and decoder at half width (17.3 M parameters;
    segtutor's `UNet(base_width=64, depth=4, bilinear=True)` is the same network)."""

    def __init__(self, n_channels, n_classes, bilinear=True):
        super().__init__()
        self.n_channels = n_channels
        self.n_classes = n_classes
        self.bilinear = bilinear
        self.inc = DoubleConv(n_channels, 64)
        self.down1 = Down(64, 128)
        self.down2 = Down(128, 256)
        self.down3 = Down(256, 512)
        factor = 2 if bilinear else 1
        self.down4 = Down(512, 1024 // factor)
        self.up1 = Up(1024, 512 // factor, bilinear)
        self.up2 = Up(512, 256 // factor, bilinear)
        self.up3 = Up(256, 128 // factor, bilinear)
        self.up4 = Up(128, 64, bilinear)
        self.outc = OutConv(64, n_classes)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        x = self.up1(x5, x4)
        x = self.up2(x, x3)
        x = self.up3(x, x2)
        x = self.up4(x, x1)
        logits = self.outc(x)
        return logits


def tutorial_datasets(
    data: str | Path, size: int = TUTORIAL_SIZE
) -> tuple[TutorialDataset, TutorialDataset, int]:
    """Train and val sets over segtutor's split of `data` (the same files for every pipeline).

    Returns:
        `(train_set, val_set, num_classes)`; the val set keeps the masks at their own size.
    """
    from segtutor.data import load_splits

    train_ds, val_ds = load_splits(data)  # the train command's split (val_fraction 0.2, seed 0)
    modes = set(train_ds.report.mask_modes) | set(val_ds.report.mask_modes)
    if not modes <= {"L"}:
        raise SystemExit(
            f"{data}: masks of modes {sorted(modes)}; the tutorial's pipeline "
            "reads masks with .convert('L'), which is right for 8-bit label masks only"
        )
    train_set = TutorialDataset(
        train_ds.image_paths,
        train_ds.mask_paths,
        tutorial_image_transform(size),
        tutorial_mask_transform(size),
    )
    val_set = TutorialDataset(val_ds.image_paths, val_ds.mask_paths, tutorial_image_transform(size))
    return train_set, val_set, train_ds.num_classes


def tutorial_train_loader(train_set: Dataset, seed: int = 0) -> DataLoader:
    """The tutorial's `DataLoader(train_set, batch_size=8, shuffle=True, num_workers=4)`."""
    generator = torch.Generator().manual_seed(seed)  # seeded here only to make runs repeatable
    return DataLoader(
        train_set,
        batch_size=TUTORIAL_BATCH,
        shuffle=True,
        num_workers=TUTORIAL_WORKERS,
        generator=generator,
    )


def train_tutorial(
    model: nn.Module,
    train_loader: DataLoader,
    *,
    budget_s: float | None = None,
    max_steps: int | None = None,
    lr: float = TUTORIAL_LR,
) -> dict[str, Any]:
    """The tutorial's training loop, until `budget_s` seconds or `max_steps` steps are spent.

    Cross-entropy with `ignore_index=255` (the tutorial's own commented-out option, needed here:
    the bundled scenes mark object edges 255, which plain `CrossEntropyLoss()` rejects as an
    out-of-range class), Adam at 1e-4, no schedule, no augmentation, no validation while
    training. The clock is checked after every step.

    Returns:
        steps, images, epochs, train_s (time in the loop, data loading included), step_ends
        (`(epoch, monotonic time)` per step), final_loss.
    """
    device = next(model.parameters()).device
    criterion = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    model.train()
    steps = images_seen = epoch = 0
    step_ends: list[tuple[int, float]] = []
    loss = torch.tensor(math.nan)
    start = time.monotonic()
    done = False
    while not done:
        epoch += 1
        for images, masks in train_loader:
            images = images.to(device)  # (N, 3, H, W)
            masks = masks.to(device)  # (N, H, W)
            optimizer.zero_grad()
            outputs = model(images)  # (N, C, H, W)
            loss = criterion(outputs, masks)
            loss.backward()
            optimizer.step()
            loss.item()  # the tutorial's running_loss += loss.item()
            steps += 1
            images_seen += images.shape[0]
            step_ends.append((epoch, time.monotonic()))
            if (budget_s is not None and time.monotonic() - start >= budget_s) or (
                max_steps is not None and steps >= max_steps
            ):
                done = True
                break
    return {
        "steps": steps,
        "images": images_seen,
        "epochs": epoch,
        "train_s": time.monotonic() - start,
        "step_ends": step_ends,
        "final_loss": float(loss.item()),
    }
