"""Validation within a time budget (segtutor.fit_state, through segtutor.train.fit).

Under `TrainConfig.time_budget_s`, a validation set too slow for `val_share` of the budget is cut
to a fixed, evenly spread subset (`FitState.budget_val_loader`), and epochs are validated only
while validation keeps within the share, the first and the last always (`validation_due`);
`History.validation` says how it was done. Unvalidated epochs are NaN, never the best, and do not
count for early stopping; a resumed run knows which epochs were validated.

No test depends on real timing: the clock (`time.monotonic`) is a counter that the model moves
forward, a fixed number of seconds per training batch and per validated image.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset

from segtutor.config import History
from segtutor.data import make_loader
from segtutor.fit_state import FitState
from segtutor.metrics import ConfusionMatrix
from segtutor.runtime import seed_everything
from segtutor.train import TrainConfig, fit

NUM_CLASSES = 3
COLORS = torch.tensor([[0.1, 0.1, 0.1], [0.9, 0.2, 0.1], [0.1, 0.3, 0.9]])

# float32, contiguous, nothing timed (input_size None): fit's own set-up moves no clock
CONFIG = TrainConfig(
    num_epochs=6, lr=0.05, num_classes=NUM_CLASSES, progress=False, device="cpu",
    amp=False, channels_last=False, time_budget_s=100.0, val_share=0.15,
)  # fmt: skip


class Clock:
    """A stand-in for `time.monotonic`: it moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny tensors: one thread is faster, and spares a machine whose cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(time, "monotonic", clock)  # fit_state and train read time.monotonic()
    return clock


class SlowNet(nn.Module):
    """A 1x1 convolution whose every forward pass costs fake seconds: `train_s` per training
    batch, `val_s` per validated image."""

    def __init__(self, clock: Clock, train_s: float = 1.0, val_s: float = 0.3) -> None:
        super().__init__()
        seed_everything(0)
        self.conv = nn.Conv2d(3, NUM_CLASSES, kernel_size=1)
        self.num_classes = NUM_CLASSES
        self.clock, self.train_s, self.val_s = clock, train_s, val_s

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.clock.now += self.train_s if self.training else self.val_s * images.shape[0]
        return self.conv(images)


def colour_dataset(n: int, seed: int = 0, size: int = 8) -> TensorDataset:
    """Images whose colour gives the class, in 4x4 blocks (learnable by a 1x1 convolution)."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.randint(0, NUM_CLASSES, (n, size // 4, size // 4), generator=g)
    masks = masks.repeat_interleave(4, 1).repeat_interleave(4, 2)
    images = COLORS[masks].permute(0, 3, 1, 2) + 0.05 * torch.randn(n, 3, size, size, generator=g)
    return TensorDataset(images, masks)


def loaders(num_val: int = 40) -> tuple[DataLoader, DataLoader]:
    """12 training images in batches of 4 (3 steps an epoch), `num_val` validation images."""
    train = make_loader(colour_dataset(12), batch_size=4, shuffle=True, seed=0)
    return train, make_loader(colour_dataset(num_val, seed=1), batch_size=4)


def fit_state(config: TrainConfig, model: nn.Module | None = None, resume_from=None) -> FitState:
    model = model or nn.Conv2d(3, NUM_CLASSES, kernel_size=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    return FitState(config, (), model, optimizer, scaler, loaders()[0], resume_from)


def validated_epochs(history: History) -> list[int]:
    return [e for e, m in zip(history.epoch, history.val_miou, strict=True) if not math.isnan(m)]


# --- budget_val_loader: a fixed, evenly spread subset ------------------------------------------


def timer_of(seconds: list[float], seen: list[int]):
    """A `seconds_per_image(loader)` answering `seconds` in turn, noting each loader's size."""
    answers = iter(seconds)
    return lambda loader: seen.append(len(loader.dataset)) or next(answers)


@pytest.mark.parametrize(
    "per_image, expected",
    [
        (0.5, list(range(0, 40, 4))),  # 15% of 100 s / 3 = 5 s: 10 images at 0.5 s
        (2.0, list(range(0, 40, 5))),  # 2 affordable: never fewer than 8
        (0.3, [int(i * 2.5) for i in range(16)]),  # 16.7 affordable: 16, spread over the 40
    ],
)
def test_a_slow_validation_set_is_cut_to_an_evenly_spread_subset(
    clock, per_image, expected
) -> None:
    run = fit_state(CONFIG)
    val_loader = loaders()[1]
    seen: list[int] = []
    # the first pass is a warm-up: its (slow) time must not count
    subset = run.budget_val_loader(val_loader, timer_of([99.0, per_image], seen))
    assert seen == [4, 16]  # one batch to warm up, then four batches timed
    assert isinstance(subset.dataset, Subset) and list(subset.dataset.indices) == expected
    assert subset.dataset.dataset is val_loader.dataset
    assert subset.batch_size == val_loader.batch_size
    assert (run.val_images, run.val_total) == (len(expected), 40)
    first = next(iter(subset))[1]
    torch.testing.assert_close(first, torch.stack([val_loader.dataset[i][1] for i in expected[:4]]))


def test_a_fast_enough_validation_set_is_kept_whole(clock) -> None:
    run = fit_state(CONFIG)
    val_loader = loaders()[1]
    assert run.budget_val_loader(val_loader, timer_of([1.0, 0.01], [])) is val_loader
    assert run.val_images == run.val_total == 40


def test_a_small_validation_set_is_never_cut_below_its_size(clock) -> None:
    run = fit_state(CONFIG)
    subset = run.budget_val_loader(loaders(num_val=5)[1], timer_of([1.0, 10.0], []))
    assert len(subset.dataset) == 5 and run.val_images == run.val_total == 5


@pytest.mark.parametrize("change", [dict(time_budget_s=None), dict(val_share=None)])
def test_without_a_budget_or_share_nothing_is_timed_or_cut(clock, change) -> None:
    run = fit_state(replace(CONFIG, **change))
    val_loader = loaders()[1]

    def timer(loader):
        raise AssertionError("timed a validation pass without a budget")

    assert run.budget_val_loader(val_loader, timer) is val_loader
    assert run.val_images == run.val_total == 40


# --- validation_due: the schedule ---------------------------------------------------------------


def simulate(run: FitState, clock: Clock, train_s: float, val_s: float) -> list[int]:
    """fit's epoch loop without a model: epochs of `train_s`, validation passes of `val_s`."""
    for epoch in range(1, run.config.num_epochs + 1):
        run.start_epoch(epoch)
        clock.now += train_s
        if run.validation_due():
            # the rule: what validation took so far, plus one more pass, within the share
            elapsed = clock.now - run.start
            if run.config.time_budget_s and run.validated and epoch != run.config.num_epochs:
                share = run.config.val_share * (elapsed + run.val_seconds)
                assert run.val_spent + run.val_seconds <= share
            clock.now += val_s
            run.note_validation(val_s)
        run.history.append(epoch, 1.0, math.nan, None, lr=0.1, seconds=train_s)
    return run.validated


def test_validation_skips_epochs_but_never_the_first_or_the_last(clock) -> None:
    run = fit_state(replace(CONFIG, num_epochs=20, time_budget_s=1000.0))
    validated = simulate(run, clock, train_s=1.0, val_s=0.5)
    # after epoch 1, 1.0 s of validation fits in 15% of 7.0 s first at epoch 6; 1.5 s in 10.5
    assert validated[:3] == [1, 6, 9] and validated[-1] == 20
    assert len(validated) < 20
    assert run.val_spent == pytest.approx(0.5 * len(validated))
    run.val_images = run.val_total = 40  # what budget_val_loader notes
    assert run.describe_validation() == (
        f"on all 40 validation images, after {len(validated)} of 20 epochs "
        "(within 15% of the time budget)"
    )


def test_a_run_that_stops_early_still_ends_on_a_validated_epoch(clock) -> None:
    run = fit_state(replace(CONFIG, num_epochs=20))
    run.start_epoch(1)
    clock.now += 1.0
    assert run.validation_due()
    run.note_validation(5.0)
    run.start_epoch(2)
    clock.now += 1.0
    assert not run.validation_due()  # 10 s of validation in 7 s: far over 15%
    run.stop_reason = "time_budget"
    assert run.validation_due()  # but the run ends here: its last score must be measured


def test_without_a_budget_every_epoch_is_validated_on_all_images(clock) -> None:
    run = fit_state(replace(CONFIG, time_budget_s=None))
    assert simulate(run, clock, train_s=1.0, val_s=50.0) == [1, 2, 3, 4, 5, 6]
    run.val_images = run.val_total = 40
    assert run.describe_validation() == "on all 40 validation images, after every epoch"


# --- through fit -----------------------------------------------------------------------------------


def test_fit_validates_a_subset_some_epochs_and_says_so(clock, tmp_path) -> None:
    model = SlowNet(clock, train_s=1.0, val_s=0.3)
    config = replace(CONFIG, checkpoint_path=str(tmp_path / "best.pt"))
    history = fit(model, *loaders(), config)
    # a pass over 16 images takes 4.8 s: after epoch 1, never again within 15% until the last
    assert validated_epochs(history) == [1, 6]
    assert history.validation == (
        "on a fixed subset of 16 of the 40 validation images, after 2 of 6 epochs "
        "(within 15% of the time budget)"
    )
    assert all(math.isnan(history.val_miou[e - 1]) for e in (2, 3, 4, 5))
    assert all(math.isnan(v) for e in (2, 3, 4, 5) for v in history.val_iou[e - 1])
    assert len(history.val_iou[1]) == NUM_CLASSES
    assert history.best_epoch in (1, 6) and not math.isnan(history.best_miou)
    assert torch.load(tmp_path / "best.pt", weights_only=True)["epoch"] in (1, 6)
    assert history.stop_reason == "num_epochs"


def test_fit_without_a_budget_validates_every_epoch_on_everything(clock) -> None:
    config = replace(CONFIG, num_epochs=3, time_budget_s=None)
    history = fit(SlowNet(clock, val_s=5.0), *loaders(), config)
    assert validated_epochs(history) == [1, 2, 3]
    assert history.validation == "on all 40 validation images, after every epoch"


def test_early_stopping_counts_validated_epochs_only(clock) -> None:
    # lr 0: the model never changes, so no validation beats the first. Validation passes of 4 s
    # fit into 15% of the time first again after epoch 15: patience 1 stops there, not at epoch
    # 2, whose NaN is no validation at all.
    config = replace(CONFIG, lr=0.0, num_epochs=30, time_budget_s=200.0, early_stopping_patience=1)
    history = fit(SlowNet(clock, train_s=1.0, val_s=0.1), *loaders(), config)
    assert history.stop_reason == "early_stopping"
    assert validated_epochs(history) == [1, 15] and len(history) == 15
    assert history.best_epoch == 1
    assert history.validation.startswith("on all 40 validation images, after 2 of 15 epochs")


def test_an_unvalidated_epoch_is_nan_and_never_the_best() -> None:
    history = History()
    cm = ConfusionMatrix(NUM_CLASSES)
    cm.update(torch.tensor([[0, 1], [2, 2]]), torch.tensor([[0, 1], [2, 1]]))
    history.append(1, 1.0, 0.5, cm, lr=0.1, seconds=1.0)
    history.append(2, 0.9, math.nan, None, lr=0.1, seconds=1.0)
    assert math.isnan(history.val_miou[1]) and math.isnan(history.val_pixel_accuracy[1])
    assert len(history.val_iou[1]) == NUM_CLASSES and all(map(math.isnan, history.val_iou[1]))
    assert history.best_epoch == 1 and history.best_miou == pytest.approx(float(cm.miou()))
    again = History.from_dict(history.to_dict())
    assert history.to_dict()["val_miou"][1] is None and math.isnan(again.val_miou[1])
    first = History()
    first.append(1, 1.0, math.nan, None, lr=0.1, seconds=1.0)
    assert first.val_iou == [[]] and first.best_epoch == 1 and math.isnan(first.best_miou)


def test_keep_best_ignores_nan(clock) -> None:
    run = fit_state(CONFIG)
    assert run.keep_best(0.4)
    best = {k: v.clone() for k, v in run.best_state.items()}
    with torch.no_grad():
        run.model.weight.add_(1.0)
    assert not run.keep_best(math.nan)
    for key, value in best.items():
        torch.testing.assert_close(run.best_state[key], value)
    assert run.best_miou == 0.4


# --- resume -----------------------------------------------------------------------------------------


def stop_at(epoch: int):
    return lambda e, history: e == epoch  # a callback: True stops the run


def test_resume_restores_which_epochs_were_validated(clock, tmp_path) -> None:
    config = replace(CONFIG, last_checkpoint_path=str(tmp_path / "last.pt"))
    first = fit(SlowNet(clock), *loaders(), config, callbacks=[stop_at(3)])
    assert validated_epochs(first) == [1] and len(first) == 3
    restored = fit_state(config, SlowNet(clock), resume_from=tmp_path / "last.pt")
    assert restored.validated == [1]
    resumed = fit(SlowNet(clock), *loaders(), config, resume_from=tmp_path / "last.pt")
    assert resumed.epoch == [1, 2, 3, 4, 5, 6]
    assert validated_epochs(resumed)[0] == 1 and validated_epochs(resumed)[-1] == 6
    assert math.isnan(resumed.val_miou[1]) and math.isnan(resumed.val_miou[2])
    # the count covers the epochs of the first part too
    assert f"after {len(validated_epochs(resumed))} of 6 epochs" in resumed.validation


def test_a_resumed_run_validates_the_epochs_the_uninterrupted_one_does(clock, tmp_path) -> None:
    whole = fit(SlowNet(clock), *loaders(), CONFIG)
    config = replace(CONFIG, last_checkpoint_path=str(tmp_path / "last.pt"))
    fit(SlowNet(clock), *loaders(), config, callbacks=[stop_at(3)])
    resumed = fit(SlowNet(clock), *loaders(), config, resume_from=tmp_path / "last.pt")
    assert validated_epochs(resumed) == validated_epochs(whole) == [1, 6]
