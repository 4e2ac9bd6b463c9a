"""One training run with some of the recipe's choices overridden: how the defaults were chosen.

    .venv/bin/python benchmarks/choices.py DATA BUDGET_S ['{"working_scale": 0.2}']
    .venv/bin/python benchmarks/choices.py DATA none '{"num_epochs": 7, "scheduler": "cosine"}'

Runs what `python -m segtutor train --data DATA --time-budget BUDGET_S` runs (`prepare`, `fit`),
with the given `RecipeOptions` fields (a JSON object) changed (other keys are `TrainConfig`
fields, set on the config `prepare` made; BUDGET_S "none": no budget, so a fixed number of
epochs compares choices by what they learn per step, whatever else runs on the machine), then scores the best weights on the
whole validation set at the masks' own resolution (`evaluate`), and prints one JSON line: the
choices, the mIoU, the working scale and input mode, the epochs, how validation was done, the
precision `fit` chose, and the seconds each part took. docs/benchmarks.md ("How the recipe's
choices were made") quotes these lines with the commands that printed them.
"""

from __future__ import annotations

import json
import sys
import time

from segtutor.recipe import RecipeOptions, prepare
from segtutor.train import evaluate, fit

__all__ = ["main"]


def main(argv: list[str]) -> None:
    """Parse `DATA BUDGET_S [CHOICES_JSON]`, train, score, print one JSON line."""
    if len(argv) not in (2, 3):
        raise SystemExit(__doc__)
    data, budget = argv[0], None if argv[1] == "none" else float(argv[1])
    choices = json.loads(argv[2]) if len(argv) == 3 else {}
    recipe = {k: v for k, v in choices.items() if k in RecipeOptions.__dataclass_fields__}
    start = time.monotonic()
    run = prepare(data, time_budget_s=budget, progress=False, **recipe)
    for name, value in choices.items():
        if name not in recipe:
            if not hasattr(run.config, name):
                raise SystemExit(f"{name!r} is neither a RecipeOptions nor a TrainConfig field")
            setattr(run.config, name, value)
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
        "per_class_iou": [round(v, 3) for v in cm.iou().tolist()],
        "best_epoch": history.best_epoch,
        "val_miou": [round(v, 3) for v in history.val_miou],
        "validation": history.validation,
        "speed": history.speed,
        "prepare_s": round(prepared - start, 1),
        "fit_s": round(trained - prepared, 1),
        "evaluate_s": round(time.monotonic() - trained, 1),
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main(sys.argv[1:])
