"""What benchmarks/compare.py runs, decided before anything runs: budgets, datasets, the lr pick.

Pure functions over the command line's values, so that the tests can check the plan (which runs,
at which budget and learning rate) without training anything; compare.py runs what they decide.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = [
    "DEFAULT_BUDGETS",
    "PICK_BUDGET",
    "QUICK_BUDGETS",
    "parse_floats",
    "parse_named_data",
    "pick_budget",
    "run_order",
    "segtutor_budgets",
    "sweep_lr",
]

DEFAULT_BUDGETS = "60,120,300"
QUICK_BUDGETS = "4,8"
PICK_BUDGET = 120.0  # where the peers' learning rate is picked, when it is among the budgets


def parse_floats(text: str | None, option: str) -> list[float]:
    """`"60,120"` -> `[60.0, 120.0]`; a usage message (SystemExit) for anything else."""
    try:
        values = [float(v) for v in (text or "").split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"{option}: expected numbers separated by commas, got {text!r}") from None
    if any(not math.isfinite(v) or v <= 0 for v in values):
        raise SystemExit(f"{option}: every value must be a positive number, got {text!r}")
    return values


def parse_named_data(values: Sequence[str], reserved: Iterable[str]) -> dict[str, str]:
    """`["voc=/data/VOC", ...]` (from repeated `--data NAME=PATH`) -> `{"voc": "/data/VOC"}`.

    A name must be new (not one of `reserved`, the built-in datasets) and given once, so that
    every row of the report names one folder.
    """
    named: dict[str, str] = {}
    reserved = set(reserved)
    for value in values:
        name, sep, path = value.partition("=")
        name = name.strip()
        if not sep or not name or not path:
            raise SystemExit(f"--data: expected NAME=PATH, got {value!r}")
        if name in reserved or name in named:
            raise SystemExit(f"--data: the name {name!r} is already taken; choose another")
        named[name] = path
    return named


def pick_budget(budgets: Sequence[float], requested: float | None = None) -> float:
    """Where the peers' learning rate is picked: `requested`, else `PICK_BUDGET` when it is one
    of the budgets, else the smallest budget (the pick costs one run per candidate rate)."""
    if requested is not None:
        return float(requested)
    return PICK_BUDGET if PICK_BUDGET in budgets else min(budgets)


def segtutor_budgets(budgets: Sequence[float], real: bool, extra: Sequence[float]) -> list[float]:
    """segtutor's budgets: everyone's, plus `extra` on real datasets (the budget the issue's
    "reach the peer's 300 s mIoU within 75 s" target is about)."""
    return sorted({*budgets, *(extra if real else ())})


def sweep_lr(
    run_one: Callable[[float], dict[str, Any]], lrs: Sequence[float]
) -> tuple[float | None, list[dict[str, Any]]]:
    """Run `run_one(lr)` for every `lr`; pick the one with the highest `"miou"`.

    Every run is kept and marked: `"picked"` is True for the chosen one only. A run without an
    mIoU (failed, or NaN) never wins; ties go to the first rate listed. Returns
    `(picked lr or None when no run scored, runs)`.
    """
    runs = [run_one(lr) for lr in lrs]

    def score(run: dict[str, Any]) -> float:
        miou = run.get("miou")
        return -math.inf if miou is None or math.isnan(miou) else miou

    best = max(range(len(runs)), key=lambda i: score(runs[i]), default=None)
    if best is not None and score(runs[best]) == -math.inf:
        best = None
    for i, run in enumerate(runs):
        run["picked"] = i == best
    return (None if best is None else lrs[best]), runs


def run_order(
    pipelines: Sequence[str],
    budgets: Sequence[float],
    seg_budgets: Sequence[float],
    peers: Iterable[str],
    swept_budget: float,
) -> list[tuple[str, float]]:
    """The `(pipeline, budget)` runs of one dataset after the lr sweep, shortest budget first.

    segtutor runs at `seg_budgets`, the others at `budgets`; a peer is not run again at
    `swept_budget`, where its sweep's picked run is already that budget's row.
    """
    peers = set(peers)
    order = []
    for budget in sorted({*budgets, *seg_budgets}):
        for pipeline in pipelines:
            wanted = seg_budgets if pipeline == "segtutor" else budgets
            if budget not in wanted or (pipeline in peers and budget == swept_budget):
                continue
            order.append((pipeline, budget))
    return order
