"""What `fit` is given and what it gives back: `TrainConfig`, `History` and `Callback`.

Introduced in `04_training.ipynb`. `TrainConfig` holds every training choice with a comment
saying why its default is what it is; `scheduled_lr` and `build_optimizer` turn two of those
choices into the learning rate of each batch and the optimizer. `History` records every epoch
(as plain lists, saved as JSON and inside checkpoints), and a `Callback` is how a notebook
watches or stops a run without the loop knowing anything about plotting.

`segtutor.train` (the loop itself) re-exports these names: `from segtutor.train import
TrainConfig, fit` is the usual way in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from segtutor.architectures import encoder_parameters
from segtutor.jsonio import json_ready

if TYPE_CHECKING:
    from segtutor.metrics import ConfusionMatrix

__all__ = [
    "Callback",
    "History",
    "TrainConfig",
    "build_optimizer",
    "call_callbacks",
    "scheduled_lr",
]


@dataclass
class TrainConfig:
    """Everything `fit` needs besides the model and the data. Override with `dataclasses.replace`.

    Introduced in `04_training.ipynb`.

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
    # With class_weights and a cross-entropy loss: its cross-entropy (not Dice) sees the logits
    # plus prior_adjustment * log(weight), so the model's own logits keep no bias toward the
    # up-weighted classes (segtutor.losses.PriorAdjustedLoss). 0: off. The recipe sets 1 when
    # it weights classes.
    prior_adjustment: float = 0.0
    # Mask value skipped by the loss and the metrics (object borders, unlabelled pixels).
    ignore_index: int = 255
    # Number of classes; None takes `model.num_classes`.
    num_classes: int | None = None
    # Stop after this many epochs without a better val mIoU; None never stops early.
    early_stopping_patience: int | None = None
    # Wall-clock seconds for the whole fit (validation and the speed timing included); checked
    # after every batch.
    # The lr schedule is stretched to end with the budget. None: no budget.
    time_budget_s: float | None = None
    # Under a time budget, the most of it validation may take: an epoch is validated only while
    # the validation time so far stays within this share (the first and the last always are),
    # and a validation set too large for that is validated on a fixed, evenly spread subset.
    # None: validate every epoch on all of it, as without a budget. 5%: with the one-cycle
    # schedule the last epoch is almost always the best, and every second spared trains
    # (docs/benchmarks.md, "Batches of 16 under a budget").
    val_share: float | None = 0.05
    # Progressive resizing (fast.ai's): the first `progressive_share` of training (by batches
    # planned or by the time budget, whichever is further along, as the lr schedule) sees every
    # batch shrunk by this factor (`segtutor.transforms.shrink_batch`), so those steps cost less
    # (at 2/3, 0.58-0.69 of a full step on ccp9) and a budget fits more of them; the rest trains at full size, the size
    # validation and prediction see. 1.0: off. The recipe sets 2/3 under a time budget
    # (docs/benchmarks.md, "Progressive resizing").
    progressive_scale: float = 1.0
    progressive_share: float = 0.5
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
    # that computes bf16 natively (AVX512-BF16 or AMX, see `autocast_dtype`); elsewhere (most
    # laptops) bf16 is emulated, far slower, so it is never used there. None: whichever of
    # mixed and float32 trains faster here, timed at the start of fit (`segtutor.tuning`; it
    # needs `input_size`, else mixed where native); True: mixed where native; False: float32.
    amp: bool | None = None
    # Channels-last memory layout (same numbers; faster convolutions on most CPUs and GPUs).
    # None: timed with `amp`, and the torch thread count with them; True/False: as said.
    channels_last: bool | None = None
    # Clip the gradient norm to this value (a guard against exploding losses); None: no clipping.
    grad_clip: float | None = None
    # Train through `torch.compile(model)` (needs a C++ compiler on a CPU). Off by default: the
    # compilation takes longer than it saves on short runs of the course's small U-Net (see
    # docs/benchmarks.md); validation always runs the plain model.
    compile: bool = False
    # Progress bar per epoch plus one summary line per epoch; False prints nothing.
    progress: bool = True
    # How the images were fed (not used by fit; saved in the checkpoint so that `evaluate` and
    # `predict` feed new images the same way): the input size in pixels, and "resize" (whole
    # images resized to it) or "crop" (crops at native resolution, whole images at prediction).
    input_size: int | None = None
    input_mode: Literal["resize", "crop"] | None = None
    # In "crop" mode, the factor every image was resized by first (segtutor.sizing): prediction
    # resizes new images by it too, and the logits back to each image's own size.
    working_scale: float = 1.0
    # Under torchrun: fit turns the model's BatchNorm layers into SyncBatchNorm (same state_dict
    # keys), whose batch statistics are taken over the images of all processes (helps when each
    # process has only a few images per batch). GPUs only; ignored in a single process.
    sync_batchnorm: bool = False
    # Transfer learning (08_relatives.ipynb): the first N epochs train the decoder (or head)
    # alone, the encoder frozen (requires_grad False; its BatchNorm statistics still adapt),
    # so that a new, random decoder does not wreck pretrained features with its first large
    # gradients; then fit unfreezes it. 0: never frozen. Which parameters are the encoder the
    # model says (`segtutor.architectures.encoder_parameters`).
    freeze_encoder_epochs: int = 0
    # The encoder's learning rate is lr * this factor (its own optimizer group; the schedule
    # scales both groups alike): below 1, pretrained features change slowly while the decoder
    # learns. 1.0: one group, every parameter at lr.
    encoder_lr_factor: float = 1.0


@dataclass
class History:
    """What happened, one list entry per epoch (all lists have the same length).

    `val_iou[e][c]` is the IoU of class c after epoch `epoch[e]`, NaN when class c appears neither
    in the masks nor in the predictions of the validation set.

    Introduced in `04_training.ipynb`.
    """

    epoch: list[int] = field(default_factory=list)  # 1-based epoch numbers
    train_loss: list[float] = field(default_factory=list)  # mean over the epoch's training pixels
    # The main head's loss alone on the same batches: on the val loss's scale. It is train_loss
    # itself unless the model is deep-supervised, whose train_loss adds the coarse heads' losses.
    train_main_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_iou: list[list[float]] = field(default_factory=list)  # per class
    val_miou: list[float] = field(default_factory=list)
    val_pixel_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)  # lr of the epoch's last batch
    epoch_time_s: list[float] = field(default_factory=list)  # training + validation
    val_time_s: list[float] = field(default_factory=list)  # validation alone; 0: not validated
    stop_reason: str = ""  # "num_epochs", "early_stopping", "time_budget" or "callback"
    validation: str = ""  # how validation was done: on how many images, after which epochs
    speed: str = ""  # how the steps ran: precision, memory layout, threads

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
        return json_ready(
            {**asdict(self), "best_epoch": self.best_epoch, "best_miou": self.best_miou}
        )

    def append(
        self,
        epoch: int,
        train_loss: float,
        val_loss: float,
        cm: ConfusionMatrix | None,
        lr: float,
        seconds: float,
        val_s: float = 0.0,
        train_main_loss: float | None = None,
    ) -> None:
        """Record one epoch: its losses, the val metrics from `cm` (None: not validated, NaN),
        its last lr, its duration and the part of it spent validating. `train_main_loss` None:
        the model has one head, so it is `train_loss`."""
        self.epoch.append(epoch)
        self.train_loss.append(train_loss)
        self.train_main_loss.append(train_loss if train_main_loss is None else train_main_loss)
        self.val_loss.append(val_loss)
        if cm is None:  # not validated: as many NaN as classes (none known before any epoch)
            self.val_iou.append([math.nan] * len(self.val_iou[-1] if self.val_iou else []))
        else:
            self.val_iou.append([float(v) for v in cm.iou()])
        self.val_miou.append(float(cm.miou()) if cm is not None else math.nan)
        self.val_pixel_accuracy.append(float(cm.pixel_accuracy()) if cm is not None else math.nan)
        self.lr.append(lr)
        self.epoch_time_s.append(seconds)
        self.val_time_s.append(val_s)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """Inverse of `to_dict` (None becomes NaN again)."""
        texts = ("stop_reason", "validation", "speed")
        names = [f for f in cls.__dataclass_fields__ if f not in texts]
        lists = {name: _none_to_nan(list(data.get(name, []))) for name in names}
        lists["epoch"] = [int(e) for e in lists["epoch"]]
        if "train_main_loss" not in data:  # written before the field existed: not known
            lists["train_main_loss"] = [math.nan] * len(lists["epoch"])
        return cls(**lists, **{name: str(data.get(name, "")) for name in texts})


def _none_to_nan(value: Any) -> Any:
    if isinstance(value, list):
        return [_none_to_nan(v) for v in value]
    return math.nan if value is None else value


class Callback:
    """Hooks `fit` calls; subclass and override what you need. Return True to stop training.

    A plain function `f(epoch, history)` also works as a callback: it is used as `on_epoch_end`.
    Introduced in `04_training.ipynb`.

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


def call_callbacks(callbacks: Sequence[Any], hook: str, *args: Any) -> bool:
    """Call `hook` on every callback; True if any asked to stop. Plain functions are on_epoch_end.

    Introduced in `04_training.ipynb` (how `fit` calls its callbacks).
    """
    stop = False
    for callback in callbacks:
        method = getattr(callback, hook, None)
        if method is None and hook == "on_epoch_end" and callable(callback):
            method = callback
        if method is not None and method(*args):
            stop = True
    return stop


# --- the learning-rate schedule and the optimizer ---------------------------------------------


def scheduled_lr(config: TrainConfig, progress: float) -> float:
    """Learning rate at `progress` in [0, 1] through training (0 = first batch, 1 = the end).

    "onecycle" follows the curve of `torch.optim.lr_scheduler.OneCycleLR` (cosine, 30% warm-up,
    from lr/25 up to lr, then down to lr/25e4). The schedule is a function of progress rather than
    of the step count so that a time budget can stretch it: `fit` uses the larger of "batches
    done / batches planned" and "seconds used / seconds budgeted".

    Introduced in `04_training.ipynb`.
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


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer `config.optimizer` names, over all of `model`'s parameters.

    Introduced in `04_training.ipynb`. With `config.encoder_lr_factor != 1` (`08_relatives.ipynb`)
    it has two parameter groups: the rest of the model at `lr` (group 0), then the encoder at
    `lr * encoder_lr_factor`, a factor the group keeps as `"lr_factor"` so that the schedule
    (`train_one_epoch`'s `lr_schedule`) scales both groups alike.
    """
    groups: Any = model.parameters()
    if config.encoder_lr_factor != 1.0:
        encoder = {id(p) for p in encoder_parameters(model)}
        factor = config.encoder_lr_factor
        groups = [
            {"params": [p for p in model.parameters() if id(p) not in encoder]},
            {
                "params": [p for p in model.parameters() if id(p) in encoder],
                "lr": config.lr * factor,
                "lr_factor": factor,
            },
        ]
    # One fused kernel for all parameters instead of several operations per tensor: an AdamW
    # step 2.2-3.3 -> 0.5 ms for the course U-Net on a 2-core CPU (docs/benchmarks.md, "A cheaper
    # step, and 24 epochs").
    fused = all(p.device.type in ("cpu", "cuda") for p in model.parameters())
    if config.optimizer == "adamw":
        return torch.optim.AdamW(
            groups, lr=config.lr, weight_decay=config.weight_decay, fused=fused
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; use 'adamw' or 'adam'")
