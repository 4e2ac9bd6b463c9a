"""Exercises that check themselves, one module per notebook (`ex01` ... `ex07`).

Introduced in `01_data.ipynb`.

In a notebook: `from segtutor.exercises import ex01 as ex`, then `ex.q1.check(my_fn)`,
`ex.q1.hint()`, `ex.q1.solution()`, and `ex.progress()` for the state of every question. How to
write a question: see `segtutor.exercises.core`; `compare` explains wrong values, `feedback`
shows the verdict, `progress` tabulates the verdicts.

Two commands (`python -m segtutor.exercises --help`): `student` builds the student version of
the notebooks (`student.py`), `grade` runs a folder of submitted notebooks and writes a grade
sheet (`grade.py`).
"""

from segtutor.exercises.compare import compare_tensors, compare_values, describe
from segtutor.exercises.core import Case, Incorrect, Mistake, Question, questions
from segtutor.exercises.feedback import CheckResult
from segtutor.exercises.progress import Progress, make_progress, progress_of

__all__ = [
    "Case",
    "CheckResult",
    "Incorrect",
    "Mistake",
    "Progress",
    "Question",
    "compare_tensors",
    "compare_values",
    "describe",
    "make_progress",
    "progress_of",
    "questions",
]
