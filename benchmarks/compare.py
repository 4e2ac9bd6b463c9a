"""Side-by-side benchmark: segtutor's defaults, the source tutorial's pipeline, and smp's U-Net.

    .venv/bin/pip install -r benchmarks/requirements.txt       # once: segmentation_models_pytorch
    .venv/bin/python benchmarks/compare.py                      # everything (about an hour)
    .venv/bin/python benchmarks/compare.py --render-only        # re-draw the doc from the JSON
    .venv/bin/python benchmarks/compare.py --quick --datasets scenes   # smoke test, ~2 minutes

Three pipelines train on the same train/val file lists (segtutor's `load_splits`), for the same
wall-clock budget, and are scored the same way: one confusion matrix over the whole validation
set, at the masks' own resolution (`segtutor.metrics.ConfusionMatrix`).

1. `segtutor`: what `python -m segtutor train --data D --time-budget S` runs, its defaults,
   whatever they are today: `segtutor.recipe.prepare`, then `fit` with one more callback that
   only records when each training step ends (to count images and training seconds exactly),
   then `evaluate`, as the command does.
2. `tutorial`: the source tutorial's code as it writes it (below: `TutorialDataset`, `UNet`,
   `train_tutorial`), with one fix: masks become labels with `np.array`, not `ToTensor`.
3. `smp`: `segmentation_models_pytorch.Unet("resnet18", encoder_weights=None)`, fed, trained and
   scored exactly as 2 (only the model differs).

Every (pipeline, dataset, budget) run, and every throughput measurement, is a fresh child process,
so that peak memory (`ru_maxrss` from `os.wait4`) is per run and no run inherits another's caches.
Results go to `benchmarks/results/compare.json`; `docs/benchmarks.md` (between its RESULTS markers)
and `docs/images/benchmarks.png` are rendered from that file. Run it on an otherwise idle machine:
another busy process makes every number here smaller.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
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

from segtutor.jsonio import json_ready
from segtutor.metrics import ConfusionMatrix
from segtutor.recipe import Run, prepare
from segtutor.train import Callback, evaluate, fit

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve()
RESULTS_JSON = ROOT / "benchmarks" / "results" / "compare.json"
DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "images" / "benchmarks.png"
BUNDLED = {"scenes": "data_samples/scenes", "cells": "data_samples/cells"}
DEFAULT_NUCLEI = "../shared/data/nuclei"  # relative to the repository root
PIPELINES = ("segtutor", "tutorial", "smp")
BEGIN = "<!-- BEGIN RESULTS: written by benchmarks/compare.py from benchmarks/results/compare.json; do not edit by hand -->"
END = "<!-- END RESULTS -->"

# The tutorial's configuration, as it writes it.
TUTORIAL_SIZE = 128  # transforms.Resize((128, 128))
TUTORIAL_BATCH = 8  # DataLoader(..., batch_size=8, shuffle=True, num_workers=4)
TUTORIAL_WORKERS = 4
TUTORIAL_LR = 1e-4  # optim.Adam(model.parameters(), lr=1e-4)
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
IGNORE_INDEX = 255


# ==============================================================================================
# Pipeline 2: the source tutorial, as written (only the mask conversion fixed)


def tutorial_image_transform(size: int = TUTORIAL_SIZE) -> Callable:
    """The tutorial's `image_transform`: PIL resize to a square, to tensor, ImageNet normalise."""
    return transforms.Compose([
        transforms.Resize((size, size)),
        transforms.ToTensor(),
        transforms.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ])


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

    def __init__(self, image_paths: Sequence[Path], mask_paths: Sequence[Path],
                 transform: Callable | None = None, mask_transform: Callable | None = None):
        self.image_paths = list(image_paths)
        self.mask_paths = list(mask_paths)
        self.transform = transform
        self.mask_transform = mask_transform
        assert len(self.image_paths) == len(self.mask_paths), \
            "Number of images and masks must be the same."

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


def build_model(pipeline: str, num_classes: int) -> nn.Module:
    """The model of pipeline 2 ("tutorial") or 3 ("smp"); smp is imported only here."""
    if pipeline == "tutorial":
        return UNet(n_channels=3, n_classes=num_classes)  # as the tutorial instantiates it
    if pipeline == "smp":
        try:
            import segmentation_models_pytorch as smp
        except ImportError as error:
            raise SystemExit(
                "the smp pipeline needs segmentation_models_pytorch: "
                ".venv/bin/pip install -r benchmarks/requirements.txt "
                "(or leave it out: --pipelines segtutor,tutorial)"
            ) from error
        return smp.Unet("resnet18", encoder_weights=None, in_channels=3, classes=num_classes)
    raise ValueError(f"unknown pipeline {pipeline!r}")


def tutorial_datasets(data: str | Path, size: int = TUTORIAL_SIZE
                      ) -> tuple[TutorialDataset, TutorialDataset, int]:
    """Train and val sets over segtutor's split of `data` (the same files for every pipeline).

    Returns:
        `(train_set, val_set, num_classes)`; the val set keeps the masks at their own size.
    """
    from segtutor.data import load_splits

    train_ds, val_ds = load_splits(data)  # the train command's split (val_fraction 0.2, seed 0)
    modes = set(train_ds.report.mask_modes) | set(val_ds.report.mask_modes)
    if not modes <= {"L"}:
        raise SystemExit(f"{data}: masks of modes {sorted(modes)}; the tutorial's pipeline "
                         "reads masks with .convert('L'), which is right for 8-bit label masks only")
    train_set = TutorialDataset(train_ds.image_paths, train_ds.mask_paths,
                                tutorial_image_transform(size), tutorial_mask_transform(size))
    val_set = TutorialDataset(val_ds.image_paths, val_ds.mask_paths, tutorial_image_transform(size))
    return train_set, val_set, train_ds.num_classes


def tutorial_train_loader(train_set: Dataset, seed: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)  # seeded here only to make runs repeatable
    return DataLoader(train_set, batch_size=TUTORIAL_BATCH, shuffle=True,
                      num_workers=TUTORIAL_WORKERS, generator=generator)


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
    return {"steps": steps, "images": images_seen, "epochs": epoch,
            "train_s": time.monotonic() - start, "step_ends": step_ends,
            "final_loss": float(loss.item())}


@torch.inference_mode()
def evaluate_tutorial(model: nn.Module, val_set: Dataset, num_classes: int,
                      batch_size: int = 1) -> ConfusionMatrix:
    """One confusion matrix over the whole `val_set`, at the masks' own resolution.

    Images are predicted at the size the pipeline trained at; logits are resized bilinearly to
    each mask's size before the argmax (as `segtutor.train.evaluate` does). Masks of different
    sizes need `batch_size=1`.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    cm = ConfusionMatrix(num_classes, ignore_index=IGNORE_INDEX)
    for images, masks in DataLoader(val_set, batch_size=batch_size):
        logits = model(images.to(device)).float()  # (N, C, size, size)
        if tuple(logits.shape[-2:]) != tuple(masks.shape[-2:]):
            logits = F.interpolate(logits, size=tuple(masks.shape[-2:]), mode="bilinear",
                                   align_corners=False)  # (N, C, H, W), the masks' size
        cm.update(logits.argmax(dim=1).cpu(), masks)
    model.train(was_training)
    return cm


def mask_sizes(dataset: TutorialDataset) -> set[tuple[int, int]]:
    sizes = set()
    for path in dataset.mask_paths:
        with Image.open(path) as img:
            sizes.add(img.size)
    return sizes


# ==============================================================================================
# Child processes: one run each


class FitRecorder(Callback):
    """A `fit` callback that records when every training step and epoch ends, nothing else.

    Training seconds are the time from the start of each epoch to its last step: validation
    passes (and checkpoint writes) are left out.
    """

    class Done(Exception):
        """Raised from a callback to end a throughput measurement after `stop_after` steps."""

    def __init__(self, stop_after: int | None = None):
        self.stop_after = stop_after
        self.step_ends: list[tuple[int, float]] = []
        self.epoch_ends: list[float] = []
        self.fit_start = self.fit_end = math.nan
        self.train_loader: DataLoader | None = None

    def on_batch_end(self, epoch: int, step: int, loss: float) -> None:
        self.step_ends.append((epoch, time.monotonic()))
        if self.stop_after is not None and len(self.step_ends) >= self.stop_after:
            raise FitRecorder.Done

    def on_epoch_end(self, epoch: int, history: Any) -> None:
        self.epoch_ends.append(time.monotonic())

    def fit(self, run: Run, model: nn.Module | None = None) -> Any:
        """`fit` the run's model (or `model`) on the run's loaders and config, watched by self."""
        self.train_loader = run.train_loader
        self.fit_start = time.monotonic()
        try:
            return fit(model or run.model, run.train_loader, run.val_loader, run.config,
                       callbacks=[self])
        finally:
            self.fit_end = time.monotonic()

    def training(self) -> tuple[int, int, float]:
        """(steps, training images, training seconds) over the whole fit."""
        loader = self.train_loader
        batch, size = loader.batch_size, len(loader.dataset)
        steps_per_epoch: dict[int, int] = {}
        last_end: dict[int, float] = {}
        for epoch, t in self.step_ends:
            steps_per_epoch[epoch] = steps_per_epoch.get(epoch, 0) + 1
            last_end[epoch] = t
        images, seconds = 0, 0.0
        starts = [self.fit_start, *self.epoch_ends]
        for i, epoch in enumerate(sorted(steps_per_epoch)):
            n = steps_per_epoch[epoch] * batch
            images += n if loader.drop_last else min(n, size)
            seconds += last_end[epoch] - starts[i]
        return len(self.step_ends), images, seconds


def step_rate(step_ends: list[tuple[int, float]], batch: int, warmup: int) -> dict[str, float]:
    """Images/s from the steps after `warmup`, using only gaps between steps of one epoch
    (an epoch boundary holds validation or DataLoader worker start-up, not a training step)."""
    gaps = [b[1] - a[1] for a, b in zip(step_ends[warmup:], step_ends[warmup + 1:], strict=False)
            if a[0] == b[0]]
    if not gaps:
        return {"timed_steps": 0, "step_s": math.nan, "images_per_s": math.nan}
    step_s = sum(gaps) / len(gaps)
    return {"timed_steps": len(gaps), "step_s": step_s, "images_per_s": batch / step_s}


def segtutor_command(data: str, extra: Sequence[str] = ()) -> str:
    """The train command that runs what `prepare(data, ...)` with the same choices prepares."""
    return " ".join(["python -m segtutor train --data", data, "--quiet --out TMP", *extra])


def child_run(spec: dict[str, Any]) -> dict[str, Any]:
    """One (pipeline, dataset, budget) run; returns its numbers."""
    from segtutor.formats import read_metadata
    from segtutor.model import count_parameters
    from segtutor.runtime import seed_everything

    pipeline, data, budget = spec["pipeline"], spec["data"], float(spec["budget_s"])
    if pipeline == "segtutor":
        recorder = FitRecorder()
        with tempfile.TemporaryDirectory() as out:  # the command writes its checkpoints too
            run = prepare(data, time_budget_s=budget, progress=False, run_dir=out)
            history = recorder.fit(run)
            cm = evaluate(run.model, run.val_loader, run.num_classes,
                          ignore_index=run.config.ignore_index)
        metrics = cm.to_dict(run.class_names)
        steps, images, train_s = recorder.training()
        return {
            "command": segtutor_command(data, ["--time-budget", str(budget)]),
            "miou": metrics["miou"],
            "miou_last_epoch": json_ready(history.val_miou[-1]),
            "per_class_iou": {c["class"]: c["iou"] for c in metrics["per_class"]},
            "pixel_accuracy": metrics["pixel_accuracy"],
            "epochs": len(history), "best_epoch": history.best_epoch,
            "steps": steps, "train_images": images, "train_s": train_s,
            "fit_s": recorder.fit_end - recorder.fit_start,
            "images_per_s": images / train_s if train_s > 0 else math.nan,
            "params": count_parameters(run.model),
            "input_size": run.config.input_size, "input_mode": run.config.input_mode,
            "batch_size": run.train_loader.batch_size,
        }

    train_set, val_set, num_classes = tutorial_datasets(data)
    seed_everything(0)
    model = build_model(pipeline, num_classes)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # as the tutorial does
    model.to(device)
    stats = train_tutorial(model, tutorial_train_loader(train_set), budget_s=budget)
    eval_start = time.monotonic()
    batch = 1 if len(mask_sizes(val_set)) > 1 else TUTORIAL_BATCH
    cm = evaluate_tutorial(model, val_set, num_classes, batch_size=batch)
    names = read_metadata(data).class_names or [f"class_{k}" for k in range(num_classes)]
    miou = cm.miou()
    return {
        "miou": None if math.isnan(miou) else miou,
        "miou_last_epoch": None if math.isnan(miou) else miou,
        "per_class_iou": {n: (None if math.isnan(v) else v)
                          for n, v in zip(names, cm.iou().tolist(), strict=True)},
        "pixel_accuracy": cm.pixel_accuracy(),
        "epochs": stats["epochs"], "steps": stats["steps"], "train_images": stats["images"],
        "train_s": stats["train_s"], "fit_s": stats["train_s"],
        "eval_s": time.monotonic() - eval_start,
        "images_per_s": stats["images"] / stats["train_s"],
        "params": count_parameters(model), "input_size": TUTORIAL_SIZE, "input_mode": "resize",
        "batch_size": TUTORIAL_BATCH, "final_loss": stats["final_loss"],
    }


def matmul_flops_per_s(n: int, repeats: int = 3) -> float:
    """FLOP/s of an `n x n` float32 matrix product (the best of `repeats`, after a warm-up)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


THROUGHPUT = {
    # name: (loop, model); the data is the bundled scenes (128x128 images), batches of 8
    "tutorial loop, tutorial U-Net": ("tutorial", "tutorial-unet"),
    "segtutor loop, tutorial U-Net": ("segtutor", "tutorial-unet"),
    "segtutor loop, 'full' preset": ("segtutor", "full"),
    "segtutor defaults": ("segtutor", "default"),
}


def child_throughput(spec: dict[str, Any]) -> dict[str, Any]:
    """Training images/s of one loop and model, and its share of the matmul FLOP/s."""
    from segtutor.model import UNet as SegtutorUNet
    from segtutor.model import count_flops, count_parameters
    from segtutor.runtime import seed_everything

    loop, model_name = THROUGHPUT[spec["name"]]
    warmup, timed = int(spec["warmup"]), int(spec["timed"])
    matmul = matmul_flops_per_s(int(spec["matmul_n"]))
    data = BUNDLED["scenes"]
    if loop == "tutorial":
        train_set, _, num_classes = tutorial_datasets(data)
        seed_everything(0)
        model = build_model("tutorial", num_classes)
        stats = train_tutorial(model, tutorial_train_loader(train_set),
                               max_steps=warmup + timed + 1)
        step_ends, batch, size = stats["step_ends"], TUTORIAL_BATCH, TUTORIAL_SIZE
        command = "TutorialDataset + UNet(3, K) + Adam(1e-4), batch 8, 128x128, 4 workers"
    else:
        extra: list[str] = ["--epochs", "1000"]  # stopped after the timed steps
        choices: dict[str, Any] = {"num_epochs": 1000}
        if model_name != "default":
            extra += ["--size", str(TUTORIAL_SIZE), "--batch-size", str(TUTORIAL_BATCH)]
            choices.update(input_size=TUTORIAL_SIZE, batch_size=TUTORIAL_BATCH)
        if model_name == "full":
            extra += ["--preset", "full"]
            choices.update(preset="full")
        recorder = FitRecorder(stop_after=warmup + timed + 1)
        with tempfile.TemporaryDirectory() as out:
            run = prepare(data, progress=False, run_dir=out, **choices)
            model = run.model
            command = segtutor_command(data, extra)
            if model_name == "tutorial-unet":  # the tutorial's network in segtutor's loop
                seed_everything(0)
                model = SegtutorUNet(3, run.num_classes, base_width=64, depth=4, bilinear=True)
                command += "  (model: segtutor UNet(base_width=64, depth=4, bilinear=True))"
            with contextlib.suppress(FitRecorder.Done):
                recorder.fit(run, model)
        step_ends = recorder.step_ends
        batch, size = run.train_loader.batch_size, run.config.input_size
    rate = step_rate(step_ends, batch, warmup)
    flops = count_flops(model, (1, 3, size, size))
    train_flops = 3 * flops * rate["images_per_s"]  # backward costs about twice the forward
    return {
        "name": spec["name"], "loop": loop, "model": model_name, "command": command,
        "params": count_parameters(model), "input_size": size, "batch_size": batch,
        "forward_flops_per_image": flops, **rate, "train_flops_per_s": train_flops,
        "matmul_n": int(spec["matmul_n"]), "matmul_flops_per_s": matmul,
        "efficiency": train_flops / matmul,
    }


def child_main(spec: dict[str, Any], result: Path) -> None:
    start = time.monotonic()
    out = child_throughput(spec) if spec["kind"] == "throughput" else child_run(spec)
    out["wall_in_child_s"] = time.monotonic() - start
    result.write_text(json.dumps(out))


# ==============================================================================================
# The parent: start the children, collect, render


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run `spec` in a fresh process; its result plus wall time and peak RSS (MiB).

    The peak is `ru_maxrss` from `os.wait4`: the largest resident set of the child or of any
    process it waited for (DataLoader workers), not their sum.
    """
    with tempfile.TemporaryDirectory() as tmp:
        result, log = Path(tmp) / "result.json", Path(tmp) / "log.txt"
        command = [sys.executable, str(THIS), "--child", json.dumps(spec), "--result", str(result)]
        env = {**os.environ, "SEGTUTOR_QUICK": ""}  # the real defaults, never quick mode
        start = time.monotonic()
        with open(log, "w") as log_file:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file,
                                       stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - start
        if process.returncode != 0 or not result.is_file():
            tail = "".join(log.read_text().splitlines(keepends=True)[-30:])
            raise RuntimeError(f"run {spec} failed (exit {process.returncode}):\n{tail}")
        out = json.loads(result.read_text())
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    peak = usage.ru_maxrss * scale / 2**20
    return {**spec, **out, "wall_s": wall, "peak_rss_mib": peak}


def machine_facts() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    try:
        from importlib.metadata import version

        smp_version = version("segmentation_models_pytorch")
    except Exception:  # not installed
        smp_version = None
    import torchvision

    return {
        "cpu": cpu, "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "segmentation_models_pytorch": smp_version, "python": platform.python_version(),
        "platform": platform.platform(), "segtutor_commit": commit,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="scenes,cells,nuclei",
                        help="comma-separated: scenes, cells (bundled), nuclei (see --nuclei)")
    parser.add_argument("--budgets", default=None, help="seconds, comma-separated (60,300)")
    parser.add_argument("--pipelines", default=",".join(PIPELINES),
                        help="comma-separated: segtutor, tutorial, smp")
    parser.add_argument("--nuclei", default=DEFAULT_NUCLEI,
                        help="the nuclei folder (train/ + val/); skipped, with a note, if absent")
    parser.add_argument("--no-throughput", action="store_true",
                        help="skip the throughput and hardware-efficiency measurements")
    parser.add_argument("--quick", action="store_true",
                        help="tiny budgets and few steps, written to a temporary folder (a "
                             "smoke test; never to docs/)")
    parser.add_argument("--render-only", action="store_true",
                        help="re-draw the doc and the plot from the JSON, no training")
    parser.add_argument("--json", type=Path, default=None, help=f"default {RESULTS_JSON}")
    parser.add_argument("--doc", type=Path, default=None, help=f"default {DOC}")
    parser.add_argument("--plot", type=Path, default=None, help=f"default {PLOT}")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child is not None:
        child_main(json.loads(args.child), args.result)
        return

    if args.quick:
        quick_dir = Path(tempfile.gettempdir()) / "segtutor-compare-quick"
        json_path = args.json or quick_dir / "compare.json"
        doc_path = args.doc or quick_dir / "benchmarks.md"
        plot_path = args.plot or quick_dir / "images" / "benchmarks.png"
    else:
        json_path, doc_path, plot_path = args.json or RESULTS_JSON, args.doc or DOC, args.plot or PLOT

    if not args.render_only:
        measure(args, json_path)
        print(f"wrote {_rel(json_path)}")
    if not json_path.is_file():
        raise SystemExit(f"{_rel(json_path)} is not there: run the benchmark first (without "
                         "--render-only)")
    results = json.loads(json_path.read_text())
    render(results, doc_path, plot_path)
    print(f"wrote {_rel(doc_path)} and {_rel(plot_path)}")


def measure(args: argparse.Namespace, json_path: Path) -> dict[str, Any]:
    """Run every measurement; `json_path` is rewritten after each one, so that an interrupted
    benchmark keeps what it measured (re-render it with --render-only)."""
    budgets = [float(b) for b in (args.budgets or ("4,8" if args.quick else "60,300")).split(",")]
    pipelines = [p.strip() for p in args.pipelines.split(",") if p.strip()]
    unknown = set(pipelines) - set(PIPELINES)
    if unknown:
        raise SystemExit(f"unknown pipelines {sorted(unknown)}; choose from {PIPELINES}")
    datasets: dict[str, str] = {}
    skipped = []
    for name in (d.strip() for d in args.datasets.split(",") if d.strip()):
        if name in BUNDLED:
            datasets[name] = BUNDLED[name]
        elif name == "nuclei":
            # the default is relative to the repository root, a path given to the current folder
            path = ROOT / DEFAULT_NUCLEI if args.nuclei == DEFAULT_NUCLEI else Path(args.nuclei)
            if path.resolve().is_dir():
                datasets[name] = os.path.relpath(path.resolve(), ROOT)  # children run in ROOT
            else:
                note = f"nuclei skipped: {args.nuclei} is not there (pass --nuclei PATH)"
                print(note)
                skipped.append(note)
        else:
            raise SystemExit(f"unknown dataset {name!r}; choose scenes, cells or nuclei")

    results: dict[str, Any] = {
        "machine": machine_facts(),
        "settings": {"budgets_s": budgets, "pipelines": pipelines, "datasets": datasets,
                     "quick": args.quick},
        "skipped": skipped, "runs": [], "throughput": [],
    }
    # Throughput first: a few minutes, and the numbers the speed targets are about.
    if not args.no_throughput:
        warmup, timed, matmul_n = (1, 2, 1024) if args.quick else (2, 6, 4096)
        for name in THROUGHPUT:
            spec = {"kind": "throughput", "name": name, "warmup": warmup, "timed": timed,
                    "matmul_n": matmul_n}
            row = run_child(spec)
            results["throughput"].append(row)
            _save(results, json_path)
            print(f"{name:32s} {row['images_per_s']:6.2f} img/s  "
                  f"{row['train_flops_per_s'] / 1e9:6.1f} GFLOP/s = "
                  f"{100 * row['efficiency']:4.1f}% of matmul "
                  f"({row['matmul_flops_per_s'] / 1e9:.0f} GFLOP/s)", flush=True)
    total = len(datasets) * len(budgets) * len(pipelines)
    print(f"{total} runs, {sum(budgets) * len(datasets) * len(pipelines) / 60:.0f} min of "
          "budgets plus start-up and evaluation")
    for dataset, data in datasets.items():
        for budget in budgets:
            for pipeline in pipelines:
                spec = {"kind": "run", "pipeline": pipeline, "dataset": dataset, "data": data,
                        "budget_s": budget}
                run = run_child(spec)
                results["runs"].append(run)
                _save(results, json_path)
                print(f"{dataset:7s} {budget:5.0f} s  {pipeline:8s}  mIoU {_f(run['miou'])}  "
                      f"{run['images_per_s']:6.1f} img/s  {run['epochs']:3d} epochs  "
                      f"peak {run['peak_rss_mib']:5.0f} MiB  ({run['wall_s']:.0f} s wall)",
                      flush=True)
    return results


def _save(results: dict[str, Any], json_path: Path) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(json_ready(results), indent=1) + "\n")


def _rel(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(ROOT))
    return str(path)


def _f(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


# ----------------------------------------------------------------------------------------------
# Rendering


PIPELINE_LABELS = {
    "segtutor": "segtutor (defaults)",
    "tutorial": "tutorial (as written, mask fix)",
    "smp": "smp Unet-resnet18",
}


def render(results: dict[str, Any], doc_path: Path, plot_path: Path) -> None:
    """Write the results section of `doc_path` (between BEGIN and END) and the plot."""
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    draw(results, plot_path)
    section = results_markdown(results, os.path.relpath(plot_path, doc_path.parent))
    if doc_path.is_file():
        text = doc_path.read_text()
        if BEGIN not in text or END not in text:
            raise SystemExit(f"{doc_path} has no results markers; put these two lines where the "
                             f"numbers go:\n{BEGIN}\n{END}")
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
    else:
        doc_path.parent.mkdir(parents=True, exist_ok=True)
        head, tail = "# Benchmarks (quick run)\n\n", "\n"
    doc_path.write_text(f"{head}{BEGIN}\n{section}\n{END}{tail}")


def results_markdown(results: dict[str, Any], plot_link: str) -> str:
    m = results["machine"]
    lines = []
    if results["settings"].get("quick"):
        lines += ["**Quick run (smoke test): budgets of seconds, the numbers mean nothing.**", ""]
    lines += [
        f"Measured {m['date']} on {m['cpu']} ({m['logical_cpus']} logical CPUs, "
        f"{m['torch_threads']} torch threads, CPU capability {m['cpu_capability']}), "
        f"torch {m['torch']}, torchvision {m['torchvision']}, "
        f"segmentation_models_pytorch {m['segmentation_models_pytorch']}, "
        f"Python {m['python']}, segtutor at `{m['segtutor_commit']}`; "
        f"load average at the start {m['load_average_at_start']}.",
        "",
        f"![validation mIoU against the time budget, per pipeline and dataset; training "
        f"throughput]({plot_link})",
        "",
    ]
    for note in results.get("skipped", []) + results.get("notes", []):
        lines += [f"*{note}.*", ""]
    if results["runs"]:
        lines += [
            "| dataset | budget | pipeline | val mIoU | mIoU, last epoch | train images/s | "
            "train images | epochs | training share of budget | peak RSS |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["runs"]:
            share = 100 * r["train_s"] / r["budget_s"] if r.get("train_s") else None
            lines.append(
                f"| {r['dataset']} | {r['budget_s']:.0f} s | {PIPELINE_LABELS[r['pipeline']]} "
                f"| {_f(r['miou'])} | {_f(r['miou_last_epoch'])} | {_f(r['images_per_s'], 1)} "
                f"| {r['train_images']} | {r['epochs']} | {_f(share, 0)}% "
                f"| {r['peak_rss_mib']:.0f} MiB |"
            )
        lines.append("")
        per_class = [r for r in results["runs"] if r.get("per_class_iou")]
        if per_class:
            lines += ["<details><summary>IoU per class</summary>", "",
                      "| dataset | budget | pipeline | IoU per class |", "|---|---:|---|---|"]
            for r in per_class:
                ious = ", ".join(f"{k} {_f(v)}" for k, v in r["per_class_iou"].items())
                lines.append(f"| {r['dataset']} | {r['budget_s']:.0f} s | {r['pipeline']} "
                             f"| {ious} |")
            lines += ["", "</details>", ""]
    rows = results.get("throughput", [])
    if rows:
        lines += [
            "Training throughput on the bundled scenes (one process each, "
            f"{rows[0]['timed_steps']} timed steps after warm-up):",
            "",
            "| loop, model | parameters | input | batch | images/s | GFLOPs per image (forward) "
            "| training GFLOP/s | share of matmul FLOP/s | peak RSS |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            lines.append(
                f"| {r['name']} | {r['params'] / 1e6:.2f} M | {r['input_size']}px "
                f"| {r['batch_size']} | {_f(r['images_per_s'], 2)} "
                f"| {r['forward_flops_per_image'] / 1e9:.2f} "
                f"| {_f(r['train_flops_per_s'] / 1e9, 1)} | {_f(100 * r['efficiency'], 1)}% "
                f"| {r['peak_rss_mib']:.0f} MiB |"
            )
        by_name = {r["name"]: r for r in rows}
        a = by_name.get("tutorial loop, tutorial U-Net")
        b = by_name.get("segtutor loop, tutorial U-Net")
        matmul = rows[0]["matmul_flops_per_s"]
        lines += ["", f"Matmul reference: {rows[0]['matmul_n']}x{rows[0]['matmul_n']} float32, "
                  f"{matmul / 1e9:.0f} GFLOP/s (best of 3, measured in each process; the "
                  "first is shown)."]
        if a and b:
            lines += ["", f"segtutor's loop runs the tutorial's U-Net "
                      f"**{b['images_per_s'] / a['images_per_s']:.2f}x** as fast as the "
                      "tutorial's loop does."]
    lines += ["", *targets_markdown(results)]
    return "\n".join(lines)


def targets_markdown(results: dict[str, Any]) -> list[str]:
    """The issue's three targets, each checked against the numbers above: met or missed."""
    lines = ["**Targets**, checked by the script against the numbers above:", ""]
    groups: dict[tuple[str, float], dict[str, float | None]] = {}
    for r in results["runs"]:
        groups.setdefault((r["dataset"], r["budget_s"]), {})[r["pipeline"]] = r["miou"]
    compared = {k: v for k, v in groups.items() if "segtutor" in v and len(v) > 1}
    if compared:
        misses = []
        for (dataset, budget), by in compared.items():
            ours = by["segtutor"]
            others = {k: v for k, v in by.items() if k != "segtutor" and v is not None}
            best = max(others, key=others.get) if others else None
            if ours is None or (best is not None and ours <= others[best]):
                misses.append(f"{dataset} {budget:.0f} s: {_f(ours)} against {best} "
                              f"{_f(others[best])}")
        verdict = "**met**" if not misses else "**missed** at " + "; ".join(misses)
        lines.append(f"- segtutor has the highest val mIoU at every dataset and budget "
                     f"({len(compared)} compared): {verdict}.")
    by_name = {r["name"]: r for r in results.get("throughput", [])}
    a = by_name.get("tutorial loop, tutorial U-Net")
    b = by_name.get("segtutor loop, tutorial U-Net")
    if a and b:
        ratio = b["images_per_s"] / a["images_per_s"]
        verdict = "**met**" if ratio >= 2 else f"**missed** (by {2 - ratio:.2f}x)"
        lines.append(f"- At least 2x the tutorial pipeline's images/s on its own configuration: "
                     f"{ratio:.2f}x, {verdict}.")
    default = by_name.get("segtutor defaults")
    if default:
        eff = default["efficiency"]
        verdict = "**met**" if eff >= 1 else f"**missed** (by {1 - eff:.2f})"
        lines.append(f"- Hardware efficiency of at least 1.0 at the course default: {eff:.2f}, "
                     f"{verdict}.")
    return lines


def draw(results: dict[str, Any], path: Path) -> None:
    from matplotlib import pyplot as plt  # savefig + close: no screen needed, no backend set
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    runs = results["runs"]
    datasets = list(dict.fromkeys(r["dataset"] for r in runs))
    panels = len(datasets) + (1 if results.get("throughput") else 0)
    fig, axes = plt.subplots(1, max(panels, 1), figsize=(3.3 * max(panels, 1), 3.2),
                             squeeze=False)
    colors = {"segtutor": "#0072B2", "tutorial": "#D55E00", "smp": "#009E73"}  # Okabe-Ito
    for ax, dataset in zip(axes[0], datasets, strict=False):
        for pipeline in PIPELINES:
            points = sorted((r["budget_s"], r["miou"]) for r in runs
                            if r["dataset"] == dataset and r["pipeline"] == pipeline
                            and r["miou"] is not None)
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, "o-", color=colors[pipeline], label=PIPELINE_LABELS[pipeline])
        ax.set(title=dataset, xlabel="time budget (s)", ylim=(0, 1))
        budgets = sorted({r["budget_s"] for r in runs})
        ax.set_xticks(budgets)
        ax.grid(alpha=0.3)
    if datasets:
        axes[0][0].set_ylabel("validation mIoU")
        axes[0][0].legend(fontsize=7, loc="best")
    rows = results.get("throughput", [])
    if rows:
        ax = axes[0][-1]
        names = [r["name"].replace(", ", ",\n") for r in rows]
        values = [r["images_per_s"] or 0 for r in rows]
        bars = ax.barh(names, values, color=["#D55E00" if r["loop"] == "tutorial" else "#0072B2"
                                             for r in rows])
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=7, padding=2)
        ax.set(title="training throughput (scenes)", xlabel="images / s")
        ax.set_xscale("log")  # the course model is tens of times faster than the full ones
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlim(min(v for v in values if v > 0) / 2, max(values) * 3)
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
