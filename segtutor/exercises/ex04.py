"""Exercises of 04_training.ipynb: `train_one_epoch`, `should_stop`, `atomic_save`, `onecycle_lr`
(`ex.q1` to `ex.q4`), what to do after reading four runs' curves (`ex.q5`), and the
questionnaire (`ex.quiz`).

Introduced in `04_training.ipynb`.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections import OrderedDict
from dataclasses import replace
from functools import partial
from pathlib import Path
from unittest import mock

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from segtutor.exercises.compare import compare_values
from segtutor.exercises.core import Case, Incorrect, Mistake, Question
from segtutor.exercises.progress import make_progress
from segtutor.exercises.quiz import ChoiceQuestion, Questionnaire
from segtutor.train import TrainConfig, scheduled_lr, should_stop, train_one_epoch

__all__ = ["q1", "q2", "q3", "q4", "q5", "quiz", "progress"]


def _setup(seed: int, num_images: int, batch_size: int, optimizer: str):
    """A fresh tiny model (in eval mode, as after validation), loader, optimizer and loss.

    The model has BatchNorm, so its output depends on train/eval mode.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        conv, norm, head = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Conv2d(4, 3, 1)
        model = nn.Sequential(OrderedDict(conv=conv, norm=norm, relu=nn.ReLU(), head=head))
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(num_images, 3, 6, 6, generator=g)  # (N, 3, 6, 6)
    masks = torch.randint(0, 3, (num_images, 6, 6), generator=g)  # (N, 6, 6) int64
    loader = DataLoader(TensorDataset(images, masks), batch_size=batch_size, shuffle=False)
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
    model.eval()
    return model, loader, opt, nn.CrossEntropyLoss()


def _result(model: nn.Module, loss) -> dict:
    return {"loss": loss, "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}


def _wrong_epoch(*setup, train=True, zero_grad=True, step=True, average="images"):
    """One epoch with one typical mistake (the right one is the library's `train_one_epoch`)."""
    model, loader, optimizer, loss_fn = _setup(*setup)
    if train:
        model.train()
    batch_losses, sizes = [], []
    for images, masks in loader:
        loss = loss_fn(model(images), masks)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        if step:
            optimizer.step()
        batch_losses.append(loss.item())
        sizes.append(images.shape[0])
    averages = {
        "images": sum(b * n for b, n in zip(batch_losses, sizes, strict=True)) / sum(sizes),
        "batches": sum(batch_losses) / len(batch_losses),
        "sum": sum(batch_losses),
        "last": batch_losses[-1],
    }
    return _result(model, averages[average])


def _wrong(**mistake):
    return partial(_wrong_epoch, **mistake)


class TrainOneEpoch(Question):
    title = "One epoch of training that returns the mean loss per image"
    hints = (
        "Start with `model.train()`: the model may arrive in eval mode (after validation), and "
        "BatchNorm behaves differently in the two modes.",
        "For each batch: `logits = model(images)`, `loss = loss_fn(logits, masks)`, then "
        "`optimizer.zero_grad()`, `loss.backward()`, `optimizer.step()`. Without `zero_grad` "
        "the gradients of every batch so far add up.",
        "The last batch can be smaller. Add `loss.item() * images.shape[0]` per batch and divide "
        "by the number of images, not by the number of batches.",
    )
    solution_code = """\
def train_one_epoch(model, loader, loss_fn, optimizer):
    device = next(model.parameters()).device
    model.train()
    loss_sum, num_images = 0.0, 0
    for images, masks in loader:
        images, masks = images.to(device), masks.to(device)  # (N, 3, H, W), (N, H, W)
        logits = model(images)                                # (N, C, H, W)
        loss = loss_fn(logits, masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * images.shape[0]
        num_images += images.shape[0]
    return loss_sum / num_images"""
    check_inplace = False
    mistakes = (
        Mistake(_wrong(step=False), "The weights did not change: call `optimizer.step()` "
                "after `loss.backward()`."),
        Mistake(_wrong(zero_grad=False), "Call `optimizer.zero_grad()` for every batch: "
                "without it, each step uses the sum of the gradients of all the batches so far."),
        Mistake(_wrong(train=False), "Call `model.train()` first: the model arrived in "
                "eval mode (as it is after validation), so BatchNorm used its running "
                "statistics and did not update them."),
        Mistake(_wrong(average="batches"), "That is the mean of the batch losses: the last "
                "batch is smaller, so weight each batch by its number of images "
                "(`loss.item() * images.shape[0]`) and divide by the number of images."),
        Mistake(_wrong(average="sum"), "That is the sum of the batch losses: return the "
                "mean per image."),
        Mistake(_wrong(average="last"), "That is the loss of the last batch only: return "
                "the mean over the epoch."),
    )  # fmt: skip

    def reference(self, seed, num_images, batch_size, optimizer):
        model, loader, opt, loss_fn = _setup(seed, num_images, batch_size, optimizer)
        return _result(model, train_one_epoch(model, loader, loss_fn, opt))

    def cases(self):
        label = "a tiny net with BatchNorm, {} images in batches of {}"
        label += "; the model arrives in eval mode"
        yield Case(0, 8, 3, "sgd", label=label.format(8, "3, 3, 2, SGD with momentum"))
        yield Case(1, 10, 4, "adam", label=label.format(10, "4, 4, 2, Adam"))

    def run(self, answer, case):
        model, loader, opt, loss_fn = _setup(*case.args)
        # the library's argument order: segtutor.train.train_one_epoch(model, loader, loss_fn, opt)
        loss = super().run(answer, Case(model, loader, loss_fn, opt))
        if loss is None:
            raise Incorrect("Your function returned None: return the mean training loss.")
        return _result(model, loss)

    def compare(self, expected, got, name):
        for key, value in expected["state"].items():
            theirs = got["state"][key].float()
            if not torch.allclose(value.float(), theirs, atol=1e-5, rtol=1e-4):
                return (
                    f"The weights after one epoch differ from the reference (e.g. `{key}`, by up "
                    f"to {(value.float() - theirs).abs().max().item():.3g}): one forward, loss, "
                    "zero_grad, backward and step per batch, in the order of the loader."
                )
        return compare_values(expected["loss"], got["loss"], "the returned loss")


def _stop_when(improves):
    """`should_stop` with another idea of an improvement: `improves(value, earlier_values)`."""

    def stop(val_mious, patience):
        since = 0
        for i, value in enumerate(val_mious):
            since = 0 if improves(value, val_mious[:i]) else since + 1
        return since >= patience

    return stop


class ShouldStop(Question):
    title = "Early stopping: stop after `patience` epochs without a better val mIoU"
    hints = (
        "Keep the best val mIoU seen so far and count the epochs since it last improved.",
        "An epoch improves only if its mIoU is strictly higher than the best BEFORE it: a tie "
        "is no improvement, and beating the previous epoch is not enough.",
        "Stop (return True) when that count reaches `patience`; an empty history never stops.",
    )
    solution_code = """\
def should_stop(val_mious, patience):
    best, epochs_without_gain = -math.inf, 0
    for miou in val_mious:
        if miou > best:
            best, epochs_without_gain = miou, 0
        else:
            epochs_without_gain += 1
    return epochs_without_gain >= patience"""

    mistakes_on_all_cases = True  # a yes/no answer matches many mistakes on one case
    mistakes = (
        Mistake(lambda val_mious, patience: should_stop([-v for v in val_mious], patience),
                "A higher mIoU is better (unlike a loss): an epoch improves when its mIoU is "
                "above the best so far."),
        Mistake(_stop_when(lambda value, before: not before or value > before[-1]),
                "Compare each epoch with the BEST mIoU so far, not with the epoch before it: "
                "getting back up towards the best is not an improvement."),
        Mistake(_stop_when(lambda value, before: value >= max(before, default=-math.inf)),
                "A tie with the best is no improvement: use `>`, not `>=`."),
        Mistake(lambda val_mious, patience: should_stop(val_mious, patience + 1),
                "Off by one: stop as soon as `patience` epochs in a row brought no improvement "
                "(`>= patience`)."),
        Mistake(lambda val_mious, patience: should_stop(val_mious, patience - 1),
                "Off by one: stop after `patience` epochs without improvement, not "
                "`patience - 1`."),
    )  # fmt: skip

    def reference(self, val_mious, patience):
        return should_stop(val_mious, patience)

    def cases(self):
        yield Case([0.20, 0.35, 0.41, 0.44], 2)  # still improving
        yield Case([0.20, 0.50, 0.45, 0.48], 2)  # 0.48 beats the previous epoch, not the best
        yield Case([0.30, 0.50, 0.40], 2)  # one bad epoch only
        yield Case([0.30, 0.50, 0.50, 0.50], 2)  # ties are no improvement
        yield Case([0.60, 0.50, 0.40], 2)  # best at the first epoch
        yield Case([0.10], 1)
        yield Case([], 3)
        yield Case([0.50, 0.40, 0.45, 0.55, 0.50, 0.52, 0.51], 3)
        yield Case([0.50, 0.40, 0.45, 0.55, 0.50, 0.52], 3)


class _SimulatedCrash(OSError):
    pass


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class AtomicSave(Question):
    title = "Save a checkpoint atomically: a temporary file, then `os.replace`"
    hints = (
        "Never write to `path` directly: a crash halfway leaves half a file where the last good "
        "checkpoint was.",
        "`fd, tmp = tempfile.mkstemp(dir=path.parent)` makes a temporary file in the SAME folder "
        "(`os.replace` is atomic only within one file system). Write it with `torch.save(obj, f)` "
        "on `os.fdopen(fd, 'wb')`, then `os.replace(tmp, path)`.",
        "If anything fails, delete the temporary file and re-raise: wrap the write in "
        "`try: ... except BaseException: Path(tmp).unlink(missing_ok=True); raise`.",
    )
    solution_code = """\
def atomic_save(obj, path):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
        os.replace(tmp, path)  # atomic: path is the old file or the new one, never half
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise"""
    check_inplace = False

    def reference(self, obj, overwrite):
        return "ok"

    def cases(self):
        g = self.generator()
        obj = {"model_state": {"w": torch.randn(3, 2, generator=g)}, "epoch": 4}
        yield Case(obj, False, label="a dict of tensors, saved to a new file")
        obj = {"model_state": {"w": torch.randn(4, generator=g)}, "epoch": 7}
        yield Case(obj, True, label="a dict of tensors, saved over an older checkpoint")

    def run(self, answer, case):
        obj, overwrite = case.args
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "run"
            folder.mkdir()
            path = folder / "best.pt"
            if overwrite:
                torch.save({"model_state": {"w": torch.zeros(2)}, "epoch": 1}, path)
            super().run(answer, Case(obj, path))
            self._check_written(folder, path, obj)
            if overwrite:
                self._check_crash(answer, folder, path, obj)
        return "ok"

    @staticmethod
    def _check_written(folder: Path, path: Path, obj) -> None:
        if not path.is_file():
            raise Incorrect(
                f"After `atomic_save(obj, path)` there is no file at `path` "
                f"(the folder holds {_listing(folder)})."
            )
        try:
            loaded = torch.load(path, weights_only=True)
        except Exception as error:
            raise Incorrect(
                f"The file at `path` does not load with `torch.load(path, weights_only=True)` "
                f"({type(error).__name__}: {str(error).splitlines()[0]}). Save `obj` itself "
                "with `torch.save`."
            ) from None
        if why := compare_values(obj, loaded, "the loaded file"):
            raise Incorrect(why)
        if _listing(folder) != [path.name]:
            raise Incorrect(
                f"After saving, the folder holds {_listing(folder)}: the temporary "
                "file should have been renamed to `path`, leaving nothing else."
            )

    @staticmethod
    def _check_crash(answer, folder: Path, path: Path, good) -> None:
        """Save again with a `torch.save` that writes half a file, then fails."""
        real_save, seen = torch.save, []

        def crashing_save(obj, f, *args, **kwargs):
            seen.append((f, _listing(folder)))  # the temporary file already exists: where?
            buffer = io.BytesIO()
            real_save(obj, buffer)
            half = buffer.getvalue()[: len(buffer.getvalue()) // 2]
            if isinstance(f, (str, os.PathLike)):
                Path(f).write_bytes(half)
            else:
                f.write(half)
                f.flush()
            raise _SimulatedCrash("simulated crash halfway through torch.save")

        newer = {"model_state": {"w": torch.ones(5)}, "epoch": 9}
        with mock.patch.object(torch, "save", crashing_save):
            try:
                answer(newer, path)
            except _SimulatedCrash:
                pass
            else:
                if seen:
                    raise Incorrect(
                        "When `torch.save` failed halfway, your function did not "
                        "raise: re-raise the error (after cleaning up) so the "
                        "caller knows the save failed."
                    )
        if not seen:
            raise Incorrect(
                "Your function does not call `torch.save` (we simulate a crash "
                "inside it): write `obj` with `torch.save` to a temporary file."
            )
        target, listing = seen[0]
        name = target if isinstance(target, (str, os.PathLike)) else getattr(target, "name", None)
        if isinstance(name, (str, os.PathLike)):
            written = Path(name).resolve()
        else:  # a file object opened from a descriptor (os.fdopen): look for it in the folder
            new_files = [n for n in listing if n != path.name]
            written = (folder / new_files[0]).resolve() if new_files else None
        if written == path.resolve():
            raise Incorrect(
                "A crash halfway through `torch.save` left a damaged file at `path`, where the "
                "previous checkpoint was: write to a temporary file first, then `os.replace` it "
                "onto `path` once it is complete."
            )
        if written is None or written.parent != folder.resolve():
            raise Incorrect(
                "The temporary file is not in the folder of `path`: `os.replace` is atomic "
                "only within one file system, so create it next to the target "
                "(`tempfile.mkstemp(dir=path.parent)`)."
            )
        try:
            loaded = torch.load(path, weights_only=True)
        except Exception:
            raise Incorrect(
                "After a crash halfway through the save, `path` no longer loads: "
                "the previous checkpoint must stay intact until the new one is "
                "complete."
            ) from None
        if compare_values(good, loaded, "the file"):
            raise Incorrect(
                "After a crash halfway through the save, `path` no longer holds the "
                "previous checkpoint."
            )
        if _listing(folder) != [path.name]:
            raise Incorrect(
                f"After a crash halfway through the save the folder holds {_listing(folder)}: "
                "delete the temporary file when the save fails "
                "(`except BaseException: Path(tmp).unlink(missing_ok=True); raise`)."
            )


def _onecycle(step, total_steps, max_lr, *, shape="cosine", warmup=0.3, start_div=25, end_div=25e4):
    """The one-cycle lr with one typical mistake (the right one is the library's `scheduled_lr`)."""
    p = min(max(step / total_steps, 0.0), 1.0)
    start, end = max_lr / start_div if start_div else 0.0, max_lr / end_div if end_div else 0.0

    def between(a, b, t):
        if shape == "linear":
            return a + (b - a) * t
        return b + (a - b) * 0.5 * (1 + math.cos(math.pi * t))

    if warmup and p < warmup:
        return between(start, max_lr, p / warmup)
    return between(max_lr, end, (p - warmup) / (1 - warmup))


class OneCycleLr(Question):
    title = "The one-cycle learning rate at step `step` of `total_steps`"
    hints = (
        "Progress `p = step / total_steps`. The first 30% warm up from `max_lr / 25` to "
        "`max_lr`; the rest come down from `max_lr` to `max_lr / 25e4`.",
        "Both halves follow half a cosine, not a straight line: from `a` to `b` over `t` in "
        "[0, 1], `b + (a - b) * 0.5 * (1 + math.cos(math.pi * t))`.",
        "In the second half, `t = (p - 0.3) / 0.7`.",
    )
    solution_code = """\
def onecycle_lr(step, total_steps, max_lr):
    p = step / total_steps
    start, end = max_lr / 25, max_lr / 25e4
    def cosine(a, b, t):  # from a (t = 0) to b (t = 1)
        return b + (a - b) * 0.5 * (1 + math.cos(math.pi * t))
    if p < 0.3:
        return cosine(start, max_lr, p / 0.3)
    return cosine(max_lr, end, (p - 0.3) / 0.7)"""
    rtol = 1e-6
    atol = 1e-12
    mistakes = (
        Mistake(partial(_onecycle, shape="linear"), "The lr should follow half a cosine in each "
                "phase, not a straight line."),
        Mistake(partial(_onecycle, warmup=0), "There is no warm-up: the first 30% of the steps "
                "should climb from `max_lr / 25` to `max_lr`."),
        Mistake(partial(_onecycle, start_div=0), "The warm-up starts at `max_lr / 25`, not at 0."),
        Mistake(partial(_onecycle, end_div=0), "The schedule ends at `max_lr / 25e4`, not at 0."),
    )  # fmt: skip

    def reference(self, step, total_steps, max_lr):
        config = replace(TrainConfig(), lr=max_lr, scheduler="onecycle")
        return scheduled_lr(config, step / total_steps)

    def cases(self):
        steps = ((0, 100, 1e-2), (15, 100, 1e-2), (30, 100, 1e-2), (64, 200, 3e-3))
        steps += ((100, 100, 1e-2), (7, 40, 1e-3), (390, 400, 3e-3))  # (step, total, max_lr)
        yield from (Case(*step) for step in steps)


# ---- q5: read four runs, decide what to do next; the questionnaire ----------------------------


class NextStep(ChoiceQuestion):
    title = "Four runs, four decisions: what to do next"
    hints = (
        "Read the main head's training loss and the validation loss together: are both still "
        "falling? Does one turn up? Did either move at all? Did one become NaN?",
        "A loss that barely moves from the first epoch is a learning rate far too small; one "
        "that explodes is one far too large; a validation loss turning up while the training "
        "loss keeps falling is overfitting, and the best epoch is the one to keep.",
    )
    answers = {"a": "train longer", "b": "keep the best epoch", "c": "raise the lr",
               "d": "lower the lr"}  # fmt: skip
    reasons = {
        "a": "Both losses still fall and the mIoU still climbs at the last epoch: the run was "
        "stopped too early.",
        "b": "The validation loss turned up after epoch 8 while the training loss kept falling: "
        "overfitting. `fit` keeps the best epoch; early stopping would have ended the run there.",
        "c": "The loss hardly moved in 20 epochs: the steps are too small (the tutorial's "
        "constant 1e-4 from scratch).",
        "d": "A loss that grows and then becomes NaN: the steps are too large.",
    }
    solution_code = f"""\
def next_step():
    return {answers!r}"""


class TrainingQuiz(Questionnaire):
    hints = (
        "Every answer is in a cell or a paragraph of this notebook: the schedule's table, the "
        "loop, the early-stopping rule, What Adam does, Devices and mixed precision, the "
        "optional checkpoint section.",
    )
    answers = {1: 0.04, 2: 0.3, 3: 25, 4: "eval", 5: "zero_grad", 6: 5, 7: 1, 8: 65504,
               9: "last.pt", 10: "main head"}  # fmt: skip
    tolerances = {1: 1e-9, 2: 1e-9, 7: 0.01}
    reasons = {
        1: "One-cycle warms up from lr / 25: 0.04 x the peak.",
        2: "The warm-up takes the first 30% of training.",
        3: "200 images / 8 per batch = 25 full batches; drop_last drops nothing here.",
        4: "Validation switches to eval mode; `fit` calls `model.train()` at every epoch's start.",
        5: "`optimizer.zero_grad()`: gradients add up in `.grad` until cleared.",
        6: "The best, 0.6, is epoch 2 (epoch 4's tie is no improvement); epochs 3, 4, 5 bring "
        "nothing better, so it stops after epoch 5.",
        7: "After bias correction Adam's first step is lr * g / |g|: 1 lr per parameter, "
        "whatever the gradient's size.",
        8: "float16's largest finite value; above it, inf.",
        9: "`last.pt` holds the last epoch (and the best weights so far); resuming from "
        "`best.pt` redoes the epochs after it.",
        10: "Validation scores the main head alone; the all-heads total adds the coarse heads.",
    }


q1, q2, q3, q4 = TrainOneEpoch(), ShouldStop(), AtomicSave(), OneCycleLr()
q5, quiz = NextStep(), TrainingQuiz()

# ex.progress(): a table of this notebook's questions and their state; .to_json(path) saves it
progress = make_progress(__name__)
