"""Exercises of 09_capstone.ipynb: the `check-data` findings (`ex.q1`), `best_epoch` of a
history (`ex.q2`), what to do next (a decision, `ex.q3`), and `self_check`, the rubric's checks
on a finished run folder.

Introduced in `09_capstone.ipynb`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from segtutor.checkpoint import load_checkpoint
from segtutor.errors import CheckpointError
from segtutor.exercises.compare import compare_values
from segtutor.exercises.core import Case, Mistake, Question
from segtutor.exercises.feedback import CheckResult
from segtutor.exercises.progress import make_progress
from segtutor.exercises.quiz import ChoiceQuestion

__all__ = ["q1", "q2", "q3", "self_check", "progress"]


class CheckDataFindings(ChoiceQuestion):
    title = "What check-data found in data_samples/cells"
    hints = (
        "Every answer is in the report `check-data` printed in section 1: the pairs per split, "
        "the classes, and the table of class pixel frequencies of the training split.",
    )
    solution_code = """\
def findings():
    return {"train pairs": 144, "val pairs": 36, "classes": 2, "rarest": "cell",
            "cell share": 17.2, "exit code": 0}"""
    answers = {"train pairs": 144, "val pairs": 36, "classes": 2, "rarest": "cell",
               "cell share": 17.2, "exit code": 0}  # fmt: skip
    tolerances = {"cell share": 0.1}
    reasons = {
        "train pairs": "cells/train holds 144 image/mask pairs.",
        "val pairs": "cells/val holds 36.",
        "classes": "background and cell (dataset.json names them).",
        "rarest": "cell: about a sixth of the pixels.",
        "cell share": "17.22% of the training pixels are cell (the frequency table).",
        "exit code": "0: usable, no problems.",
    }


def _best(history: dict) -> tuple[int, float]:
    """(epoch, val mIoU) of the best validated epoch; the first of equals."""
    scored = [(m, e) for e, m in zip(history["epoch"], history["val_miou"], strict=True)
              if m is not None and not math.isnan(m)]  # fmt: skip
    best_miou = max(m for m, _ in scored)
    return next(e for m, e in scored if m == best_miou), best_miou


class BestEpoch(Question):
    title = "The best epoch of a history: (epoch number, its val mIoU), unvalidated epochs skipped"
    hints = (
        "`history['epoch']` holds the epoch numbers (from 1) and `history['val_miou']` one "
        "score per epoch, None where that epoch was not validated (under a time budget).",
        "Skip the None entries, take the largest score, and return the epoch *number* stored "
        "beside it (not its position in the list); the first one if two are equal.",
    )
    solution_code = """\
def best_epoch(history):
    scored = [(m, e) for e, m in zip(history["epoch"], history["val_miou"]) if m is not None]
    best_miou = max(m for m, _ in scored)
    return next(e for m, e in scored if m == best_miou), best_miou"""
    mistakes = (
        Mistake(lambda h: (h["epoch"][-1], h["val_miou"][-1]),
                "That is the last epoch; `fit` keeps the best one in best.pt."),
        Mistake(lambda h: (_best(h)[0] - 1, _best(h)[1]),
                "That is the epoch's position in the list; return the number in `history['epoch']`."),
    )  # fmt: skip

    def reference(self, history):
        return _best(history)

    def cases(self):
        g = np.random.default_rng(self.seed)
        scores = np.round(g.uniform(0.3, 0.8, size=8), 3).tolist()
        yield Case({"epoch": list(range(1, 9)), "val_miou": scores}, label="8 epochs")
        scores = [None, 0.41, None, 0.55, None, 0.55, None, 0.52]
        label = "8 epochs validated every second one (None between), a tie at 0.55"
        yield Case({"epoch": list(range(1, 9)), "val_miou": scores}, label=label)
        yield Case({"epoch": [5, 6, 7], "val_miou": [0.7, 0.72, 0.71]}, label="a resumed run")

    def compare(self, expected, got, name):
        if isinstance(got, list):
            got = tuple(got)
        return compare_values(expected, got, name)


class NextStep(ChoiceQuestion):
    title = "For each finding, what to do next"
    hints = (
        "The choices: 'train longer', '--binary-255', 'fix the masks', 'more data'.",
        "Ask first whether the data is wrong (a check-data problem), then whether the model has "
        "stopped learning.",
    )
    solution_code = """\
def next_step():
    return {"a": "train longer", "b": "--binary-255", "c": "fix the masks", "d": "more data"}"""
    answers = {"a": "train longer", "b": "--binary-255", "c": "fix the masks", "d": "more data"}
    reasons = {
        "a": "A validation score still rising at the last epoch has not converged.",
        "b": "Masks of 0 and 255 hide every foreground pixel as 'ignore' (01, optional A).",
        "c": "A label 7 in a two-class set is an annotation error: no training option fixes it.",
        "d": "A kind of image never seen in training needs examples of it (07's experiment).",
    }


def _problems(run: Path, threshold: float, predictions: Path | None) -> list[str]:
    """What the rubric's automatic checks find wrong with a run folder (and its predictions)."""
    problems = []
    try:
        checkpoint = load_checkpoint(run / "best.pt")
    except (CheckpointError, FileNotFoundError, OSError) as error:
        return [f"{run.name}/best.pt does not load: {error}"]
    try:
        miou = json.loads((run / "metrics.json").read_text())["miou"]
    except (OSError, ValueError, KeyError):
        return [f"{run.name}/metrics.json is missing or has no 'miou': run train to the end."]
    if not miou >= threshold:
        problems.append(
            f"val mIoU {miou:.3f} is below {threshold}: train longer, or check the data."
        )
    num_classes = len(checkpoint.get("class_names") or []) or None
    for mask_path in sorted(predictions.glob("*.png")) if predictions else []:
        if mask_path.stem.endswith(("_overlay", "_confidence")):
            continue
        values = np.unique(np.asarray(Image.open(mask_path)))
        if num_classes and values.max() >= num_classes:
            problems.append(f"{mask_path.name} holds {values.max()}, not a class index.")
    if predictions and not (predictions / "areas.csv").exists():
        problems.append(f"{predictions.name}/areas.csv is missing: run predict to the end.")
    return problems


def self_check(run, threshold: float, predictions=None, *, show: bool = True) -> CheckResult:
    """The rubric's automatic checks on a run folder: best.pt loads, metrics.json's val mIoU is
    at least `threshold`, and (given the predict output folder) every mask holds class indices
    and areas.csv exists. Shows the verdict like `Question.check`; never raises.

    Introduced in `09_capstone.ipynb`.
    """
    problems = _problems(Path(run), threshold, Path(predictions) if predictions else None)
    if problems:
        result = CheckResult("incorrect", "Not yet:\n" + "\n".join(f"- {p}" for p in problems))
    else:
        result = CheckResult("correct", f"Correct: the run passes the automatic checks "
                                        f"(val mIoU at least {threshold}).")  # fmt: skip
    if show:
        result.show()
    return result


q1, q2, q3 = CheckDataFindings(), BestEpoch(), NextStep()

# ex.progress(): a table of this notebook's questions and their state; .to_json(path) saves it
progress = make_progress(__name__)
