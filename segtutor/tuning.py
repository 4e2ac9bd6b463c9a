"""Settings that depend on the machine, chosen by timing a few training steps of each.

Introduced in `04_training.ipynb`.

Whether bfloat16 autocast, the channels-last memory layout or fewer threads make a training step
faster depends on the processor, the model and the batch shape, in ways the CPU's flags do not
predict: on a Xeon that computes bfloat16 natively, bf16 autocast was no faster than float32 for
the course U-Net (docs/benchmarks.md). So `fastest_settings` times a few steps of every candidate
on a made-up batch of the training shape, on a copy of the model (the run itself is untouched:
no weight, no random number and no batch of the loader is used), and keeps the fastest. A
candidate must beat the first, the usual default, by `MARGIN` to be chosen, so that timing noise
does not flip the choice. The answer is cached per machine, model and batch shape in
`speed.json` under `cache_dir()`, so later runs that day pay nothing; an answer older than
`MAX_AGE_S` is timed again, because the same machine's answer changes (a shared or virtual
machine's neighbours, its firmware, its load): on the 2-core Xeon of docs/benchmarks.md an
answer cached the day before kept float32 for the course U-Net where bfloat16, timed again,
took about 20% less time per step.

Example:
    >>> settings = fastest_settings(model, loss_fn, (8, 3, 96, 96), num_classes=4, device=device)
    >>> settings.amp_dtype, settings.channels_last, settings.num_threads
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from segtutor.distributed import broadcast_from_main, is_main_process
from segtutor.jsonio import write_json
from segtutor.runtime import autocast_dtype, cpu_has_native_bf16

__all__ = [
    "MARGIN",
    "MAX_AGE_S",
    "SpeedSettings",
    "cache_dir",
    "candidates",
    "describe_settings",
    "fastest_settings",
    "settings_for",
    "time_steps",
]

# How much faster (as a fraction) a candidate must be than the first one to replace it.
MARGIN = 0.05
# Seconds a cached answer is trusted; after that it is timed again, inside `fit`'s time budget
# (7-11 s once a day, measured for the 32 steps of the eight-way timing; now 24 steps).
MAX_AGE_S = 24 * 3600


@dataclass(frozen=True)
class SpeedSettings:
    """How `fit` runs a step: autocast type (None: float32), memory layout, torch threads.

    Introduced in `04_training.ipynb`.
    """

    amp_dtype: torch.dtype | None
    channels_last: bool
    num_threads: int

    def to_dict(self) -> dict:
        """Plain values for the cache file and the run folder."""
        dtype = str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype else "float32"
        return {
            "precision": dtype,
            "channels_last": self.channels_last,
            "threads": self.num_threads,
        }

    @classmethod
    def from_dict(cls, data: dict) -> SpeedSettings:
        """Inverse of `to_dict`."""
        dtype = None if data["precision"] == "float32" else getattr(torch, data["precision"])
        return cls(dtype, bool(data["channels_last"]), int(data["threads"]))


def candidates(
    device: torch.device, amp: bool | None = None, channels_last: bool | None = None
) -> list[SpeedSettings]:
    """What is worth timing on `device`, the usual default first.

    Introduced in `04_training.ipynb`. On a CPU: float32, and bfloat16 where the CPU computes it
    natively (emulated bf16 is many times slower: not worth a try); on CUDA: float16 and
    float32; each in both memory layouts. `amp` or `channels_last` True/False keeps only
    the candidates that agree (None: both are tried).
    """
    threads = torch.get_num_threads()
    if device.type == "cuda":
        dtypes = [torch.float16, None]
    elif device.type == "cpu":
        dtypes = [None, torch.bfloat16] if cpu_has_native_bf16() else [None]
    else:
        return [SpeedSettings(None, False, threads)]  # MPS: nothing to choose between here
    return [
        SpeedSettings(dtype, layout, threads)
        for dtype in dtypes
        for layout in (True, False)
        if (amp is None or amp == (dtype is not None))
        and (channels_last is None or channels_last == layout)
    ]


def time_steps(
    model: nn.Module,
    loss_fn: nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    options: list[SpeedSettings],
    rounds: int = 3,
) -> list[float]:
    """Seconds per training step under each of `options`: the fastest of `rounds` timed steps.

    Introduced in `04_training.ipynb`. Each option steps its own copy of the model, once untimed
    first; then the options take turns, one step each per round, so that a burst of load from
    another program slows all of them alike instead of one.
    """
    copies = [_Stepper(model, images, s) for s in options]
    for stepper in copies:
        stepper.step(loss_fn, masks)  # warm-up: first-call set-up costs are not the step's
    times = [[] for _ in options]
    for _ in range(rounds):
        for stepper, seconds in zip(copies, times, strict=True):
            seconds.append(stepper.step(loss_fn, masks))
    return [min(seconds) for seconds in times]


class _Stepper:
    """A copy of the model that takes training steps under one `SpeedSettings`."""

    def __init__(self, model: nn.Module, images: torch.Tensor, settings: SpeedSettings):
        self.settings, self.model = settings, copy.deepcopy(model).train()
        self.images = images
        if settings.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            self.images = images.contiguous(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=0.0
        )  # weights stay as they are

    def step(self, loss_fn: nn.Module, masks: torch.Tensor) -> float:
        device, dtype = self.images.device, self.settings.amp_dtype
        threads = torch.get_num_threads()
        torch.set_num_threads(self.settings.num_threads)
        try:
            start = time.perf_counter()
            with torch.autocast(device.type, dtype, enabled=dtype is not None):
                loss = loss_fn(self.model(self.images), masks)
            self.optimizer.zero_grad(set_to_none=True)
            loss.float().backward()
            self.optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return time.perf_counter() - start
        finally:
            torch.set_num_threads(threads)


def fastest_settings(
    model: nn.Module,
    loss_fn: nn.Module,
    batch_shape: tuple[int, int, int, int],
    num_classes: int,
    device: torch.device,
    *,
    amp: bool | None = None,
    channels_last: bool | None = None,
    use_cache: bool = True,
) -> SpeedSettings:
    """The fastest of `candidates(device)` for one training step of `model` on `batch_shape`.

    Introduced in `04_training.ipynb`. On a CPU with more than one thread the winner is then
    timed on one thread against itself on all of them (a pair apart from the others), and
    keeps all of them unless one thread is faster by `MARGIN`.

    Args:
        model, loss_fn: as `fit` trains them (on `device`); only copies are stepped.
        batch_shape: `(N, 3, H, W)` of a training batch.
        num_classes: masks of the made-up batch hold classes `0..num_classes-1`.
        amp, channels_last: fixed choices (`TrainConfig.amp`, `.channels_last`); None: timed.
        use_cache: read and write the answer in `cache_dir() / "speed.json"`.
    """
    options = candidates(device, amp, channels_last)
    if not options:  # amp asked where there is no mixed precision: float32
        return SpeedSettings(None, bool(channels_last), torch.get_num_threads())
    key = _cache_key(model, batch_shape, num_classes, device) + f" | {amp} {channels_last}"
    path = cache_dir() / "speed.json"
    cache = _read_cache(path) if use_cache else {}
    entry = cache.get(key)
    if isinstance(entry, dict) and 0 <= time.time() - entry.get("timed_at", 0) < MAX_AGE_S:
        return SpeedSettings.from_dict(entry)
    generator = torch.Generator().manual_seed(0)  # made-up data: the global random state stays
    images = torch.randn(batch_shape, generator=generator).to(device)
    masks = torch.randint(0, num_classes, (batch_shape[0], *batch_shape[2:]), generator=generator)
    masks = masks.to(device)
    times = time_steps(model, loss_fn, images, masks, options)
    timed = list(zip(options, times, strict=True))
    best = _fastest(options, times)
    if device.type == "cpu" and torch.get_num_threads() > 1:
        # Then the winner on one thread against itself on all of them: a pair apart from the
        # others. All eight in one rotation made every step up to twice as slow and one thread
        # look as fast as two, which it is not (`benchmarks/thread_timing.py`, the course
        # U-Net's bfloat16 channels-last step on a 2-core EPYC: 0.050-0.052 s among its own
        # four, 0.112-0.117 s among all eight, where one thread took 0.109-0.120 s; paired,
        # 0.053-0.056 s on 2 threads and 0.066-0.078 s on 1; docs/benchmarks.md).
        pair = [best, SpeedSettings(best.amp_dtype, best.channels_last, 1)]
        pair_times = time_steps(model, loss_fn, images, masks, pair)
        timed += zip(pair, pair_times, strict=True)
        # The winner's fastest step of both stages: one slow patch in the pair's three steps
        # (the wide U-Net's 0.156 s among the four, 0.197 s in the pair) gave a whole ccp9 run
        # to one thread, 12 epochs in 120 s where two threads fit 15 (docs/benchmarks.md).
        pair_times[0] = min(pair_times[0], times[options.index(best)])
        best = _fastest(pair, pair_times)
    if use_cache:
        seconds = [o.to_dict() | {"seconds_per_step": t} for o, t in timed]
        cache[key] = best.to_dict() | {"timed_at": time.time(), "timed": seconds}
        write_json(path, cache)
    return best


def _fastest(options: list[SpeedSettings], times: list[float]) -> SpeedSettings:
    """The fastest option if it beats the first, the usual default, by `MARGIN`; else the first."""
    chosen = min(range(len(options)), key=times.__getitem__)
    return options[chosen] if times[chosen] <= (1 - MARGIN) * times[0] else options[0]


def settings_for(
    config, model: nn.Module, loss_fn: nn.Module, batch_size: int | None, device: torch.device
) -> SpeedSettings:
    """The settings `fit` trains with for a `TrainConfig`: measured where it leaves them open.

    Introduced in `04_training.ipynb`. `config.amp` / `config.channels_last` None are chosen by
    `fastest_settings` for batches of `batch_size` crops of `config.input_size`; without an
    input size (hand-made loaders) nothing is timed: mixed precision where the device computes
    it natively (`segtutor.runtime.autocast_dtype`), channels-last, the current thread count.
    Under torchrun rank 0 alone times (on a machine the other processes leave idle meanwhile)
    and every process takes its answer: DDP needs the same memory layout in every process.
    """
    amp, layout = config.amp, config.channels_last
    if (amp is None or layout is None) and config.input_size and batch_size:
        shape = (batch_size, 3, config.input_size, config.input_size)
        timed = None
        if is_main_process():
            timed = fastest_settings(
                model,
                loss_fn,
                shape,
                config.num_classes or 2,
                device,
                amp=amp,
                channels_last=layout,
            )
        return broadcast_from_main(timed)
    dtype = autocast_dtype(device) if amp is not False else None
    return SpeedSettings(dtype, layout is not False, torch.get_num_threads())


def describe_settings(settings: SpeedSettings) -> str:
    """One line for the history and the run folder, e.g. "float32, channels-last, 2 threads".

    Introduced in `04_training.ipynb`.
    """
    values = settings.to_dict()
    layout = "channels-last" if settings.channels_last else "contiguous"
    threads = f"{settings.num_threads} thread{'s' if settings.num_threads > 1 else ''}"
    return f"{values['precision']}, {layout}, {threads}"


def cache_dir() -> Path:
    """Where segtutor keeps what it measured: `$SEGTUTOR_CACHE_DIR`, else `~/.cache/segtutor`.

    Introduced in `04_training.ipynb`. Deleting it costs only a re-measurement.
    """
    folder = os.environ.get("SEGTUTOR_CACHE_DIR")
    if folder:
        return Path(folder)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "segtutor"


def _cache_key(model: nn.Module, batch_shape, num_classes: int, device: torch.device) -> str:
    """The machine (processor, its flags, threads, torch) and the step's shape, as one string."""
    if device.type == "cuda":
        machine = torch.cuda.get_device_name(device)
    else:
        machine = f"{platform.processor() or platform.machine()} {_cpu_flags_digest()}"
    parts = [
        machine,
        device.type,
        f"threads={torch.get_num_threads()}",
        torch.__version__,
        type(model).__name__,
        str(sum(p.numel() for p in model.parameters())),
        str(getattr(model, "deep_supervision", "")),
        "x".join(map(str, batch_shape)),
        str(num_classes),
        "threads timed in a pair",  # answers timed all eight at once, before 2026-12-03: not read
    ]
    return " | ".join(parts)


def _cpu_flags_digest() -> str:
    """The CPU model name and a digest of its flags (Linux), so another machine misses the cache."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.platform()
    lines = [line for line in info.splitlines() if line.startswith(("model name", "flags"))][:2]
    return hashlib.sha1("\n".join(lines).encode()).hexdigest()[:12]


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: measure again and rewrite it
    return data if isinstance(data, dict) else {}
