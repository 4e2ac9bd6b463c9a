"""Exercises that check themselves, one module per notebook (`ex01` ... `ex07`).

Introduced in `01_data.ipynb`.

In a notebook: `from segtutor.exercises import ex01 as ex`, then `ex.q1.check(my_fn)`,
`ex.q1.hint()`, `ex.q1.solution()`. How to write a question: see `segtutor.exercises.core`;
`compare` explains wrong values, `feedback` shows the verdict.
The student version of the notebooks is built by `python -m segtutor.exercises.student`.
"""

from segtutor.exercises.compare import compare_tensors, compare_values, describe
from segtutor.exercises.core import Case, Incorrect, Mistake, Question, questions
from segtutor.exercises.feedback import CheckResult

__all__ = [
    "Case",
    "CheckResult",
    "Incorrect",
    "Mistake",
    "Question",
    "compare_tensors",
    "compare_values",
    "describe",
    "questions",
]
