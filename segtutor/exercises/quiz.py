"""Questions answered by a dict: `ChoiceQuestion` (a decision) and `Questionnaire` (a notebook's
questions whose answer is a number or a choice).

Introduced in `07_real_data.ipynb`.

A learner returns `{item: answer}` from a function of no arguments; each item is checked on its
own and every missed item is named with the reason its right answer is right::

    class Quiz(Questionnaire):
        answers = {1: 255, 2: "nearest", 3: 0.69}
        tolerances = {3: 0.01}  # a number read off a plot: within 0.01 is right
        reasons = {1: "255 means ignore everywhere.", 2: "...", 3: "-log(0.5)."}


    quiz = Quiz()  # in the notebook: ex.quiz.check(questionnaire)

Strings are compared without case or surrounding spaces; a tuple of strings accepts any of them;
numbers must be equal unless `tolerances` gives the item an absolute tolerance; a tuple of
numbers (a shape) is answered by any sequence of the same numbers (a tuple, a list, a
`torch.Size`); `"nan"` is also answered by `float("nan")`; `True` is not the number 1.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from segtutor.exercises.compare import short
from segtutor.exercises.core import Case, Incorrect, Question

__all__ = ["ChoiceQuestion", "Questionnaire"]


class ChoiceQuestion(Question):
    """A question answered by a function of no arguments returning `{item: answer}`.

    Introduced in `07_real_data.ipynb`.

    Class attributes (besides `Question`'s):
        answers: item -> the right answer: a number, a string, a tuple of accepted strings, or
            a tuple of numbers (a shape).
        reasons: item -> why the right answer is right, shown when the item is missed.
        tolerances: item -> absolute tolerance for a number answer (exact when absent).
    """

    answers: dict = {}
    reasons: dict = {}
    tolerances: dict = {}

    def reference(self) -> dict:
        """The right answers, `{item: answer}`."""
        return dict(self.answers)

    def cases(self):
        """One case: the learner's function is called with no arguments."""
        yield Case(label="your answers")

    def compare(self, expected: dict, got: Any, name: str) -> str | None:
        """Each item on its own: None when all are right, else every missed item and why."""
        if not isinstance(got, dict):
            raise Incorrect(f"Return a dict, {{item: answer}}; got {short(got)}.")
        missing = [k for k in expected if k not in got]
        if missing:
            raise Incorrect(f"No answer for {', '.join(map(repr, missing))} yet.")
        wrong = [k for k in expected if not self.same(k, expected[k], got[k])]
        if not wrong:
            return None
        notes = [f"{k!r}: {short(got[k])} is not right. {self.reasons.get(k, '')}" for k in wrong]
        return f"{len(wrong)} of {len(expected)} not right:\n" + "\n".join(notes)

    def same(self, item: Any, expected: Any, got: Any) -> bool:
        """Whether `got` answers `item` as `expected` does (see the module's rules)."""
        if _alternatives(expected):
            return any(self.same(item, one, got) for one in expected)
        if isinstance(expected, tuple):  # a shape: the same numbers in the same order
            return (
                isinstance(got, tuple | list)
                and len(got) == len(expected)
                and all(self.same(item, e, g) for e, g in zip(expected, got, strict=True))
            )
        if expected == "nan" and _is_number(got) and math.isnan(float(got)):
            return True  # float("nan") says it as well as the string
        if isinstance(expected, str):
            return isinstance(got, str) and got.strip().lower() == expected.lower()
        if not _is_number(got):
            return False
        return abs(float(got) - expected) <= self.tolerances.get(item, 0)


class Questionnaire(ChoiceQuestion):
    """A notebook's questionnaire: the questions whose answer is a number or a choice.

    Introduced in `07_real_data.ipynb`.

    Subclass it with `answers`, `reasons` (and `tolerances`, `hints`); the worked solution is
    written from `answers` unless `solution_code` is given.
    """

    title = "Questionnaire: the answers that are a number or a choice"

    def __init__(self) -> None:
        super().__init__()
        if not self.solution_code:
            first = {k: v[0] if _alternatives(v) else v for k, v in self.answers.items()}
            self.solution_code = f"def questionnaire():\n    return {first!r}"


def _alternatives(answer: Any) -> bool:
    """A tuple of strings: any of them is right."""
    return isinstance(answer, tuple) and all(isinstance(a, str) for a in answer)


def _is_number(value: Any) -> bool:
    """A real number (a Python, numpy or 0-d torch scalar), never a bool."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
