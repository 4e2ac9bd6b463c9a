"""The training loop: `train_one_epoch`, `validate`, `should_stop`, and `fit` that calls them.

Introduced in `04_training.ipynb`. `fit` reads top to bottom as one epoch loop:

    set up: device, seed, the model on the device (DDP under torchrun, torch.compile), resume
    for each epoch:
        train_one_epoch     for each batch: scheduled lr -> forward -> loss -> backward -> step
        validate            one confusion matrix over the whole val set
        record the history, keep the best weights, write the checkpoints
        should_stop         early stopping (and callbacks, the time budget)

`train_one_epoch(model, train_loader, loss_fn, optimizer)` alone is exactly the loop a notebook
writes by hand; its keyword options add what `fit` needs. What is not the step sits around it,
in `segtutor.fit_state.FitState`: the history, the best weights, the time budget, why the run
stopped, and the checkpoints, written so that a resumed run repeats the uninterrupted one exactly.
What `fit` is given and gives back (`TrainConfig`, `History`, `Callback`) is defined in
`segtutor.config` and re-exported here. Under `torchrun` the same `fit` trains with DDP: every
process takes the same decisions, and rank 0 alone prints and writes (`segtutor.distributed`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from segtutor.architectures import encoder_parameters, freeze_encoder
from segtutor.config import (
    Callback,
    History,
    TrainConfig,
    build_optimizer,
    call_callbacks,
    scheduled_lr,
)
from segtutor.distributed import (
    barrier,
    broadcast_buffers,
    is_distributed,
    is_main_process,
    shard_loader,
    sum_over_processes,
    wrap_ddp,
)
from segtutor.fit_state import FitState
from segtutor.inference import class_map, resize_logits
from segtutor.losses import DeepSupervisionLoss, build_loss, shrink_masks
from segtutor.metrics import ConfusionMatrix
from segtutor.runtime import choose_device, model_device, seed_everything
from segtutor.transforms import shrink_batch
from segtutor.tuning import SpeedSettings, describe_settings, settings_for

__all__ = [
    # defined in segtutor.config; re-exported because fit takes and returns them
    "Callback",
    "History",
    "TrainConfig",
    "scheduled_lr",
    # the loop
    "evaluate",
    "fit",
    "should_stop",
    "train_one_epoch",
    "validate",
]

# --- one epoch, one validation, one stopping rule -----------------------------------------------


def train_one_epoch(
    model: nn.Module,
    train_loader: DataLoader,
    loss_fn: Callable[[Any, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    device: torch.device | None = None,
    lr_schedule: Callable[[int], float] | None = None,
    input_scale: Callable[[int], float] | None = None,
    amp_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    channels_last: bool = False,
    grad_clip: float | None = None,
    on_batch_end: Callable[[int, float], bool | None] | None = None,
    step: int = 0,
    epoch: int | None = None,
    progress: bool = False,
) -> float:
    """One pass over `train_loader`; returns the mean training loss per image.

    With the four positional arguments alone this is exactly the plain loop
    `for images, masks in train_loader: outputs = model(images); loss = loss_fn(outputs, masks);
    optimizer.zero_grad(); loss.backward(); optimizer.step()`, on the model's device.
    Introduced in `04_training.ipynb`.

    Args (what `fit` adds):
        device: where the batches go; default the model's device.
        lr_schedule: `f(step) -> lr`, called before each batch; sets every group's lr (times
            the group's `"lr_factor"`, if it has one: the encoder's, see `build_optimizer`).
        input_scale: `f(step) -> factor` the batch is shrunk by (`shrink_batch`; 1: as it is):
            progressive resizing, see `TrainConfig.progressive_scale`.
        amp_dtype, scaler: autocast type of the forward pass and loss, and a `GradScaler` (float16).
        channels_last: feed the images in channels-last memory layout (same numbers).
        grad_clip: clip the gradient norm of `model.parameters()` to this value.
        on_batch_end: `f(step, loss)` after every optimizer step; True ends the epoch early.
        step, epoch: steps taken before this epoch, and its number (bar and error messages).
        progress: show a progress bar with the running loss.

    Raises:
        FloatingPointError: the loss became NaN or infinite (names the batch and the lr).
    """
    device = model_device(model) if device is None else device
    if scaler is None:  # a disabled scaler is the plain loop: scale() returns the loss as it is,
        scaler = torch.amp.GradScaler(device.type, enabled=False)  # step() is optimizer.step()
    model.train()
    loss_sum, num_images = 0.0, 0
    where = f"epoch {epoch}, " if epoch is not None else ""
    bar = tqdm(
        train_loader,
        desc=f"epoch {epoch}" if epoch is not None else "training",
        leave=False,
        disable=not progress,
        mininterval=0.5,
    )
    for batch, (images, masks) in enumerate(bar):
        if lr_schedule is not None:
            lr = lr_schedule(step)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_factor", 1.0)
        images = images.to(device, non_blocking=True)  # (N, 3, H, W)
        masks = masks.to(device, non_blocking=True)  # (N, H, W)
        if input_scale is not None:  # progressive resizing: smaller, cheaper batches early
            images, masks = shrink_batch(images, masks, input_scale(step))
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)

        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            outputs = model(images)  # logits (N, C, H, W); (logits, aux) with deep supervision
            loss = loss_fn(outputs, masks)
        if not torch.isfinite(loss):
            where += f"batch {batch + 1}/{len(train_loader)} (step {step + 1}"
            raise FloatingPointError(_not_finite(loss, where, optimizer.param_groups[0]["lr"]))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        step += 1

        loss_value = loss.item()
        loss_sum += loss_value * images.shape[0]
        num_images += images.shape[0]
        bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)
        if on_batch_end is not None and on_batch_end(step, loss_value):
            break
    bar.close()
    loss_sum, num_images = sum_over_processes(loss_sum, num_images)  # no-op in one process
    return loss_sum / max(num_images, 1)


@torch.inference_mode()
def validate(
    model: nn.Module,
    val_loader: DataLoader,
    num_classes: int,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | None = None,
    amp_dtype: torch.dtype | None = None,
    ignore_index: int = 255,
) -> tuple[ConfusionMatrix, float]:
    """One pass over `val_loader` in eval mode: a confusion matrix over all of it, and the loss.

    Predictions are compared with the masks at the masks' own resolution (logits of another size
    are resized bilinearly first). The loss is taken where the model predicts, as in training:
    on its logits, against the masks shrunk to their size (`segtutor.losses.shrink_masks`). At
    a street photo's own 550x830 pixels it took two thirds of each validation pass on ccp9
    (docs/benchmarks.md, "The validation loss where the model predicts"). Under torchrun, pass
    this process's share
    (`segtutor.distributed.shard_loader(loader)`): the matrix and the loss are summed over the
    processes, so every process returns the same numbers.

    Introduced in `04_training.ipynb`.

    Returns:
        `(cm, val_loss)`: a `segtutor.metrics.ConfusionMatrix` and the mean loss per image
        (NaN without `loss_fn`).
    """
    device = model_device(model) if device is None else device
    was_training = model.training
    model.eval()
    cm = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    loss_sum, num_images = 0.0, 0
    for images, masks in val_loader:
        images = images.to(device, non_blocking=True)  # (N, 3, H, W)
        masks = masks.to(device, non_blocking=True)  # (N, h, w), maybe at another size
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(images).float()  # (N, C, H, W)
        if loss_fn is not None:
            loss_sum += loss_fn(logits, shrink_masks(masks, logits.shape[-2:])).item() * len(images)
        num_images += images.shape[0]
        logits = resize_logits(logits, masks.shape[-2:])  # (N, C, h, w)
        cm.update(class_map(logits), masks)  # logits.argmax(dim=1), faster
    model.train(was_training)
    # Under torchrun each process saw its own share: sum them (no-ops in a single process).
    cm.all_reduce()
    loss_sum, num_images = sum_over_processes(loss_sum, num_images)
    if num_images == 0:
        raise ValueError("val_loader is empty: nothing to validate on")
    return cm, loss_sum / num_images if loss_fn is not None else math.nan


def evaluate(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    device: str | torch.device | None = None,
    ignore_index: int = 255,
    amp_dtype: torch.dtype | None = None,
) -> ConfusionMatrix:
    """Confusion matrix of `model` over the whole of `loader` (a `segtutor.metrics.ConfusionMatrix`).

    Predictions are compared with the masks at the masks' own resolution (`validate`); images
    of different sizes need batch size 1. Under torchrun every process must call it: each
    evaluates its share of the batches and all get the matrix of the whole loader. `amp_dtype`
    (None: float32) runs the model under autocast, as `fit` validated where `History.speed`
    names bfloat16 or float16: the same precision gives `fit`'s numbers exactly.

    Introduced in `04_training.ipynb`.

    Example:
        >>> cm = evaluate(model, val_loader, num_classes=4)
        >>> cm.miou(), cm.iou()
    """
    device = model_device(model) if device is None else torch.device(device)
    model.to(device)
    cm, _ = validate(
        model,
        shard_loader(loader),
        num_classes,
        device=device,
        amp_dtype=amp_dtype,
        ignore_index=ignore_index,
    )
    return cm


def should_stop(val_miou: Sequence[float], patience: int | None) -> bool:
    """The early-stopping rule: True when the best val mIoU is `patience` or more epochs old.

    The best is the earliest highest value; NaN (nothing measured) never counts as an
    improvement, so epochs without any measured value all count as epochs without progress.
    `patience` None never stops.

    Introduced in `04_training.ipynb`.

    Example:
        >>> should_stop([0.5, 0.7, 0.6, 0.65], patience=2)  # the best, 0.7, is 2 epochs old
        True
    """
    if patience is None or not val_miou:
        return False
    scores = [-math.inf if math.isnan(m) else m for m in val_miou]
    best = scores.index(max(scores)) if max(scores) > -math.inf else -1  # -1: before the first
    return len(scores) - 1 - best >= patience


# --- fit: the epoch loop, and what sits around it ------------------------------------------------


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

    Introduced in `04_training.ipynb`. Under a time budget, validation is kept within
    `config.val_share` of it. Precision and memory layout are timed if `config` leaves them open.

    Args:
        model: maps images `(N, 3, H, W)` to logits `(N, C, H, W)`.
        train_loader: yields `(images, masks)`; masks `(N, H, W)` int64, 255 = ignore.
        val_loader: the same for validation; use batch size 1 if image sizes vary.
        config: hyper-parameters (`TrainConfig()` if None).
        callbacks: `Callback` objects or functions `f(epoch, history)`; returning True stops.
        resume_from: a checkpoint of `fit` (path or dict; best `last.pt`): its run continues.
        loss_fn: a loss `(logits, masks) -> scalar`; default `build_loss(config.loss, ...)`.

    Returns:
        The `History`; the model ends on the epoch with the best val mIoU, as does
        `config.checkpoint_path` (if set). A NaN or infinite loss raises `FloatingPointError`.

    Under torchrun every process calls `fit` alike (`make_loader(..., shuffle=True)` shares the
    training images); one callback asking to stop stops all.
    """
    started, config = time.monotonic(), config or TrainConfig()  # a budget counts from here
    device = choose_device(config.device)
    num_classes = _check_inputs(model, train_loader, config, device)
    # The same seed in every process: the same initial weights (DDP would copy rank 0's anyway)
    # and the same random augmentation parameters, drawn for different images.
    seed_everything(config.seed)
    model = _to_device(model, config, device)
    loss_fn = _training_loss(model, loss_fn, config, num_classes).to(device)
    speed = settings_for(config, model, loss_fn, train_loader.batch_size, device)  # or timed
    amp_dtype, threads_before = speed.amp_dtype, _apply(speed, model)  # precision, layout, threads
    optimizer = build_optimizer(model, config)
    # float16 needs its loss scaled (small gradients would round to 0); bfloat16 does not
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    run = FitState(config, callbacks, model, optimizer, scaler, train_loader, resume_from, started)
    history, net = run.history, _training_net(model, config, device, train_loader)  # DDP, compiled
    val_options = dict(loss_fn=loss_fn, device=device, amp_dtype=amp_dtype,
                       ignore_index=config.ignore_index)  # fmt: skip
    timer = lambda part: _seconds_per_image(model, part, num_classes, val_options)  # noqa: E731
    val_loader = shard_loader(run.budget_val_loader(val_loader, timer))  # budget: maybe a subset
    progress = config.progress and is_main_process()
    # what every epoch passes on unchanged: the device, the precision and the step's options
    step_options = dict(
        device=device, amp_dtype=amp_dtype, scaler=scaler, channels_last=speed.channels_last,
        grad_clip=config.grad_clip, progress=progress, lr_schedule=run.lr_at,
        input_scale=run.input_scale_at, on_batch_end=run.after_batch,
    )  # fmt: skip

    for epoch in range(len(history) + 1, config.num_epochs + 1):
        epoch_start, logged = run.start_epoch(epoch), _MainHeadLog(loss_fn)  # + main head alone
        _freeze_for(model, config, epoch)  # transfer learning: maybe the decoder alone at first
        train_loss = train_one_epoch(
            net, train_loader, logged, optimizer, step=run.step, epoch=epoch, **step_options
        )
        broadcast_buffers(model)  # every process validates the model rank 0 saves
        cm, val_loss, val_start = None, math.nan, time.monotonic()
        if run.validation_due():  # always, unless a time budget makes it skip some epochs
            cm, val_loss = validate(model, val_loader, num_classes, **val_options)
            run.note_validation(time.monotonic() - val_start)
        lr, seconds = optimizer.param_groups[0]["lr"], time.monotonic() - epoch_start
        history.append(epoch, train_loss, val_loss, cm, lr=lr, seconds=seconds, val_s=run.val_s,
                       train_main_loss=logged.mean())  # fmt: skip
        improved = run.keep_best(history.val_miou[-1])
        if is_main_process():  # one writer per file
            run.write_checkpoints(improved)
        if progress:
            _print_epoch(history, config, improved)
        validated = [m for m in history.val_miou if not math.isnan(m)]  # patience counts these
        if run.stop_after_epoch(should_stop(validated, config.early_stopping_patience)):
            break

    history.stop_reason, history.validation = run.stop_reason, run.describe_validation()
    history.speed = describe_settings(speed)
    model.load_state_dict(run.best_state)
    _put_back(model, config, threads_before)
    barrier()  # when fit returns in any process, rank 0 has finished writing the checkpoint
    if progress and len(history):
        _print_end(history)
    call_callbacks(run.callbacks, "on_train_end", history)
    return history


class _MainHeadLog(nn.Module):
    """`loss`, unchanged, that also sums the main head's loss alone (`History.train_main_loss`).

    A deep-supervised model's training loss adds its coarse heads' losses; validation scores the
    main head alone, so `fit` logs that on the training batches too (no gradients): same scale.
    """

    def __init__(self, loss: nn.Module):
        super().__init__()
        self.loss, self.loss_sum, self.num_images = loss, 0.0, 0

    def forward(self, outputs: Any, masks: torch.Tensor) -> torch.Tensor:
        loss = self.loss(outputs, masks)
        main = loss.detach()  # one head: the training loss is the main head's
        if not isinstance(outputs, torch.Tensor):  # (logits, aux): the main head alone,
            # as DeepSupervisionLoss computed it in this call
            main = getattr(self.loss, "last_main_loss", None)
            main = torch.tensor(math.nan) if main is None else main
        self.loss_sum += main.item() * masks.shape[0]  # as train_one_epoch sums its loss
        self.num_images += masks.shape[0]
        return loss

    def mean(self) -> float:
        """Mean per image so far (over every process under torchrun)."""
        loss_sum, num_images = sum_over_processes(self.loss_sum, self.num_images)
        return loss_sum / max(num_images, 1)


def _not_finite(loss: torch.Tensor, where: str, lr: float) -> str:
    return (
        f"the training loss became {loss.item()} at {where}, lr {lr:.2e}). Lower the learning "
        "rate (e.g. replace(config, lr=config.lr / 10)), set grad_clip=1.0, and check that the "
        "images hold no NaN values."
    )


def _seconds_per_image(
    model: nn.Module, loader: DataLoader, num_classes: int, options: dict[str, Any]
) -> float:
    """Seconds one validation pass over `loader` takes per image (to plan validation)."""
    start = time.monotonic()
    validate(model, loader, num_classes, **options)
    return (time.monotonic() - start) / max(len(loader.dataset), 1)


def _check_inputs(
    model: nn.Module, train_loader: DataLoader, config: TrainConfig, device: torch.device
) -> int:
    """Fail early, before any training, with what to change; returns the number of classes."""
    num_classes = config.num_classes or getattr(model, "num_classes", None)
    if num_classes is None:
        raise ValueError("set TrainConfig.num_classes: the model has no num_classes attribute")
    if len(train_loader) == 0:
        raise ValueError("train_loader is empty: no batches to train on")
    if not (0 < config.progressive_scale <= 1 and 0 <= config.progressive_share <= 1):
        raise ValueError(
            f"progressive_scale must be in (0, 1] and progressive_share in [0, 1], got "
            f"{config.progressive_scale} and {config.progressive_share}"
        )
    if not 0 <= config.prior_adjustment < math.inf:
        raise ValueError(f"prior_adjustment must be 0 or more, got {config.prior_adjustment}")
    if is_distributed() and config.sync_batchnorm and device.type != "cuda":
        raise ValueError(
            f"sync_batchnorm=True needs GPUs (PyTorch's SyncBatchNorm does not run on {device}); "
            "on CPUs leave it off: the processes then share rank 0's BatchNorm statistics"
        )
    if is_distributed() and config.freeze_encoder_epochs:
        # DDP fixes at wrapping time which parameters get gradients: unfreezing later would
        # leave the encoder unsynchronised between processes
        raise ValueError("freeze_encoder_epochs does not work under torchrun; set it to 0")
    if config.freeze_encoder_epochs or config.encoder_lr_factor != 1.0:
        encoder_parameters(model)  # fails now, not after an epoch, if the model cannot say
    return num_classes


def _freeze_for(model: nn.Module, config: TrainConfig, epoch: int | None) -> None:
    """The encoder frozen in the first `config.freeze_encoder_epochs` epochs (None: the end)."""
    if config.freeze_encoder_epochs:
        freeze_encoder(model, epoch is not None and epoch <= config.freeze_encoder_epochs)


def _put_back(model: nn.Module, config: TrainConfig, threads: int) -> None:
    """Undo what fit changed to train: torch's thread count; a frozen encoder (a short run)."""
    torch.set_num_threads(threads)
    _freeze_for(model, config, None)


def _to_device(model: nn.Module, config: TrainConfig, device: torch.device) -> nn.Module:
    model.to(device)
    if is_distributed() and config.sync_batchnorm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # same parameters, same state_dict
    return model


def _apply(speed: SpeedSettings, model: nn.Module) -> int:
    """Put `model` in the chosen memory layout and torch on the chosen threads; the old count."""
    if speed.channels_last:
        model.to(memory_format=torch.channels_last)
    threads = torch.get_num_threads()
    torch.set_num_threads(speed.num_threads)
    return threads


def _training_net(
    model: nn.Module, config: TrainConfig, device: torch.device, train_loader: DataLoader
) -> nn.Module:
    """What trains: `model`, inside DDP under torchrun, through torch.compile if asked.

    Either way it shares its weights with `model`, which `fit` validates and saves."""
    net = wrap_ddp(model, device, train_loader) if is_distributed() else model
    return torch.compile(net) if config.compile else net  # compiles on the first batch


def _training_loss(
    model: nn.Module, loss_fn: nn.Module | None, config: TrainConfig, num_classes: int
) -> nn.Module:
    """`loss_fn`, or the one `config.loss` names (prior-adjusted if the config says so); summed
    over the heads of a deep-supervised model."""
    if loss_fn is None:
        adjust = config.class_weights and config.loss != "dice"  # a weighted cross-entropy
        loss_fn = build_loss(
            config.loss,
            num_classes,
            class_weights=config.class_weights,
            ignore_index=config.ignore_index,
            prior_adjustment=config.prior_adjustment if adjust else 0.0,
        )
    if getattr(model, "deep_supervision", False) and not isinstance(loss_fn, DeepSupervisionLoss):
        loss_fn = DeepSupervisionLoss(loss_fn)  # the model returns (logits, aux) when training
    return loss_fn


def _print_end(history: History) -> None:
    tqdm.write(
        f"best val mIoU {history.best_miou:.4f} at epoch {history.best_epoch} "
        f"(stopped by {history.stop_reason.replace('_', ' ')}; validated {history.validation})"
    )


def _print_epoch(history: History, config: TrainConfig, improved: bool) -> None:
    main, total = history.train_main_loss[-1], history.train_loss[-1]
    heads = f" (main head {main:.4f})" if main != total else ""  # deep supervision: the sum
    tqdm.write(
        f"epoch {history.epoch[-1]}/{config.num_epochs}  train loss {total:.4f}{heads}  "
        f"val loss {history.val_loss[-1]:.4f}  val mIoU {history.val_miou[-1]:.4f}  "
        f"lr {history.lr[-1]:.1e}  {history.epoch_time_s[-1]:.1f}s{'  *best' if improved else ''}"
    )
