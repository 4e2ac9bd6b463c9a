"""How much of the class weights' bias to take off a trained model: one run, several shifts.

    .venv/bin/python benchmarks/prior_shift.py DATA BUDGET_S SEED [TAU ...]
    .venv/bin/python benchmarks/prior_shift.py ../shared/data/ccp9 120 0 0 0.5 1 1.5

Trains what `python -m segtutor train --data DATA --time-budget BUDGET_S --seed SEED
--prior-adjustment 0` trains (BUDGET_S "none": the default number of epochs), the class weights
`w` on and nothing taken off. Then, for each TAU (default 0, 0.5, 1, 1.5), it subtracts
`TAU * log(w)` from the bias of the U-Net's last layer and scores the same weights on the whole
validation set (`evaluate`). Every TAU is scored on one trained model, so the differences are
the shift's alone, free of the run-to-run noise of training. For the weighted cross-entropy,
TAU 1 removes the weights' bias exactly: what `PriorAdjustedLoss` (the recipe's
`prior_adjustment=1`) does during training instead. Prints one JSON line: the mIoU and
per-class IoU at each TAU. docs/benchmarks.md ("Class weights without their bias") quotes them.
"""

from __future__ import annotations

import json
import sys
import time

import torch

from segtutor.losses import PriorAdjustedLoss
from segtutor.recipe import prepare
from segtutor.train import evaluate, fit

__all__ = ["main"]


def main(argv: list[str]) -> None:
    """Parse `DATA BUDGET_S SEED [TAU ...]`, train once, score every shift, print one line."""
    if len(argv) < 3:
        raise SystemExit(__doc__)
    data, budget, seed = argv[0], None if argv[1] == "none" else float(argv[1]), int(argv[2])
    taus = [float(t) for t in argv[3:]] or [0.0, 0.5, 1.0, 1.5]
    run = prepare(data, time_budget_s=budget, seed=seed, progress=False, prior_adjustment=0.0)
    if run.config.class_weights is None or not hasattr(run.model, "outc"):
        raise SystemExit("needs the recipe's U-Net with class weights")
    start = time.monotonic()
    history = fit(run.model, run.train_loader, run.val_loader, run.config)
    line = {"data": data, "budget_s": budget, "seed": seed, "epochs": len(history),
            "fit_s": round(time.monotonic() - start, 1),
            "class_weights": [round(w, 3) for w in run.config.class_weights]}  # fmt: skip
    bias = run.model.outc.conv.bias
    trained = bias.detach().clone()
    for tau in taus:  # the offsets PriorAdjustedLoss adds in training, taken off here
        with torch.no_grad():
            bias.copy_(trained - PriorAdjustedLoss.offsets(run.config.class_weights, tau))
        cm = evaluate(run.model, run.val_loader, run.num_classes)
        line[f"tau {tau:g}"] = {"miou": round(cm.miou(), 4),
                                "iou": [round(v, 3) for v in cm.iou().tolist()]}  # fmt: skip
    print(json.dumps(line))


if __name__ == "__main__":
    main(sys.argv[1:])
