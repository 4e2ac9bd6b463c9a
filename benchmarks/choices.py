"""One training run with some of the recipe's choices overridden: how the defaults were chosen.

    .venv/bin/python benchmarks/choices.py DATA BUDGET_S ['{"working_scale": 0.2}']

Runs what `python -m segtutor train --data DATA --time-budget BUDGET_S` runs (`prepare`, `fit`),
with the given `RecipeOptions` fields (a JSON object) changed, then scores the best weights on the
whole validation set at the masks' own resolution (`evaluate`), and prints one JSON line: the
choices, the mIoU, the working scale and input mode, the epochs, how validation was done, the
precision `fit` chose, and the seconds each part took. docs/benchmarks.md ("How the recipe's
choices were made") quotes these lines with the commands that printed them.
"""

from __future__ import annotations

import json
import sys
import time

from segtutor.recipe import prepare
from segtutor.train import evaluate, fit

__all__ = ["main"]


def main(argv: list[str]) -> None:
    """Parse `DATA BUDGET_S [CHOICES_JSON]`, train, score, print one JSON line."""
    if len(argv) not in (2, 3):
        raise SystemExit(__doc__)
    data, budget = argv[0], float(argv[1])
    choices = json.loads(argv[2]) if len(argv) == 3 else {}
    start = time.monotonic()
    run = prepare(data, time_budget_s=budget, progress=False, **choices)
    prepared = time.monotonic()
    history = fit(run.model, run.train_loader, run.val_loader, run.config)
    trained = time.monotonic()
    cm = evaluate(run.model, run.val_loader, run.num_classes)
    line = {
        "data": data,
        "budget_s": budget,
        "choices": choices,
        "miou": round(cm.miou(), 4),
        "working_scale": run.config.working_scale,
        "input_mode": run.input_mode,
        "epochs": len(history),
        "best_epoch": history.best_epoch,
        "validation": history.validation,
        "speed": history.speed,
        "prepare_s": round(prepared - start, 1),
        "fit_s": round(trained - prepared, 1),
        "evaluate_s": round(time.monotonic() - trained, 1),
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main(sys.argv[1:])
