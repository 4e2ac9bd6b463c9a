"""The time-budget recipe for a fixed number of epochs: what a choice does per pass, whatever the
machine's speed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/budget_epochs.py DATA EPOCHS SEED ['{"batch_augment": false}']
    ... --heldout FOLDER   # also score the kept weights on FOLDER/val (images no run chose on)

A budgeted run's score depends on how many passes the machine fits into the budget, and on this
2-core machine that moved by a quarter from one run to the next (8 to 11 ccp9 epochs in 75 s,
docs/benchmarks.md). This runs what `python -m segtutor train --time-budget` trains (batches of
16, the first half of the passes at 2/3 of the size, bfloat16 and channels-last), but for
EPOCHS passes and on one thread, so that two runs take the same steps on any machine and a
choice is compared by what it learns per pass; the JSON object changes fields of `RecipeOptions`
(e.g. `"batch_augment": false`, `"batch_size": 8, "progressive_scale": 1` for the no-budget
recipe). Validation is on the whole validation set after every epoch (no budget to keep it to).
Prints one JSON line: the best validation mIoU (the epoch `fit` keeps), the last, the last six
epochs' scores and, with `--heldout`, the kept weights' mIoU on FOLDER/val.
docs/benchmarks.md ("Crops and flips only under a budget") quotes these lines.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from segtutor.data import SegmentationDataset
from segtutor.recipe import prepare, val_loader_for
from segtutor.train import evaluate, fit

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Parse, train for the epochs on one thread, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data")
    parser.add_argument("epochs", type=int)
    parser.add_argument("seed", type=int)
    parser.add_argument("choices", nargs="?", default="{}", help="RecipeOptions fields (JSON)")
    parser.add_argument("--heldout", help="a folder with val/images + val/masks to score on")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the same steps whatever else the machine runs
    recipe = dict(num_epochs=args.epochs, batch_size=16, progressive_scale=2 / 3, seed=args.seed)
    recipe |= json.loads(args.choices)
    run = prepare(args.data, progress=False, **recipe)
    run.config.amp, run.config.channels_last = True, True  # what the timing picks on this CPU
    start = time.monotonic()
    history = fit(run.model, run.train_loader, run.val_loader, run.config)
    line = {
        "data": args.data,
        "epochs": args.epochs,
        "seed": args.seed,
        "choices": json.loads(args.choices),
        "best": round(history.best_miou, 4),
        "last": round(history.val_miou[-1], 4),
        "last_six": [round(m, 3) for m in history.val_miou[-6:]],
        "fit_s": round(time.monotonic() - start),
    }
    if args.heldout:
        heldout = SegmentationDataset(f"{args.heldout}/val", num_classes=run.num_classes)
        loader = val_loader_for(
            heldout, run.input_mode, run.options.input_size, 16, scale=run.config.working_scale
        )
        cm = evaluate(run.model, loader, run.num_classes, amp_dtype=torch.bfloat16)
        line["heldout"] = round(cm.miou(), 4)
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
