"""What `fit` keeps around the training step, so that the loop itself stays short.

Introduced in `04_training.ipynb` (through `fit`). One `FitState` per run holds the history and
the best weights (new, or resumed from a checkpoint), the step count, the clock and the time
budget, the callbacks and why the run stopped; it writes the checkpoints through
`segtutor.checkpoint`, with everything a resumed run needs to repeat the uninterrupted one exactly.
Under torchrun its decisions (lr, stop) are taken over all processes, so all take the same ones.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from segtutor.checkpoint import (
    cpu_state,
    load_checkpoint,
    restore_training_state,
    run_metadata,
    save_checkpoint,
    training_state,
)
from segtutor.config import History, TrainConfig, call_callbacks, scheduled_lr
from segtutor.distributed import max_over_processes
from segtutor.errors import CheckpointError

__all__ = ["FitState"]


def _subset_loader(loader: DataLoader, indices: Iterable[int]) -> DataLoader:
    """A loader over some of `loader`'s samples, batched the same way."""
    return DataLoader(
        Subset(loader.dataset, list(indices)),
        batch_size=loader.batch_size,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
    )


class FitState:
    """What `fit` keeps around the step: the history and the best weights (resumed from a
    checkpoint or new), the step count, the clock and time budget, why it stopped.

    Introduced in `04_training.ipynb` (through `fit`, which makes one per run).
    """

    def __init__(
        self,
        config: TrainConfig,
        callbacks: Iterable,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        train_loader: DataLoader,
        resume_from: str | os.PathLike | Mapping | None,
        started: float | None = None,
    ):
        self.config, self.callbacks, self.model = config, list(callbacks), model
        self.optimizer, self.scaler, self.train_loader = optimizer, scaler, train_loader
        self.history, self.step, elapsed_s, best_state = History(), 0, 0.0, None
        if resume_from is not None:
            ckpt = resume_from if isinstance(resume_from, Mapping) else load_checkpoint(resume_from)
            self.step, elapsed_s = restore_training_state(
                ckpt, model, optimizer, scaler, train_loader
            )
            self.history = History.from_dict(ckpt["history"])
            best_state = ckpt.get("best_model_state")  # only in a last-epoch checkpoint
            _check_steps_per_epoch(self.step, len(self.history), len(train_loader))
        self.best_miou = self.history.best_miou if len(self.history) else -math.inf
        self.best_state = best_state or cpu_state(model)
        self.meta = run_metadata(model, train_loader, config)
        self.epoch, self.stop_reason = 0, "num_epochs"
        self.total_steps = config.num_epochs * len(train_loader)
        self._progress_at = (-1, 0.0)  # (step, progress) last computed
        # the clock: from `started` (`time.monotonic()`, default now), plus a resumed run's time
        self.start = (time.monotonic() if started is None else started) - elapsed_s
        # the slowest validation pass so far (reserved at the end), and all of them (resumed too)
        val_times = [t for t in self.history.val_time_s if t > 0]
        self.val_seconds, self.val_spent = max(val_times, default=0.0), sum(val_times)
        self.val_s = 0.0  # this epoch's validation time
        # the epochs validated so far (a resumed run's too)
        scores = zip(self.history.epoch, self.history.val_miou, strict=True)
        self.validated = [epoch for epoch, miou in scores if not math.isnan(miou)]
        self.val_images = self.val_total = 0

    def start_epoch(self, epoch: int) -> float:
        """Note the epoch (a new shuffle under torchrun, the same in every process); its start."""
        self.epoch = epoch
        if isinstance(self.train_loader.sampler, DistributedSampler):
            self.train_loader.sampler.set_epoch(epoch)
        return time.monotonic()

    def time_used(self) -> float:
        """Fraction of the time budget spent, leaving room for one more validation pass."""
        if self.config.time_budget_s is None:
            return 0.0
        budget = max(self.config.time_budget_s - self.val_seconds, 1e-9)
        return (time.monotonic() - self.start) / budget

    def progress(self, step: int) -> float:
        """How far along the run is, 0 to 1: batches done or time used, whichever is further.

        Under torchrun, the slowest process's clock: all must use the same lr and batch size.
        """
        if self._progress_at[0] != step:  # read the clock once a step: lr and size agree
            time_used = 0.0
            if self.config.time_budget_s is not None:
                time_used = max_over_processes(self.time_used())[0]
            self._progress_at = (step, max(step / self.total_steps, time_used))
        return self._progress_at[1]

    def lr_at(self, step: int) -> float:
        """The scheduled lr (`scheduled_lr`) at `progress(step)`."""
        return scheduled_lr(self.config, self.progress(step))

    def input_scale_at(self, step: int) -> float:
        """The factor this step's batch is shrunk by: progressive resizing (TrainConfig)."""
        if self.config.progressive_scale == 1.0:
            return 1.0  # off: no clock to read
        early = self.progress(step) < self.config.progressive_share
        return self.config.progressive_scale if early else 1.0

    def after_batch(self, step: int, loss: float) -> bool:
        """Callbacks and the time budget after every step; True stops the run (every process)."""
        self.step = step
        callback_stop = call_callbacks(self.callbacks, "on_batch_end", self.epoch, step, loss)
        # Under torchrun: stop if any process says so. One process stopping alone would leave
        # the others waiting forever for its gradients.
        callback_stop, out_of_time = max_over_processes(callback_stop, self.time_used() >= 1)
        if callback_stop:
            self.stop_reason = "callback"
        elif out_of_time:
            self.stop_reason = "time_budget"
        return self.stop_reason != "num_epochs"

    def budget_val_loader(
        self, val_loader: DataLoader, seconds_per_image: Callable[[DataLoader], float]
    ) -> DataLoader:
        """`val_loader`, or a fixed subset of it small enough for the time budget.

        Under a budget with `config.val_share`, one validation pass may take a third of that
        share (room for the first, the last and one between): a larger set is cut to that many
        images, evenly spread over it (at least 8). `seconds_per_image(loader)` times a pass.
        """
        config, self.val_total = self.config, len(val_loader.dataset)
        self.val_images = self.val_total
        if config.time_budget_s is None or config.val_share is None:
            return val_loader
        batch = val_loader.batch_size or 1
        seconds_per_image(_subset_loader(val_loader, range(min(batch, self.val_total))))  # warm-up
        probe = _subset_loader(val_loader, range(min(4 * batch, self.val_total)))
        per_image = max_over_processes(seconds_per_image(probe))[0]  # the same in every process
        affordable = int(config.val_share * config.time_budget_s / 3 / max(per_image, 1e-9))
        if affordable >= self.val_total:
            return val_loader
        self.val_images = max(affordable, min(8, self.val_total))
        step = self.val_total / self.val_images
        return _subset_loader(val_loader, [int(i * step) for i in range(self.val_images)])

    def validation_due(self) -> bool:
        """Validate after this epoch? Always without a budget (or `val_share` None), and after
        the first and the last epoch; otherwise only if validating keeps within the share."""
        config, self.val_s = self.config, 0.0
        if config.time_budget_s is None or config.val_share is None or not self.validated:
            return True
        if self.stop_reason != "num_epochs" or self.epoch == config.num_epochs:
            return True  # the last epoch: the run ends on a measured score
        elapsed = time.monotonic() - self.start
        due = self.val_spent + self.val_seconds <= config.val_share * (elapsed + self.val_seconds)
        return bool(max_over_processes(due)[0])  # every process takes the same decision

    def note_validation(self, seconds: float) -> None:
        """Count a validation pass: its time, and its epoch."""
        self.val_seconds = max(self.val_seconds, seconds)
        self.val_spent += seconds
        self.val_s = seconds
        self.validated.append(self.epoch)

    def describe_validation(self) -> str:
        """How validation was done, for the history and the run folder."""
        images = (
            f"all {self.val_total}"
            if self.val_images == self.val_total
            else (f"a fixed subset of {self.val_images} of the {self.val_total}")
        )
        epochs = len(self.history)
        when = (
            "after every epoch"
            if len(self.validated) == epochs
            else (
                f"after {len(self.validated)} of {epochs} epochs "
                f"(within {self.config.val_share:.0%} of the time budget)"
            )
        )
        return f"on {images} validation images, {when}"

    def keep_best(self, miou: float) -> bool:
        """Keep a copy of the weights if `miou` is the best so far (NaN never is)."""
        improved = not math.isnan(miou) and miou > self.best_miou
        if improved:
            self.best_miou, self.best_state = miou, cpu_state(self.model)
        return improved

    def write_checkpoints(self, improved: bool) -> None:
        """The best epoch to `checkpoint_path`; this one, best weights inside, to the last."""
        best_path, last_path = self.config.checkpoint_path, self.config.last_checkpoint_path
        if (best_path is None or not improved) and last_path is None:
            return
        fields = dict(
            **training_state(
                self.optimizer,
                self.scaler,
                self.train_loader,
                step=self.step,
                elapsed_s=time.monotonic() - self.start,
            ),
            history=self.history.to_dict(),
            epoch=self.history.epoch[-1],
            **self.meta,
        )
        if best_path is not None and improved:
            save_checkpoint(best_path, model_state=self.best_state, **fields)
        if last_path is not None:
            save_checkpoint(
                last_path,
                model_state=cpu_state(self.model),
                best_model_state=self.best_state,
                **fields,
            )

    def stop_after_epoch(self, early_stop: bool) -> bool:
        """Callbacks' on_epoch_end, then `early_stop` (`should_stop`'s answer); True stops.

        Every process takes the same decision: `early_stop` is computed from the same history.
        """
        history = self.history
        callback_stop = call_callbacks(self.callbacks, "on_epoch_end", history.epoch[-1], history)
        if max_over_processes(callback_stop)[0]:
            self.stop_reason = "callback"
        elif early_stop:
            self.stop_reason = "early_stopping"
        return self.stop_reason != "num_epochs"


def _check_steps_per_epoch(step: int, epochs: int, batches: int) -> None:
    """A resumed run must have as many batches per epoch as the run it continues (the lr
    schedule counts them): its checkpoint's `step` lies within its last epoch (a time budget or
    a callback may have ended it early)."""
    if epochs and not (epochs - 1) * batches <= step <= epochs * batches:
        raise CheckpointError(
            f"cannot resume: the checkpoint's run made {step} training steps in {epochs} "
            f"epoch(s), which does not fit {batches} batches per epoch: resume with the first "
            "run's data and batch size (--batch-size)"
        )
