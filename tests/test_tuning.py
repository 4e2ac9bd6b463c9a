"""Tests for segtutor.tuning: which precision, memory layout and thread count a run trains with.

What is timed (`candidates`), which is chosen (`fastest_settings`: the fastest, only if it beats
the first by `MARGIN`), the cache in `$SEGTUTOR_CACHE_DIR/speed.json` (read instead of timing,
a corrupt one rewritten), that timing leaves the run untouched (random state, weights, threads),
when `settings_for` times nothing, and that `fit` records what ran in `History.speed`.
Except for one real timing on a tiny model, `time_steps` is replaced by fixed answers.
"""

from __future__ import annotations

import json
import random
import time

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from segtutor import tuning
from segtutor.data import make_loader
from segtutor.runtime import autocast_dtype
from segtutor.train import TrainConfig, fit
from segtutor.tuning import (
    MARGIN,
    SpeedSettings,
    candidates,
    describe_settings,
    fastest_settings,
    settings_for,
)

CPU = torch.device("cpu")
BF16 = torch.bfloat16
SHAPE = (4, 3, 16, 16)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A cache folder of each test's own, a CPU that computes bfloat16 natively, two threads."""
    monkeypatch.setenv("SEGTUTOR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(tuning, "cpu_has_native_bf16", lambda: True)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield tmp_path / "cache" / "speed.json"
    torch.set_num_threads(threads)


class FakeTimer:
    """Stands in for `time_steps`: seconds per step from `times(option)`; notes every call."""

    def __init__(self, times=lambda option: 1.0):
        self.times, self.calls = times, []

    def __call__(self, model, loss_fn, images, masks, options, rounds=3):
        self.calls.append((tuple(images.shape), list(options)))
        return [self.times(option) for option in options]


def never_timed(*args, **kwargs):
    raise AssertionError("time_steps was called")


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Conv2d(3, 2, kernel_size=1)


def choose(monkeypatch, times, **kwargs) -> tuple[SpeedSettings, FakeTimer]:
    timer = FakeTimer(times)
    monkeypatch.setattr(tuning, "time_steps", timer)
    settings = fastest_settings(tiny_model(), nn.CrossEntropyLoss(), SHAPE, 2, CPU, **kwargs)
    return settings, timer


# --- candidates -------------------------------------------------------------------------------


def test_candidates_on_a_cpu_with_native_bf16() -> None:
    options = candidates(CPU)
    assert [(o.amp_dtype, o.channels_last) for o in options] == [
        (None, True), (None, False), (BF16, True), (BF16, False),
    ]  # fmt: skip
    assert all(o.num_threads == 2 for o in options)
    assert [o.amp_dtype for o in candidates(CPU, amp=False)] == [None, None]
    assert [o.amp_dtype for o in candidates(CPU, amp=True)] == [BF16, BF16]
    assert [o.channels_last for o in candidates(CPU, channels_last=False)] == [False, False]
    assert candidates(CPU, amp=True, channels_last=True) == [SpeedSettings(BF16, True, 2)]


def test_candidates_without_native_bf16_or_on_other_devices(monkeypatch) -> None:
    monkeypatch.setattr(tuning, "cpu_has_native_bf16", lambda: False)
    assert [o.amp_dtype for o in candidates(CPU)] == [None, None]  # emulated bf16: never
    assert candidates(CPU, amp=True) == []
    cuda = candidates(torch.device("cuda"), channels_last=False)
    assert [o.amp_dtype for o in cuda] == [torch.float16, None]
    assert candidates(torch.device("cuda"), amp=False, channels_last=True) == [
        SpeedSettings(None, True, 2)
    ]
    assert candidates(torch.device("mps")) == [SpeedSettings(None, False, 2)]


def test_amp_asked_where_there_is_none_is_float32(monkeypatch) -> None:
    monkeypatch.setattr(tuning, "cpu_has_native_bf16", lambda: False)
    settings, timer = choose(monkeypatch, lambda o: 1.0, amp=True, channels_last=True)
    assert settings == SpeedSettings(None, True, 2) and timer.calls == []


# --- fastest_settings: the choice ---------------------------------------------------------------


def test_the_winner_alone_is_then_timed_on_one_thread(monkeypatch) -> None:
    fast = SpeedSettings(BF16, False, 2)
    _, timer = choose(monkeypatch, lambda o: 0.5 if o == fast else 1.0)
    (shape, four), (_, pair) = timer.calls
    assert shape == SHAPE and four == candidates(CPU)  # all on the machine's threads
    assert pair == [fast, SpeedSettings(BF16, False, 1)]  # then the winner against itself


def test_one_thread_is_not_timed_where_there_is_only_one(monkeypatch) -> None:
    torch.set_num_threads(1)
    settings, timer = choose(monkeypatch, lambda o: 1.0)
    ((_, options),) = timer.calls
    assert all(o.num_threads == 1 for o in options) and settings == SpeedSettings(None, True, 1)


@pytest.mark.parametrize(
    "times, chosen",
    [
        ({SpeedSettings(None, False, 2): 1 - MARGIN / 2}, SpeedSettings(None, True, 2)),  # noise
        ({SpeedSettings(None, False, 2): 1 - 2 * MARGIN}, SpeedSettings(None, False, 2)),
        ({SpeedSettings(None, True, 2): 0.5}, SpeedSettings(None, True, 2)),  # the first: kept
        # one thread wins only against its own setting on two, and only by the margin
        (
            {SpeedSettings(BF16, True, 2): 0.8, SpeedSettings(BF16, True, 1): 0.5},
            SpeedSettings(BF16, True, 1),
        ),
        (
            {
                SpeedSettings(BF16, True, 2): 0.8,
                SpeedSettings(BF16, True, 1): 0.8 * (1 - MARGIN / 2),
            },
            SpeedSettings(BF16, True, 2),
        ),
        ({SpeedSettings(BF16, True, 1): 0.1}, SpeedSettings(None, True, 2)),  # its pair lost
    ],
)
def test_the_fastest_wins_only_by_the_margin(monkeypatch, times, chosen) -> None:
    settings, _ = choose(monkeypatch, lambda o: times.get(o, 1.0))
    assert settings == chosen


@pytest.mark.parametrize("one_thread, chosen", [(0.185, 2), (0.14, 1)])
def test_the_winner_keeps_its_fastest_step_of_both_stages(monkeypatch, one_thread, chosen) -> None:
    # The wide U-Net on ccp9 (2-core EPYC): bfloat16 channels-last won the four at 0.156 s; in
    # the pair it took 0.197 s and one thread 0.185 s, which won a whole run for one thread.
    stages = iter([[0.228, 0.329, 0.156, 0.158], [0.197, one_thread]])
    monkeypatch.setattr(tuning, "time_steps", lambda *args, **kwargs: next(stages))
    settings = fastest_settings(tiny_model(), nn.CrossEntropyLoss(), SHAPE, 2, CPU)
    assert settings == SpeedSettings(BF16, True, chosen)


def test_a_slower_first_candidate_loses_to_a_clearly_faster_one(monkeypatch) -> None:
    times = {SpeedSettings(None, True, 2): 2.0, SpeedSettings(BF16, False, 2): 1.5}
    settings, _ = choose(monkeypatch, lambda o: times.get(o, 3.0))
    assert settings == SpeedSettings(BF16, False, 2)


# --- the cache ----------------------------------------------------------------------------------


def test_the_answer_is_cached_and_read_without_timing(monkeypatch, cache) -> None:
    fast = SpeedSettings(BF16, False, 1)
    times = {SpeedSettings(BF16, False, 2): 0.8, fast: 0.5}
    settings, timer = choose(monkeypatch, lambda o: times.get(o, 1.0))
    assert settings == fast and len(timer.calls) == 2
    saved = json.loads(cache.read_text())
    ((key, entry),) = saved.items()
    assert "x".join(map(str, SHAPE)) in key
    assert {k: entry[k] for k in ("precision", "channels_last", "threads")} == fast.to_dict()
    assert len(entry["timed"]) == 6 and min(t["seconds_per_step"] for t in entry["timed"]) == 0.5

    monkeypatch.setattr(tuning, "time_steps", never_timed)
    model = tiny_model()
    assert fastest_settings(model, nn.CrossEntropyLoss(), SHAPE, 2, CPU) == fast
    # another question is another entry: timed again
    other, timer = choose(monkeypatch, lambda o: 1.0, amp=False)
    assert len(timer.calls) == 2 and other == SpeedSettings(None, True, 2)
    assert len(json.loads(cache.read_text())) == 2


def test_an_old_answer_is_timed_again(monkeypatch, cache) -> None:
    fast = SpeedSettings(BF16, False, 1)
    times = {SpeedSettings(BF16, False, 2): 0.8, fast: 0.5}
    choose(monkeypatch, lambda o: times.get(o, 1.0))
    saved = json.loads(cache.read_text())
    ((key, entry),) = saved.items()
    assert time.time() - entry["timed_at"] < 60
    entry["timed_at"] -= tuning.MAX_AGE_S - 60  # a day old, less a minute: still trusted
    cache.write_text(json.dumps(saved))
    monkeypatch.setattr(tuning, "time_steps", never_timed)
    assert fastest_settings(tiny_model(), nn.CrossEntropyLoss(), SHAPE, 2, CPU) == fast
    entry["timed_at"] -= 120  # now older than a day: the machine may have changed, time again
    cache.write_text(json.dumps(saved))
    settings, timer = choose(monkeypatch, lambda o: 1.0)  # today float32 is as fast
    assert len(timer.calls) == 2 and settings == SpeedSettings(None, True, 2)
    ((_, entry),) = json.loads(cache.read_text()).items()
    assert entry["precision"] == "float32" and time.time() - entry["timed_at"] < 60
    del entry["timed_at"]  # an entry from before timed_at existed counts as old
    cache.write_text(json.dumps({key: entry}))
    _, timer = choose(monkeypatch, lambda o: 1.0)
    assert len(timer.calls) == 2


def test_use_cache_false_neither_reads_nor_writes(monkeypatch, cache) -> None:
    choose(monkeypatch, lambda o: 1.0)
    before = cache.read_text()
    _, timer = choose(monkeypatch, lambda o: 1.0, use_cache=False, channels_last=False)
    assert len(timer.calls) == 2 and cache.read_text() == before


@pytest.mark.parametrize("content", ["{not json", "[1, 2, 3]", ""])
def test_a_corrupt_cache_is_ignored_and_rewritten(monkeypatch, cache, content) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_text(content)
    settings, timer = choose(monkeypatch, lambda o: 1.0)
    assert len(timer.calls) == 2 and settings == SpeedSettings(None, True, 2)
    assert len(json.loads(cache.read_text())) == 1  # valid again, with the new answer


def test_speed_settings_round_trip() -> None:
    for settings in (SpeedSettings(None, True, 2), SpeedSettings(BF16, False, 1)):
        assert SpeedSettings.from_dict(settings.to_dict()) == settings
    assert describe_settings(SpeedSettings(BF16, False, 1)) == "bfloat16, contiguous, 1 thread"


# --- timing leaves the run alone ----------------------------------------------------------------


def test_real_timing_changes_no_random_state_weights_or_threads() -> None:
    torch.set_num_threads(1)  # a tiny model: one thread, four candidates
    model = tiny_model().eval()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    torch_state, py_state, np_state = (
        torch.get_rng_state(),
        random.getstate(),
        np.random.get_state(),
    )
    settings = fastest_settings(model, nn.CrossEntropyLoss(), (2, 3, 8, 8), 2, CPU, use_cache=False)
    assert settings in candidates(CPU)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == py_state
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state, strict=True))
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key])
    assert model.weight.is_contiguous() and not model.training
    assert torch.get_num_threads() == 1


def test_real_time_steps_gives_one_time_per_option() -> None:
    torch.set_num_threads(1)
    options = [SpeedSettings(None, False, 1), SpeedSettings(None, True, 1)]
    images, masks = torch.randn(2, 3, 8, 8), torch.randint(0, 2, (2, 8, 8))
    times = tuning.time_steps(tiny_model(), nn.CrossEntropyLoss(), images, masks, options, 2)
    assert len(times) == 2 and all(t > 0 for t in times)


# --- settings_for and fit ---------------------------------------------------------------------


def test_settings_for_times_nothing_without_an_input_size(monkeypatch) -> None:
    monkeypatch.setattr(tuning, "time_steps", never_timed)
    model, loss = tiny_model(), nn.CrossEntropyLoss()
    assert settings_for(TrainConfig(), model, loss, 8, CPU) == SpeedSettings(
        autocast_dtype(CPU), True, 2
    )
    assert settings_for(TrainConfig(input_size=16), model, loss, None, CPU).num_threads == 2
    fixed = TrainConfig(input_size=16, amp=False, channels_last=False)
    assert settings_for(fixed, model, loss, 8, CPU) == SpeedSettings(None, False, 2)
    assert settings_for(TrainConfig(amp=False), model, loss, 8, CPU).amp_dtype is None


def test_settings_for_times_batches_of_crops_within_the_fixed_choices(monkeypatch) -> None:
    timer = FakeTimer()
    monkeypatch.setattr(tuning, "time_steps", timer)
    config = TrainConfig(input_size=16, num_classes=2, channels_last=False)
    settings_for(config, tiny_model(), nn.CrossEntropyLoss(), 4, CPU)
    (shape, options), (_, pair) = timer.calls
    assert shape == (4, 3, 16, 16)
    assert options and not any(o.channels_last for o in options + pair)


def colour_loaders():
    g = torch.Generator().manual_seed(0)
    masks = torch.randint(0, 2, (8, 8, 8), generator=g)
    images = masks[:, None].float().expand(-1, 3, -1, -1) + 0.1 * torch.randn(8, 3, 8, 8)
    data = TensorDataset(images, masks)
    return make_loader(data, batch_size=4, shuffle=True), make_loader(data, batch_size=4)


def test_fit_records_what_ran_in_history_speed(monkeypatch) -> None:
    monkeypatch.setattr(tuning, "time_steps", never_timed)
    config = TrainConfig(
        num_epochs=1, num_classes=2, progress=False, device="cpu", amp=False, channels_last=False
    )
    history = fit(tiny_model(), *colour_loaders(), config)
    assert history.speed == "float32, contiguous, 2 threads"


def test_fit_trains_with_the_timed_choice_and_restores_the_threads(monkeypatch) -> None:
    fast = SpeedSettings(None, False, 1)
    times = {SpeedSettings(None, False, 2): 0.8, fast: 0.5}
    timer = FakeTimer(lambda o: times.get(o, 1.0))
    monkeypatch.setattr(tuning, "time_steps", timer)
    config = TrainConfig(num_epochs=1, num_classes=2, progress=False, device="cpu", input_size=8)
    threads = []
    during = lambda epoch, history: threads.append(torch.get_num_threads())  # noqa: E731
    history = fit(tiny_model(), *colour_loaders(), config, callbacks=[during])
    assert threads == [1]  # trained on the chosen thread count
    assert len(timer.calls) == 2 and timer.calls[0][0] == (4, 3, 8, 8)
    assert history.speed == describe_settings(fast) == "float32, contiguous, 1 thread"
    assert torch.get_num_threads() == 2


def test_the_speed_timing_counts_in_the_time_budget(monkeypatch, tmp_path) -> None:
    import segtutor.train

    real = segtutor.train.settings_for

    def slow_timing(*args, **kwargs):
        time.sleep(0.4)  # what timing the candidates costs, on the clock
        return real(*args, **kwargs)

    monkeypatch.setattr(segtutor.train, "settings_for", slow_timing)
    path = tmp_path / "last.pt"
    config = TrainConfig(
        num_epochs=1, num_classes=2, progress=False, device="cpu", amp=False,
        channels_last=False, time_budget_s=600, last_checkpoint_path=str(path),
    )  # fmt: skip
    fit(tiny_model(), *colour_loaders(), config)
    elapsed = torch.load(path, weights_only=True)["scheduler_state"]["elapsed_s"]
    assert elapsed >= 0.4  # the budget's clock ran while the speed was timed


def test_under_torchrun_every_process_takes_rank_0s_timed_answer(monkeypatch) -> None:
    rank_0s = SpeedSettings(None, False, 1)
    monkeypatch.setattr(tuning, "time_steps", FakeTimer())
    monkeypatch.setattr(tuning, "broadcast_from_main", lambda value: rank_0s)  # as rank 1 sees it
    config = TrainConfig(input_size=8, num_classes=2)
    assert settings_for(config, tiny_model(), nn.CrossEntropyLoss(), 4, CPU) is rank_0s
