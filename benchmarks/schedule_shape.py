"""`choices.py` with the one-cycle schedule reshaped: how long the warm-up, how the lr decays.

    .venv/bin/python benchmarks/schedule_shape.py --warmup 0.1 --decay linear DATA 75 '{"seed": 0}'

The recipe's "onecycle" warms up over the first 30% of training (cosine, from lr/25 to lr),
then decays by a cosine to lr/25e4 (`segtutor.config.scheduled_lr`). This script replaces that
function, for one run, with a warm-up over `--warmup` of the run and a `--decay` of "cosine" or
"linear" (to the same end), then runs `benchmarks/choices.py` with the remaining arguments and
prints its JSON line with the shape added. docs/benchmarks.md ("Short-budget levers") quotes it.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import segtutor.fit_state as fit_state
from segtutor.config import TrainConfig, _cosine_between

sys.path.insert(0, str(Path(__file__).parent))
import choices  # noqa: E402 (a sibling script, importable once its folder is on the path)

__all__ = ["main", "reshaped"]


def reshaped(warmup: float, decay: str):
    """A `scheduled_lr(config, progress)` warming up over `warmup`, then decaying by `decay`."""

    def lr_at(config: TrainConfig, progress: float) -> float:
        p = min(max(progress, 0.0), 1.0)
        start, end = config.lr / 25, config.lr / 25e4
        if p < warmup:
            return _cosine_between(start, config.lr, p / warmup)
        t = (p - warmup) / (1 - warmup)
        if decay == "cosine":
            return _cosine_between(config.lr, end, t)
        return config.lr + (end - config.lr) * t

    return lr_at


def main(argv: list[str]) -> None:
    """Parse the shape, patch the schedule, run `choices.main` on the rest, print one line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=float, default=0.3, help="share of training (0-1)")
    parser.add_argument("--decay", choices=("cosine", "linear"), default="cosine")
    args, rest = parser.parse_known_args(argv)
    fit_state.scheduled_lr = reshaped(args.warmup, args.decay)  # what `fit` calls every batch
    with redirect_stdout(StringIO()) as out:
        choices.main(rest)
    line = json.loads(out.getvalue())
    print(json.dumps({"warmup": args.warmup, "decay": args.decay, **line}))


if __name__ == "__main__":
    main(sys.argv[1:])
