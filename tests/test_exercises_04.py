"""Tests for segtutor.exercises.ex04: the solutions pass, typical mistakes fail with a useful note."""

import contextlib
import math
import os
import tempfile
from pathlib import Path

import torch
from choice_checks import assert_solutions_pass_and_wrong_items_are_named

from segtutor.exercises import ex04 as ex

# ---- q1: train_one_epoch --------------------------------------------------------------------


def train_one_epoch(model, loader, loss_fn, optimizer):
    device = next(model.parameters()).device
    model.train()
    loss_sum, num_images = 0.0, 0
    for images, masks in loader:
        images, masks = images.to(device), masks.to(device)
        loss = loss_fn(model(images), masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * images.shape[0]
        num_images += images.shape[0]
    return loss_sum / num_images


def _epoch(
    model, loader, optimizer, loss_fn, train=True, zero_grad=True, step=True, average="images"
):
    if train:
        model.train()
    losses, sizes = [], []
    for images, masks in loader:
        loss = loss_fn(model(images), masks)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        if step:
            optimizer.step()
        losses.append(loss.item())
        sizes.append(images.shape[0])
    if average == "batches":
        return sum(losses) / len(losses)
    return sum(loss * n for loss, n in zip(losses, sizes, strict=True)) / sum(sizes)


def test_q1_solution_passes():
    assert ex.q1.check(train_one_epoch, show=False)


def test_q1_takes_the_arguments_in_the_librarys_order():
    # the notebook checks the loop it wrote against segtutor.train.train_one_epoch: the exercise
    # must ask for the same signature, (model, loader, loss_fn, optimizer)
    from segtutor.train import train_one_epoch as library_epoch

    assert ex.q1.check(library_epoch, show=False)
    swapped = ex.q1.check(lambda m, lo, o, f: train_one_epoch(m, lo, f, o), show=False)
    assert not swapped


def test_q1_tensor_loss_is_accepted():
    def tensor_mean(model, loader, loss_fn, optimizer):
        return torch.tensor(train_one_epoch(model, loader, loss_fn, optimizer))

    assert ex.q1.check(tensor_mean, show=False)


def test_q1_forgot_zero_grad():
    result = ex.q1.check(lambda m, lo, f, o: _epoch(m, lo, o, f, zero_grad=False), show=False)
    assert not result and "zero_grad" in result.message and "sum of the gradients" in result.message


def test_q1_forgot_model_train():
    result = ex.q1.check(lambda m, lo, f, o: _epoch(m, lo, o, f, train=False), show=False)
    assert not result and "model.train()" in result.message and "eval mode" in result.message


def test_q1_forgot_step():
    result = ex.q1.check(lambda m, lo, f, o: _epoch(m, lo, o, f, step=False), show=False)
    assert not result and "optimizer.step()" in result.message


def test_q1_mean_over_batches():
    result = ex.q1.check(lambda m, lo, f, o: _epoch(m, lo, o, f, average="batches"), show=False)
    assert not result and "last batch is smaller" in result.message


def test_q1_no_return():
    def no_return(model, loader, loss_fn, optimizer):
        train_one_epoch(model, loader, loss_fn, optimizer)

    result = ex.q1.check(no_return, show=False)
    assert not result and "None" in result.message


def test_q1_wrong_signature_explained():
    result = ex.q1.check(lambda model, loader: 0.0, show=False)
    assert not result and "4 parameter(s)" in result.message


def test_q1_not_attempted():
    def train_one_epoch(model, loader, loss_fn, optimizer):
        raise NotImplementedError("your code here")

    assert ex.q1.check(train_one_epoch, show=False).status == "not_attempted"


# ---- q2: should_stop ------------------------------------------------------------------------


def should_stop(val_mious, patience):
    best, bad = -math.inf, 0
    for miou in val_mious:
        if miou > best:
            best, bad = miou, 0
        else:
            bad += 1
    return bad >= patience


def test_q2_solution_passes():
    assert ex.q2.check(should_stop, show=False)


def test_q2_index_of_the_best_passes():
    def by_index(val_mious, patience):
        if not val_mious:
            return False
        best_at = val_mious.index(max(val_mious))
        return len(val_mious) - 1 - best_at >= patience

    assert ex.q2.check(by_index, show=False)


def test_q2_compared_with_previous_epoch():
    def versus_previous(val_mious, patience):
        bad = 0
        for before, now in zip([-1.0, *val_mious], val_mious, strict=False):
            bad = 0 if now > before else bad + 1
        return bad >= patience

    result = ex.q2.check(versus_previous, show=False)
    assert not result and "BEST" in result.message


def test_q2_ties_count_as_improvement():
    def ties(val_mious, patience):
        best, bad = -math.inf, 0
        for miou in val_mious:
            if miou >= best:
                best, bad = miou, 0
            else:
                bad += 1
        return bad >= patience

    result = ex.q2.check(ties, show=False)
    assert not result and "`>=`" in result.message


def test_q2_off_by_one():
    result = ex.q2.check(lambda v, p: should_stop(v, p + 1), show=False)
    assert not result and "Off by one" in result.message


def test_q2_lower_is_better():
    result = ex.q2.check(lambda v, p: should_stop([-x for x in v], p), show=False)
    assert not result and "higher mIoU is better" in result.message


def test_q2_crash_on_empty_history_is_explained():
    def crashes(val_mious, patience):
        best_at = val_mious.index(max(val_mious))
        return len(val_mious) - 1 - best_at >= patience

    result = ex.q2.check(crashes, show=False)
    assert not result and "ValueError" in result.message


def test_q2_not_attempted():
    def should_stop(val_mious, patience): ...

    assert ex.q2.check(should_stop, show=False).status == "not_attempted"


# ---- q3: atomic_save ------------------------------------------------------------------------


def atomic_save(obj, path):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def test_q3_solution_passes():
    assert ex.q3.check(atomic_save, show=False)


def test_q3_named_temporary_file_passes():
    def with_named(obj, path):
        path = Path(path)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as f:
            try:
                torch.save(obj, f)
            except BaseException:
                f.close()
                Path(f.name).unlink()
                raise
        os.replace(f.name, path)

    assert ex.q3.check(with_named, show=False)


def test_q3_plain_torch_save():
    result = ex.q3.check(lambda obj, path: torch.save(obj, path), show=False)
    assert not result and "damaged file at `path`" in result.message


def test_q3_temporary_file_left_behind():
    def no_cleanup(obj, path):
        path = Path(path)
        tmp = path.with_suffix(".tmp")
        torch.save(obj, tmp)
        os.replace(tmp, path)

    result = ex.q3.check(no_cleanup, show=False)
    assert not result and "delete the temporary file" in result.message


def test_q3_temporary_file_elsewhere():
    def elsewhere(obj, path):
        fd, tmp = tempfile.mkstemp()
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(obj, f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    result = ex.q3.check(elsewhere, show=False)
    assert not result and "folder of `path`" in result.message and "os.replace" in result.message


def test_q3_swallowed_error():
    def swallows(obj, path):
        with contextlib.suppress(OSError):
            atomic_save(obj, path)

    result = ex.q3.check(swallows, show=False)
    assert not result and "re-raise" in result.message


def test_q3_saved_the_wrong_thing():
    result = ex.q3.check(lambda obj, path: atomic_save(obj["model_state"], path), show=False)
    assert not result and "loaded file" in result.message


def test_q3_not_attempted():
    def atomic_save(obj, path):
        raise NotImplementedError

    assert ex.q3.check(atomic_save, show=False).status == "not_attempted"


# ---- q4: onecycle_lr ------------------------------------------------------------------------


def onecycle_lr(step, total_steps, max_lr, shape="cosine", warmup=0.3):
    p = step / total_steps
    start, end = max_lr / 25, max_lr / 25e4

    def between(a, b, t):
        if shape == "linear":
            return a + (b - a) * t
        return b + (a - b) * 0.5 * (1 + math.cos(math.pi * t))

    if warmup and p < warmup:
        return between(start, max_lr, p / warmup)
    return between(max_lr, end, (p - warmup) / (1 - warmup))


def test_q4_solution_passes():
    assert ex.q4.check(onecycle_lr, show=False)


def test_q4_matches_torch_onecycle_at_the_peak():
    # torch's OneCycleLR follows the same curve (pct_start=0.3, div 25, final_div 1e4).
    assert math.isclose(onecycle_lr(30, 100, 1e-2), 1e-2)


def test_q4_linear():
    result = ex.q4.check(lambda s, t, m: onecycle_lr(s, t, m, shape="linear"), show=False)
    assert not result and "cosine" in result.message


def test_q4_no_warmup():
    result = ex.q4.check(lambda s, t, m: onecycle_lr(s, t, m, warmup=0), show=False)
    assert not result and "warm-up" in result.message


def test_q4_not_attempted():
    def onecycle_lr(step, total_steps, max_lr):
        raise NotImplementedError

    assert ex.q4.check(onecycle_lr, show=False).status == "not_attempted"


# ---- q5 (a decision) and the questionnaire --------------------------------------------------


def test_q5_and_quiz_solutions_pass_and_a_wrong_item_is_named():
    assert_solutions_pass_and_wrong_items_are_named(ex.q5, ex.quiz)


def test_quiz_numbers_match_the_library():
    from segtutor.config import TrainConfig, scheduled_lr
    from segtutor.train import should_stop

    config = TrainConfig()
    assert math.isclose(ex.quiz.answers[1], scheduled_lr(config, 0.0) / config.lr)
    assert scheduled_lr(config, ex.quiz.answers[2]) == config.lr  # the peak
    mious = [0.5, 0.6, 0.59, 0.6, 0.58]
    assert should_stop(mious, 3) and not should_stop(mious[:4], 3)  # stops after epoch 5
    assert float(torch.tensor(65504.0).half()) == 65504 and torch.tensor(65520.0).half().isinf()
    # Adam's first step is lr per parameter, whatever the gradient's size
    w = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    opt = torch.optim.Adam([w], lr=0.1)
    (w * torch.tensor([1e-3, 1e3])).sum().backward()
    opt.step()
    assert torch.allclose(1 - w.detach(), torch.tensor([0.1, 0.1]), atol=1e-4)
