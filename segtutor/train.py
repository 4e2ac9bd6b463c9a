"""The training loop: `TrainConfig`, `fit`, `evaluate`, checkpoints and reproducibility helpers.

Introduced in the training notebook. Read top to bottom, `fit` is one epoch loop:

    for each epoch:
        for each batch: set the scheduled lr -> forward -> loss -> backward -> optimizer step
        validate on the whole val set (one confusion matrix) -> record history
        keep the best weights (in memory and, atomically, on disk) -> maybe stop

What it takes care of so that notebooks do not have to: seeding, choosing the device, mixed
precision on CUDA, a wall-clock budget, early stopping, a clear error when the loss becomes NaN,
and callbacks (a notebook draws a live plot; the loop knows nothing about plotting).

Under `torchrun` (several processes, see `segtutor.distributed`) the same `fit` trains with
DistributedDataParallel: each process trains on its share of every epoch and validates its
share of the val set, the metrics are summed over the processes (so every process keeps the
same history and takes the same decisions), and rank 0 alone prints and writes the checkpoint.

A checkpoint is a plain dict (weights, optimizer state, config, class names, palette, history),
written with `save_checkpoint` and read with `load_checkpoint`, which uses
`torch.load(weights_only=True)`: loading a checkpoint never runs code from the file.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from segtutor.distributed import (
    barrier,
    broadcast_buffers,
    is_distributed,
    is_main_process,
    max_over_processes,
    shard_loader,
    sum_over_processes,
)
from segtutor.data import make_loader  # noqa: F401  (re-exported until the split)
from segtutor.errors import CheckpointError
from segtutor.losses import DeepSupervisionLoss, build_loss

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "Callback",
    "History",
    "TrainConfig",
    "autocast_dtype",
    "choose_device",
    "evaluate",
    "fit",
    "load_checkpoint",
    "make_loader",
    "model_from_checkpoint",
    "predict",
    "predict_logits",
    "save_checkpoint",
    "scheduled_lr",
    "seed_everything",
]

CHECKPOINT_FORMAT = "segtutor-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class TrainConfig:
    """Everything `fit` needs besides the model and the data. Override with `dataclasses.replace`.

    Example:
        >>> config = replace(TrainConfig(), num_epochs=5, lr=1e-3)
    """

    # Passes over the training set. With `time_budget_s` set, whichever ends first wins.
    num_epochs: int = 20
    # Peak learning rate. 5e-3 suits the course's small U-Net with AdamW and batches of 8 (1e-2
    # learned as fast but swung between epochs); lower it if the loss goes NaN.
    lr: float = 5e-3
    # L2 penalty (decoupled for AdamW). Small: the course's datasets are small and easy.
    weight_decay: float = 1e-4
    # "adamw" (decoupled weight decay, the usual default) or "adam" (the source tutorial's).
    optimizer: Literal["adamw", "adam"] = "adamw"
    # Learning-rate schedule, updated every batch: "onecycle" (warm up over the first 30%, then
    # cosine down to ~0), "cosine" (cosine from lr down to 0) or "none" (constant lr).
    scheduler: Literal["onecycle", "cosine", "none"] = "onecycle"
    # "ce" (cross-entropy), "dice" (soft Dice) or "ce+dice"; built by segtutor.losses.build_loss.
    # CE+Dice by default: Dice counts a rare class as much as a common one, so rare classes are
    # learned without hand-made class weights (03_losses.ipynb).
    loss: Literal["ce", "dice", "ce+dice"] = "ce+dice"
    # One weight per class for cross-entropy (see segtutor.losses.class_weights), or None.
    class_weights: list[float] | None = None
    # Mask value skipped by the loss and the metrics (object borders, unlabelled pixels).
    ignore_index: int = 255
    # Number of classes; None takes `model.num_classes`.
    num_classes: int | None = None
    # Stop after this many epochs without a better val mIoU; None never stops early.
    early_stopping_patience: int | None = None
    # Wall-clock seconds for the whole fit (validation included); checked after every batch.
    # The lr schedule is stretched to end with the budget. None: no budget.
    time_budget_s: float | None = None
    # Where the best checkpoint is written (atomically, whenever val mIoU improves); None: nowhere.
    checkpoint_path: str | None = None
    # Where the latest epoch is written (atomically, after every epoch), with the best weights so
    # far inside it: resuming from it loses at most one epoch after a crash or Ctrl-C, where
    # resuming from `checkpoint_path` redoes every epoch since the best one. None: nowhere.
    last_checkpoint_path: str | None = None
    # Seeds python, numpy and torch at the start of fit (dropout, augmentations): same seed, same
    # numbers on a CPU. The initial weights and the shuffling order are seeded where they are
    # made: seed_everything(seed) before building the model, make_loader(..., seed=seed).
    seed: int = 0
    # "auto" picks cuda, then mps, then cpu (see choose_device); or name one, e.g. "cpu".
    device: str = "auto"
    # Mixed precision: float16 autocast + gradient scaling on CUDA; bfloat16 autocast on a CPU
    # only where it computes bf16 natively (AVX512-BF16 or AMX, see `autocast_dtype`). Elsewhere
    # (most laptops) bf16 is emulated, far slower than float32, so it stays off there.
    amp: bool = True
    # Channels-last memory layout: faster convolutions on most CPUs and GPUs, same numbers.
    channels_last: bool = True
    # Clip the gradient norm to this value (a guard against exploding losses); None: no clipping.
    grad_clip: float | None = None
    # Train through `torch.compile(model)` (needs a C++ compiler on a CPU). Off by default: on a
    # 2-core CPU the course U-Net compiled in 53 s and then ran 4% faster (47.4 vs 45.6 images/s),
    # so it pays only for long runs or big models; validation always runs the plain model.
    compile: bool = False
    # Progress bar per epoch plus one summary line per epoch; False prints nothing.
    progress: bool = True
    # How the images were fed (not used by fit; saved in the checkpoint so that `evaluate` and
    # `predict` feed new images the same way): the input size in pixels, and "resize" (whole
    # images resized to it) or "crop" (crops at native resolution, whole images at prediction).
    input_size: int | None = None
    input_mode: Literal["resize", "crop"] | None = None
    # Under torchrun: fit turns the model's BatchNorm layers into SyncBatchNorm (same state_dict
    # keys), whose batch statistics are taken over the images of all processes (helps when each
    # process has only a few images per batch). GPUs only; ignored in a single process.
    sync_batchnorm: bool = False


@dataclass
class History:
    """What happened, one list entry per epoch (all lists have the same length).

    `val_iou[e][c]` is the IoU of class c after epoch `epoch[e]`, NaN when class c appears neither
    in the masks nor in the predictions of the validation set.
    """

    epoch: list[int] = field(default_factory=list)  # 1-based epoch numbers
    train_loss: list[float] = field(default_factory=list)  # mean over the epoch's training pixels
    val_loss: list[float] = field(default_factory=list)
    val_iou: list[list[float]] = field(default_factory=list)  # per class
    val_miou: list[float] = field(default_factory=list)
    val_pixel_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)  # lr of the epoch's last batch
    epoch_time_s: list[float] = field(default_factory=list)  # training + validation
    stop_reason: str = ""  # "num_epochs", "early_stopping", "time_budget" or "callback"

    def __len__(self) -> int:
        return len(self.epoch)

    @property
    def best_epoch(self) -> int | None:
        """Epoch number with the highest val mIoU (the earliest on ties); None before any epoch."""
        if not self.epoch:
            return None
        scores = [-math.inf if math.isnan(m) else m for m in self.val_miou]
        return self.epoch[scores.index(max(scores))]

    @property
    def best_miou(self) -> float:
        """Highest val mIoU so far (NaN before any epoch)."""
        if not self.epoch:
            return math.nan
        return self.val_miou[self.epoch.index(self.best_epoch)]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON and checkpoints; NaN becomes None (JSON has no NaN)."""
        out: dict[str, Any] = {}
        for name, value in asdict(self).items():
            out[name] = _nan_to_none(value)
        out["best_epoch"] = self.best_epoch
        out["best_miou"] = _nan_to_none(self.best_miou)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """Inverse of `to_dict` (None becomes NaN again)."""
        names = [f for f in cls.__dataclass_fields__ if f != "stop_reason"]
        lists = {name: _none_to_nan(list(data.get(name, []))) for name in names}
        lists["epoch"] = [int(e) for e in lists["epoch"]]
        return cls(**lists, stop_reason=str(data.get("stop_reason", "")))


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _none_to_nan(value: Any) -> Any:
    if isinstance(value, list):
        return [_none_to_nan(v) for v in value]
    return math.nan if value is None else value


class Callback:
    """Hooks `fit` calls; subclass and override what you need. Return True to stop training.

    A plain function `f(epoch, history)` also works as a callback: it is used as `on_epoch_end`.

    Example (a live plot in a notebook, the loop knows nothing about plotting):
        >>> class LivePlot(Callback):
        ...     def on_epoch_end(self, epoch, history):
        ...         display(plot_history(history), clear=True)
    """

    def on_batch_end(self, epoch: int, step: int, loss: float) -> bool | None:
        """After every optimizer step; `step` counts batches since the start of training."""
        return None

    def on_epoch_end(self, epoch: int, history: History) -> bool | None:
        """After validation; `history` already holds this epoch."""
        return None

    def on_train_end(self, history: History) -> None:
        """Once, after the best weights are back in the model."""
        return None


# --- reproducibility and devices -----------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed python's `random`, numpy and torch (all devices), so a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision type `fit` uses on `device` with `TrainConfig.amp`, or None for none.

    float16 on CUDA; bfloat16 on a CPU that computes it natively (AVX512-BF16 or AMX, e.g. Intel
    Xeon since Cooper Lake, AMD Zen 4); None on other CPUs, where bf16 is emulated and slower
    than float32, and on MPS.
    """
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and _cpu_has_native_bf16():
        return torch.bfloat16
    return None


def _cpu_has_native_bf16() -> bool:
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private torch.cpu probes
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def choose_device(preferred: str = "auto") -> torch.device:
    """The device to train on: `preferred` if named, else CUDA, then Apple's MPS, then the CPU.

    Under torchrun, "auto" is this process's own GPU (`cuda:LOCAL_RANK`, made current by
    `segtutor.distributed.init_distributed`), or the CPU: gloo cannot exchange MPS tensors.
    """
    if preferred != "auto":
        return torch.device(preferred)
    if torch.cuda.is_available():
        if is_distributed():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cuda")
    if torch.backends.mps.is_available() and not is_distributed():
        return torch.device("mps")
    return torch.device("cpu")


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


# --- the learning-rate schedule -------------------------------------------------------------


def scheduled_lr(config: TrainConfig, progress: float) -> float:
    """Learning rate at `progress` in [0, 1] through training (0 = first batch, 1 = the end).

    "onecycle" follows the curve of `torch.optim.lr_scheduler.OneCycleLR` (cosine, 30% warm-up,
    from lr/25 up to lr, then down to lr/25e4). The schedule is a function of progress rather than
    of the step count so that a time budget can stretch it: `fit` uses the larger of "batches
    done / batches planned" and "seconds used / seconds budgeted".
    """
    p = min(max(progress, 0.0), 1.0)
    if config.scheduler == "none":
        return config.lr
    if config.scheduler == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * p))
    if config.scheduler == "onecycle":
        start, end, warmup = config.lr / 25, config.lr / 25e4, 0.3
        if p < warmup:
            return _cosine_between(start, config.lr, p / warmup)
        return _cosine_between(config.lr, end, (p - warmup) / (1 - warmup))
    raise ValueError(f"unknown scheduler {config.scheduler!r}; use 'onecycle', 'cosine' or 'none'")


def _cosine_between(a: float, b: float, t: float) -> float:
    return b + (a - b) * 0.5 * (1 + math.cos(math.pi * t))


def _build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; use 'adamw' or 'adam'")


# --- training -------------------------------------------------------------------------------


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader,
    config: TrainConfig | None = None,
    callbacks: Iterable[Callback | Callable[[int, History], bool | None]] = (),
    resume_from: str | os.PathLike | Mapping[str, Any] | None = None,
    *,
    loss_fn: nn.Module | None = None,
) -> History:
    """Train `model`, validate after every epoch, and leave the best weights in it.

    Args:
        model: maps images `(N, 3, H, W)` to logits `(N, C, H, W)`.
        train_loader: yields `(images, masks)`; masks `(N, H, W)` int64, 255 = ignore.
        val_loader: the same for validation; use batch size 1 if image sizes vary.
        config: hyper-parameters (`TrainConfig()` if None).
        callbacks: `Callback` objects or functions `f(epoch, history)`; returning True stops.
        resume_from: a checkpoint path or dict written by `fit`: continues from its epoch with its
            weights, optimizer, schedule position, history and random state. `config.num_epochs`
            counts from the start of the run, not from the checkpoint. A last-epoch checkpoint
            (`config.last_checkpoint_path`) loses at most one epoch; a best one redoes the
            epochs after the best.
        loss_fn: a loss module `(logits, masks) -> scalar`; default
            `segtutor.losses.build_loss(config.loss, ...)`.

    Returns:
        The `History`. The model ends on the epoch with the best val mIoU, and
        `config.checkpoint_path` (if set) holds the same weights.

    Raises:
        FloatingPointError: the loss became NaN or infinite (names the epoch and batch).

    Under torchrun (`segtutor.distributed`), every process calls `fit` with the same arguments:
    the model is wrapped in `DistributedDataParallel` (gradients averaged over the processes),
    `train_loader` should come from `make_loader(..., shuffle=True)` (each process its share),
    each process validates its share of `val_loader` and the confusion matrices are summed, so
    the history is the same in every process; rank 0 alone prints and writes the checkpoint
    (the plain model's weights), and all processes stop at the same batch. Callbacks run in
    every process; one asking to stop stops them all.
    """
    config = config or TrainConfig()
    callbacks = list(callbacks)
    device = choose_device(config.device)
    num_classes = config.num_classes or getattr(model, "num_classes", None)
    if num_classes is None:
        raise ValueError("set TrainConfig.num_classes: the model has no num_classes attribute")
    amp_dtype = autocast_dtype(device) if config.amp else None
    use_amp = amp_dtype is not None
    if len(train_loader) == 0:
        raise ValueError("train_loader is empty: no batches to train on")

    distributed = is_distributed()
    if distributed and config.sync_batchnorm and device.type != "cuda":
        raise ValueError(
            f"sync_batchnorm=True needs GPUs (PyTorch's SyncBatchNorm does not run on {device}); "
            "on CPUs leave it off: the processes then share rank 0's BatchNorm statistics"
        )

    # The same seed in every process: the same initial weights (DDP would copy rank 0's anyway)
    # and the same random augmentation parameters, drawn for different images.
    seed_everything(config.seed)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    if distributed and config.sync_batchnorm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # same parameters, same state_dict
    if loss_fn is None:
        loss_fn = build_loss(
            config.loss, num_classes, class_weights=config.class_weights,
            ignore_index=config.ignore_index,
        )
    if getattr(model, "deep_supervision", False) and not isinstance(loss_fn, DeepSupervisionLoss):
        loss_fn = DeepSupervisionLoss(loss_fn)  # the model returns (logits, aux) when training
    loss_fn = loss_fn.to(device)
    optimizer = _build_optimizer(model, config)
    # float16 needs its loss scaled (small gradients would round to 0); bfloat16 does not
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    history, step, elapsed_before = History(), 0, 0.0
    best_state = None
    if resume_from is not None:
        ckpt = resume_from if isinstance(resume_from, Mapping) else load_checkpoint(resume_from)
        history, step, elapsed_before = _restore(ckpt, model, optimizer, scaler, train_loader)
        best_state = ckpt.get("best_model_state")  # only in a last-epoch checkpoint
    best_miou = history.best_miou if len(history) else -math.inf
    best_state = best_state or _cpu_state(model)
    meta = _run_metadata(model, train_loader, config)

    # `net` is what trains: under torchrun the model wrapped in DDP, which averages the gradients
    # of all processes during backward. `model` stays the plain module: it validates (the shares
    # of the val set differ in length, and DDP's forward would wait for the others), and its
    # state_dict has no "module." prefix, so checkpoints load into a plain UNet.
    net: nn.Module = model
    progress = config.progress
    if distributed:
        device_ids = None  # on CPUs
        if device.type == "cuda":
            device_ids = [device.index if device.index is not None else torch.cuda.current_device()]
        net = DistributedDataParallel(model, device_ids=device_ids)
        progress = config.progress and is_main_process()
        if is_main_process() and not isinstance(train_loader.sampler, DistributedSampler):
            warnings.warn(
                "train_loader has no DistributedSampler: every process trains on the whole "
                "training set (world_size times the work per epoch); build it with "
                "segtutor.train.make_loader(dataset, batch_size, shuffle=True)",
                stacklevel=2,
            )
    val_loader = shard_loader(val_loader)  # this process's share; the whole loader in one process
    if config.compile:
        net = torch.compile(net)  # compiles on the first batch; shares the weights with `model`

    total_steps = config.num_epochs * len(train_loader)
    start = time.monotonic() - elapsed_before
    val_seconds = 0.0  # the slowest validation pass so far, reserved at the end of a budget

    def time_used() -> float:
        """Fraction of the time budget spent, leaving room for one more validation pass."""
        if config.time_budget_s is None:
            return 0.0
        return (time.monotonic() - start) / max(config.time_budget_s - val_seconds, 1e-9)

    def time_used_everywhere() -> float:
        """`time_used()` of the slowest process: all must use the same lr and stop together."""
        if config.time_budget_s is None:
            return 0.0
        return max_over_processes(time_used())[0]

    stop_reason, bad_epochs = "num_epochs", 0
    for epoch in range(len(history) + 1, config.num_epochs + 1):
        epoch_start = time.monotonic()
        if isinstance(train_loader.sampler, DistributedSampler):
            train_loader.sampler.set_epoch(epoch)  # a new shuffle, the same in every process
        net.train()
        loss_sum, num_images = 0.0, 0
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{config.num_epochs}", leave=False,
                   disable=not progress, mininterval=0.5)
        for batch, (images, masks) in enumerate(bar):
            lr = scheduled_lr(config, max(step / total_steps, time_used_everywhere()))
            for group in optimizer.param_groups:
                group["lr"] = lr
            images = images.to(device, non_blocking=True)  # (N, 3, H, W)
            masks = masks.to(device, non_blocking=True)  # (N, H, W)
            if config.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)

            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                # logits (N, C, H, W); (logits, aux) from a UNet with deep supervision
                outputs = net(images)
                loss = loss_fn(outputs, masks)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"the training loss became {loss.item()} at epoch {epoch}, batch "
                    f"{batch + 1}/{len(train_loader)} (step {step + 1}, lr {lr:.2e}). "
                    f"Lower the learning rate (e.g. replace(config, lr={config.lr / 10:.1e})), "
                    "set grad_clip=1.0, and check that the images hold no NaN values."
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip is not None:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            step += 1

            loss_value = loss.item()
            loss_sum += loss_value * images.shape[0]
            num_images += images.shape[0]
            bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)
            callback_stop = _call(callbacks, "on_batch_end", epoch, step, loss_value)
            out_of_time = time_used() >= 1
            # Under torchrun: stop if any process says so. One process stopping alone would
            # leave the others waiting forever for its gradients.
            callback_stop, out_of_time = max_over_processes(callback_stop, out_of_time)
            if callback_stop:
                stop_reason = "callback"
            elif out_of_time:
                stop_reason = "time_budget"
            if stop_reason != "num_epochs":
                break
        bar.close()
        loss_sum, num_images = sum_over_processes(loss_sum, num_images)  # over all processes

        broadcast_buffers(model)  # every process validates the model rank 0 saves
        val_start = time.monotonic()
        cm, val_loss = _validate(model, val_loader, num_classes, device, config.ignore_index,
                                 loss_fn=loss_fn, amp_dtype=amp_dtype)
        val_seconds = max(val_seconds, time.monotonic() - val_start)
        miou = float(cm.miou())
        history.epoch.append(epoch)
        history.train_loss.append(loss_sum / max(num_images, 1))
        history.val_loss.append(val_loss)
        history.val_iou.append([float(v) for v in cm.iou()])
        history.val_miou.append(miou)
        history.val_pixel_accuracy.append(float(cm.pixel_accuracy()))
        history.lr.append(lr)
        history.epoch_time_s.append(time.monotonic() - epoch_start)

        improved = not math.isnan(miou) and miou > best_miou
        if improved:
            best_miou, best_state, bad_epochs = miou, _cpu_state(model), 0
        else:
            bad_epochs += 1
        write_best = improved and config.checkpoint_path is not None
        if is_main_process() and (write_best or config.last_checkpoint_path is not None):
            resume_state = dict(  # what a resumed run needs besides the weights
                optimizer_state=optimizer.state_dict(),
                scheduler_state={"step": step, "elapsed_s": time.monotonic() - start},
                scaler_state=scaler.state_dict() if scaler.is_enabled() else None,
                rng_state=_rng_state(train_loader),
                history=history.to_dict(),
                epoch=epoch,
                **meta,
            )
            if write_best:  # rank 0 alone: one writer per file
                save_checkpoint(config.checkpoint_path, model_state=best_state, **resume_state)
            if config.last_checkpoint_path is not None:
                save_checkpoint(config.last_checkpoint_path, model_state=_cpu_state(model),
                                best_model_state=best_state, **resume_state)
        if progress:
            tqdm.write(
                f"epoch {epoch}/{config.num_epochs}  train loss {history.train_loss[-1]:.4f}  "
                f"val loss {val_loss:.4f}  val mIoU {miou:.4f}  lr {lr:.1e}  "
                f"{history.epoch_time_s[-1]:.1f}s{'  *best' if improved else ''}"
            )

        callback_stop = _call(callbacks, "on_epoch_end", epoch, history)
        if max_over_processes(callback_stop)[0]:
            stop_reason = "callback"
        elif (config.early_stopping_patience is not None
              and bad_epochs >= config.early_stopping_patience):
            stop_reason = "early_stopping"
        if stop_reason != "num_epochs":
            break

    history.stop_reason = stop_reason
    model.load_state_dict(best_state)
    barrier()  # when fit returns in any process, rank 0 has finished writing the checkpoint
    if progress and len(history):
        tqdm.write(f"best val mIoU {history.best_miou:.4f} at epoch {history.best_epoch} "
                   f"(stopped by {stop_reason.replace('_', ' ')})")
    _call(callbacks, "on_train_end", history)
    return history


def _call(callbacks: list, hook: str, *args: Any) -> bool:
    """Call `hook` on every callback; True if any asked to stop. Plain functions are on_epoch_end."""
    stop = False
    for callback in callbacks:
        method = getattr(callback, hook, None)
        if method is None and hook == "on_epoch_end" and callable(callback):
            method = callback
        if method is not None and method(*args):
            stop = True
    return stop


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the weights (contiguous, so it loads into any memory layout)."""
    return {
        name: value.detach().to("cpu", memory_format=torch.contiguous_format, copy=True)
        for name, value in model.state_dict().items()
    }


def _run_metadata(model: nn.Module, loader: DataLoader, config: TrainConfig) -> dict[str, Any]:
    """The checkpoint fields that describe the run: config, how to rebuild the model, classes."""
    keys = ("in_channels", "num_classes", "base_width", "depth", "bilinear", "deep_supervision")
    model_config = None
    if all(hasattr(model, key) for key in keys):
        model_config = {key: _plain(getattr(model, key)) for key in keys}
    dataset = loader.dataset
    while not hasattr(dataset, "class_names") and hasattr(dataset, "dataset"):
        dataset = dataset.dataset  # look through torch.utils.data.Subset
    palette = getattr(dataset, "palette", None)
    class_names = getattr(dataset, "class_names", None)
    return {
        "config": asdict(config),
        "model_config": model_config,
        "class_names": [str(n) for n in class_names] if class_names is not None else None,
        "palette": [[int(c) for c in color] for color in palette] if palette is not None else None,
    }


def _plain(value: Any) -> Any:
    """numpy scalars -> python scalars, so that weights_only loading accepts them."""
    return value.item() if isinstance(value, np.generic) else value


# --- validation and prediction --------------------------------------------------------------


@torch.inference_mode()
def _validate(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    device: torch.device,
    ignore_index: int,
    loss_fn: nn.Module | None = None,
    amp_dtype: torch.dtype | None = None,
):
    """One pass over `loader`: a confusion matrix over all of it, and the mean loss per image.

    Under torchrun, `loader` is this process's share (`shard_loader`); the matrix and the loss
    are summed over the processes, so every process returns the same numbers.
    """
    from segtutor.metrics import ConfusionMatrix

    was_training = model.training
    model.eval()
    cm = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    loss_sum, num_images = 0.0, 0
    for images, masks in loader:
        images = images.to(device, non_blocking=True)  # (N, 3, H, W)
        masks = masks.to(device, non_blocking=True)  # (N, h, w), maybe at another size
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(images)
        logits = _resize_logits(logits.float(), masks.shape[-2:])  # (N, C, h, w)
        if loss_fn is not None:
            loss_sum += loss_fn(logits, masks).item() * images.shape[0]
        num_images += images.shape[0]
        cm.update(logits.argmax(dim=1), masks)
    model.train(was_training)
    # Under torchrun each process saw its own share: sum them (no-ops in a single process).
    cm.all_reduce()
    loss_sum, num_images = sum_over_processes(loss_sum, num_images)
    if num_images == 0:
        raise ValueError("val_loader is empty: nothing to validate on")
    return cm, loss_sum / num_images


def _resize_logits(logits: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bilinear resize of logits `(N, C, H, W)` to `size`; metrics are taken at the masks' size."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


def evaluate(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    device: str | torch.device | None = None,
    ignore_index: int = 255,
):
    """Confusion matrix of `model` over the whole of `loader` (a `segtutor.metrics.ConfusionMatrix`).

    Predictions are compared with the masks at the masks' own resolution: logits of another size
    are resized bilinearly before the argmax. Images of different sizes need batch size 1.

    Under torchrun every process must call it: each evaluates its share of the batches and the
    matrices are summed, so all get the matrix of the whole loader.

    Example:
        >>> cm = evaluate(model, val_loader, num_classes=4)
        >>> cm.miou(), cm.iou()
    """
    device = _model_device(model) if device is None else torch.device(device)
    model.to(device)
    cm, _ = _validate(model, shard_loader(loader), num_classes, device, ignore_index)
    return cm


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Logits for a batch `(N, 3, H, W)` or one image `(3, H, W)`, float32 on the CPU.

    Args:
        size: resize the logits bilinearly to this `(height, width)`, e.g. the original image's.

    Shape:
        `(N, C, H, W)`, or `(C, H, W)` for one image.
    """
    single = images.ndim == 3
    batch = images.unsqueeze(0) if single else images
    was_training = model.training
    model.eval()
    logits = model(batch.to(_model_device(model))).float()
    model.train(was_training)
    if size is not None:
        logits = _resize_logits(logits, size)
    logits = logits.cpu()
    return logits[0] if single else logits


def predict(
    model: nn.Module, images: torch.Tensor, size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Predicted class per pixel: preds `(N, H, W)` int64 (or `(H, W)` for one image)."""
    return predict_logits(model, images, size=size).argmax(dim=-3)


# --- checkpoints ----------------------------------------------------------------------------


def save_checkpoint(path: str | os.PathLike, **fields: Any) -> Path:
    """Write a segtutor checkpoint atomically: a temporary file in the same folder, then a rename.

    A crash or Ctrl-C while writing leaves the previous checkpoint intact, never half a file.
    Fields must be plain data (tensors, dicts, lists, str, int, float, bool, None) so that
    `load_checkpoint` can read them with `weights_only=True`.

    Returns:
        The path written.
    """
    path = Path(path)
    checkpoint = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **fields}
    _check_plain(checkpoint, "checkpoint")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _check_plain(value: Any, where: str) -> None:
    """Raise TypeError naming the field that `torch.load(weights_only=True)` would refuse."""
    if isinstance(value, np.generic):  # np.float64 is a float, but does not load weights_only
        raise TypeError(f"{where} is a numpy.{type(value).__name__}; convert it with .item()")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, (torch.Tensor, str, int, float, bool, type(None))):
        raise TypeError(
            f"{where} is a {type(value).__module__}.{type(value).__name__}; a checkpoint holds "
            "only tensors, dicts, lists, str, int, float, bool and None (convert it first, "
            "e.g. float(x), x.tolist(), dataclasses.asdict(x))"
        )


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by `save_checkpoint`/`fit`, with `torch.load(weights_only=True)`.

    Raises:
        CheckpointError: the file is missing, damaged (e.g. truncated), or not a segtutor
            checkpoint (a plain state_dict, a pickled model, ...); the message says what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no such checkpoint file. Check the path, or train one first "
            "(python -m segtutor train, or fit with TrainConfig(checkpoint_path=...))."
        )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for damaged files
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if "weights only load failed" in str(error).lower():
            raise CheckpointError(
                f"{path}: not a segtutor checkpoint: it holds pickled Python objects (such as a "
                "whole model) that segtutor refuses to load, because unpickling can run code. "
                "segtutor expects a plain dict written by segtutor.train.save_checkpoint. If "
                "you trust the file, load it yourself and save its state_dict() instead."
            ) from error
        raise CheckpointError(
            f"{path}: cannot read this checkpoint: the file is damaged or incomplete (was "
            "training or a copy interrupted while it was written?). Use another checkpoint or "
            f"train again. ({type(error).__name__}: {first_line})"
        ) from error
    _check_format(path, checkpoint)
    return checkpoint


def _check_format(path: Path, checkpoint: Any) -> None:
    expected = (
        "segtutor expects a dict with format='segtutor-checkpoint' written by "
        "segtutor.train.save_checkpoint (fit writes one when TrainConfig.checkpoint_path is set)."
    )
    if not isinstance(checkpoint, dict):
        raise CheckpointError(
            f"{path}: not a segtutor checkpoint: it holds a {type(checkpoint).__name__}. {expected}"
        )
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        if checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
            first = next(iter(checkpoint))
            raise CheckpointError(
                f"{path}: not a segtutor checkpoint: it is a plain state_dict ({len(checkpoint)} "
                f"tensors, e.g. {first!r}), weights without the config and class names. "
                f"{expected} To use these weights, build the model and call "
                "model.load_state_dict(torch.load(path, weights_only=True))."
            )
        keys = ", ".join(repr(k) for k in list(checkpoint)[:6])
        raise CheckpointError(
            f"{path}: not a segtutor checkpoint: a dict with keys {keys}. {expected}"
        )
    version = checkpoint.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {version!r} is newer than this segtutor reads "
            f"({CHECKPOINT_VERSION}); upgrade segtutor."
        )


def model_from_checkpoint(checkpoint: str | os.PathLike | Mapping[str, Any]) -> nn.Module:
    """Rebuild the `segtutor.model.UNet` a checkpoint was trained with, weights loaded, eval mode."""
    from segtutor.model import UNet

    if not isinstance(checkpoint, Mapping):
        checkpoint = load_checkpoint(checkpoint)
    if checkpoint.get("model_config") is None:
        raise CheckpointError(
            "this checkpoint does not say how to build its model (model_config is None: it was "
            "trained with a model other than segtutor's UNet). Build that model yourself and "
            "call model.load_state_dict(checkpoint['model_state'])."
        )
    model = UNet(**checkpoint["model_config"])
    model.load_state_dict(checkpoint["model_state"])
    return model.eval()


def _rng_state(loader: DataLoader) -> dict[str, Any]:
    """Every random state a resumed run needs to repeat the uninterrupted run exactly."""
    version, python_state, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(python_state), "gauss": gauss},
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": loader.generator.get_state() if loader.generator is not None else None,
    }
    return state


def _restore(
    checkpoint: Mapping[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    loader: DataLoader,
) -> tuple[History, int, float]:
    """Put a checkpoint's weights, optimizer, scaler and random state back; (history, step, s)."""
    try:
        model.load_state_dict(checkpoint["model_state"])
        optimizer.load_state_dict(checkpoint["optimizer_state"])
    except (KeyError, RuntimeError, ValueError) as error:
        raise CheckpointError(
            f"cannot resume: the checkpoint's weights do not fit this model or optimizer "
            f"(model_config {checkpoint.get('model_config')}): {str(error).splitlines()[0]}"
        ) from error
    if checkpoint.get("scaler_state") and scaler.is_enabled():
        scaler.load_state_dict(checkpoint["scaler_state"])
    rng = checkpoint.get("rng_state") or {}
    if "python" in rng:
        py = rng["python"]
        random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    if "numpy" in rng:
        npy = rng["numpy"]
        np.random.set_state(("MT19937", npy["keys"].numpy().astype(np.uint32), npy["pos"],
                             npy["has_gauss"], npy["cached"]))
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if rng.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    if rng.get("loader") is not None and loader.generator is not None:
        loader.generator.set_state(rng["loader"])
    schedule = checkpoint.get("scheduler_state") or {}
    history = History.from_dict(checkpoint["history"])
    return history, int(schedule.get("step", 0)), float(schedule.get("elapsed_s", 0.0))
