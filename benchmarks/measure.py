"""How benchmarks/compare.py measures: the shared scoring, the training clock, FLOP/s.

Every pipeline is scored the same way: one confusion matrix over the whole validation set, at
the masks' own resolution (`evaluate_tutorial`, which scores the tutorial and the library
peers, equals `segtutor.train.evaluate`, which scores segtutor's). Training speed is read from
when each step ends: `FitRecorder` watches segtutor's `fit` through its callbacks,
`train_tutorial` and `peers.train_peer` keep their own clocks.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tutorial import IGNORE_INDEX, TutorialDataset

from segtutor.inference import class_map
from segtutor.metrics import ConfusionMatrix
from segtutor.recipe import Run
from segtutor.train import Callback, fit

__all__ = [
    "FitRecorder",
    "evaluate_tutorial",
    "machine_facts",
    "mask_sizes",
    "matmul_flops_per_s",
    "step_rate",
]


@torch.inference_mode()
def evaluate_tutorial(
    model: nn.Module, val_set: Dataset, num_classes: int, batch_size: int = 1
) -> ConfusionMatrix:
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
            logits = F.interpolate(
                logits, size=tuple(masks.shape[-2:]), mode="bilinear", align_corners=False
            )  # (N, C, H, W), the masks' size
        cm.update(class_map(logits).cpu(), masks)  # argmax over classes, computed faster
    model.train(was_training)
    return cm


def mask_sizes(dataset: TutorialDataset) -> set[tuple[int, int]]:
    """The `(width, height)` of every mask file: one size allows batches, several need 1."""
    sizes = set()
    for path in dataset.mask_paths:
        with Image.open(path) as img:
            sizes.add(img.size)
    return sizes


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
            return fit(
                model or run.model, run.train_loader, run.val_loader, run.config, callbacks=[self]
            )
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
    gaps = [
        b[1] - a[1]
        for a, b in zip(step_ends[warmup:], step_ends[warmup + 1 :], strict=False)
        if a[0] == b[0]
    ]
    if not gaps:
        return {"timed_steps": 0, "step_s": math.nan, "images_per_s": math.nan}
    step_s = sum(gaps) / len(gaps)
    return {"timed_steps": len(gaps), "step_s": step_s, "images_per_s": batch / step_s}


def matmul_flops_per_s(n: int, repeats: int = 3, device: torch.device | str = "cpu") -> float:
    """FLOP/s of an `n x n` float32 matrix product on `device` (the best of `repeats`, after a
    warm-up): the reference a training step's FLOP/s is compared with, on the same device."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    torch.mm(a, b)
    sync()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def machine_facts(root: Path) -> dict[str, Any]:
    """The CPU (and GPU), library versions, commit of `root`, load and date the numbers were
    measured with: what a reader needs to compare them with their own."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    try:
        from importlib.metadata import version

        smp_version = version("segmentation_models_pytorch")
    except Exception:  # not installed
        smp_version = None
    import torchvision

    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "segmentation_models_pytorch": smp_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "segtutor_commit": commit,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
