"""Exercises that check themselves: `Question`, its hidden `Case`s and its table of `Mistake`s.

Introduced in `01_data.ipynb`.

A notebook author adds a question to `segtutor/exercises/exNN.py` in a few declarative lines::

    class CountPixels(Question):
        title = "Count the pixels of one class"
        hints = ("`mask == c` is a boolean tensor.", "`.sum()` counts True values; `int()` it.")
        solution_code = "def count_pixels(mask, c):\\n    return int((mask == c).sum())"
        mistakes = (Mistake(lambda mask, c: int((mask != c).sum()), "`==`, not `!=`."),)

        def reference(self, mask, c):  # the right answer, on any input
            return int((mask == c).sum())

        def cases(self):  # hidden inputs, never shown in the notebook
            yield Case(torch.randint(0, 3, (4, 5), generator=self.generator()), c=1)


    q1 = CountPixels()

A learner then runs `ex.q1.check(count_pixels)`, `ex.q1.hint()`, `ex.q1.hint(2)`,
`ex.q1.solution()`. `check` never raises on a wrong answer: it shows "Correct" or what is wrong
and why, and returns a `CheckResult` (truthy when correct, also kept as `question.last_result`).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import torch

from segtutor.exercises.compare import a_type, compare_values, describe, same_value
from segtutor.exercises.feedback import (
    CheckResult,
    explain_exception,
    is_stub,
    raised_by_learner,
    show,
)

__all__ = ["Case", "Incorrect", "Mistake", "Question", "questions"]


class Incorrect(Exception):
    """Raise from `Question.run` or `Question.compare` to report a wrong answer with a message.

    Introduced in `01_data.ipynb`.
    """


class Case:
    """One hidden input: the positional and keyword arguments the answer is called with.

    Introduced in `01_data.ipynb`.

    `Case(mask, 1)` calls `answer(mask, 1)`; `label` replaces the automatic description of the
    inputs in messages (useful when the inputs are large, e.g. "a 64x64 mask with no class 2").
    """

    __slots__ = ("args", "kwargs", "label")

    def __init__(self, *args: Any, label: str | None = None, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.label = label

    def __repr__(self) -> str:
        named = [f"{k}={describe(v)}" for k, v in self.kwargs.items()]
        return f"Case({', '.join([describe(a) for a in self.args] + named)})"


class Mistake(NamedTuple):
    """A typical wrong answer: `answer` reproduces it (same signature as `reference`), `note`
    says what to change. When a wrong answer gives what `answer` gives, the note is shown.

    Introduced in `01_data.ipynb`.
    """

    answer: Callable[..., Any]
    note: str


class Question:
    """Base class of one exercise; subclass it, set the attributes, write `reference` and `cases`.

    Introduced in `01_data.ipynb`.

    Class attributes:
        title: one line naming the task, shown with every verdict.
        hints: shown one at a time by `hint(n)`, easiest first.
        solution_code: the worked solution, shown by `solution()`.
        expects_function: True (the default) when the answer is a function called on `cases()`;
            False when it is a value compared with `reference()`.
        atol, rtol: tolerances for floating values.
        allow_numpy: accept a numpy array where the reference returns a tensor (and vice versa).
        check_inplace: report a function that modifies its inputs in place.
        seed: seeds `generator()`, so hidden cases are the same on every run and machine.
        mistakes: `Mistake`s tried in order on a wrong answer; the first one that gives the
            learner's output (within `atol`/`rtol`, any dtype) adds its note.
        mistakes_on_all_cases: match a mistake on the outputs of every case at once (for
            yes/no answers, where one case matches many mistakes).

    While checking, `self.case` is the case being checked (its original inputs, even if the
    learner's function modified its copy) and `self.answer` the learner's answer.
    """

    title: str = "Exercise"
    hints: Sequence[str] = ()
    solution_code: str = ""
    expects_function: bool = True
    atol: float = 1e-5
    rtol: float = 1e-4
    allow_numpy: bool = False
    check_inplace: bool = True
    seed: int = 0
    mistakes: Sequence[Mistake] = ()
    mistakes_on_all_cases: bool = False

    def __init__(self) -> None:
        self.last_result: CheckResult | None = None
        self.case: Case | None = None
        self.answer: Any = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.title}>"

    # What a question author writes: `reference` and `cases`, the rest when the default won't do.

    def reference(self, *args: Any, **kwargs: Any) -> Any:
        """The right answer: called like the learner's function, or with no arguments for values."""
        raise NotImplementedError(f"{type(self).__name__} must define reference()")

    def cases(self) -> Iterable[Case | tuple]:
        """Hidden inputs (a `Case` or a tuple of positional arguments each); not for values."""
        return ()

    def compare(self, expected: Any, got: Any, name: str) -> str | None:
        """Why `got` is wrong, or None when it is right. Override for a custom criterion."""
        return compare_values(expected, got, name, self.atol, self.rtol, self.allow_numpy)

    def diagnose(self, expected: Any, got: Any) -> str | None:
        """What to change, added to `compare`'s explanation of a wrong `got`; or None.

        An exception here only means no note: a diagnosis may assume `got` has the right type.
        """
        return None

    def run(self, answer: Callable[..., Any], case: Case) -> Any:
        """Call the learner's function on one case. Override for e.g. a class to instantiate."""
        try:
            signature = inspect.signature(answer)
        except (TypeError, ValueError):  # builtins without a signature: just try the call
            return answer(*case.args, **case.kwargs)
        try:
            signature.bind(*case.args, **case.kwargs)
        except TypeError as error:
            n = len(case.args) + len(case.kwargs)
            raise Incorrect(
                f"Your function cannot be called with {n} argument(s): {error}. "
                f"It should look like `def {getattr(answer, '__name__', 'f')}(...)` with "
                f"{n} parameter(s)."
            ) from None
        return answer(*case.args, **case.kwargs)

    def explain_error(self, error: Exception, case: Case) -> str | None:
        """Why the learner's function raised `error` on `case` (e.g. "255 is not a class" when the
        case holds ignored pixels), or None for the plain error."""
        return None

    def generator(self) -> torch.Generator:
        """A fresh `torch.Generator` seeded with `self.seed`, for deterministic hidden cases."""
        return torch.Generator().manual_seed(self.seed)

    # What a learner calls.

    def check(self, answer: Any, *, show: bool = True) -> CheckResult:
        """Check `answer` on the hidden cases and show the verdict. Never raises on a wrong answer.

        Returns:
            A `CheckResult`, truthy when correct; also stored as `self.last_result`.
        """
        self.last_result = result = self._verdict(answer)
        if show:
            result.show()
        return result

    def hint(self, n: int = 1) -> None:
        """Show hint number `n` (1 is the gentlest)."""
        count = len(self.hints)
        if not self.hints:
            text = "There is no hint for this question; `.solution()` shows the answer."
        elif not 1 <= n <= count:
            text = f"There are {count} hints for this question: hint(1) to hint({count})."
        else:
            more = f" `.hint({n + 1})` gives another." if n < count else ""
            text = f"Hint {n} of {count}: {self.hints[n - 1]}{more}"
        show(text, text, "text/markdown")

    def solution(self) -> None:
        """Show the worked solution as code."""
        code = self.solution_code.strip() or "# No solution has been written for this question."
        show(f"Solution:\n{code}", f"Solution:\n```python\n{code}\n```", "text/markdown")

    # The checking itself.

    def _verdict(self, answer: Any) -> CheckResult:
        self.answer = answer
        if answer is Ellipsis or (self.expects_function and is_stub(answer)):
            return self._not_attempted()
        if not self.expects_function:
            why = self._safe_compare(self.reference(), answer, "your answer")
            return self._correct() if why is None else self._incorrect(why)
        if not callable(answer):
            return self._incorrect(
                f"Expected a function, but got {a_type(answer)}. Pass the function itself, "
                "`check(my_fn)`, not the result of calling it, `check(my_fn(...))`."
            )

        cases = self._cases()
        for i, case in enumerate(cases, start=1):
            where = f"Case {i} of {len(cases)}: {self._describe_call(answer, case)}"
            theirs = copy.deepcopy(case)  # the learner may modify their inputs; keep the originals
            self.case = case
            expected = _call(self.reference, case)
            try:
                got = self.run(answer, theirs)
            except NotImplementedError as error:
                if raised_by_learner(error):  # the student version's placeholder
                    return self._not_attempted()
                return self._incorrect(f"{where}\nYour code raised {explain_exception(error)}")
            except Incorrect as wrong:
                return self._incorrect(f"{where}\n{wrong}")
            except Exception as error:
                return self._incorrect(f"{where}\n{self._error_message(error, theirs)}")
            if got is None and expected is not None:
                return self._incorrect(
                    f"{where}\nYour function returned None: did you forget `return`?"
                )
            why = self._safe_compare(expected, got, "output")
            if why is not None and (note := self._mistake_note(expected, got)):
                why = f"{why} {note}"
            if why is None and self.check_inplace:
                why = self._changed_inputs(case, theirs)
            if why is not None:
                return self._incorrect(f"{where}\n{why}")
        return self._correct()

    def _cases(self) -> list[Case]:
        return [c if isinstance(c, Case) else Case(*c) for c in self.cases()]

    def _mistake_note(self, expected: Any, got: Any) -> str | None:
        """The note of the first `Mistake` that gives `got` (and not `expected`), or None."""
        if not self.mistakes:
            return None
        cases = [self.case]
        if self.mistakes_on_all_cases:
            cases = self._cases()
            try:
                expected = [_call(self.reference, case) for case in cases]
                got = [self.run(self.answer, copy.deepcopy(case)) for case in cases]
            except Exception:  # a crash on another case: no single mistake explains it
                return None
        for mistake in self.mistakes:
            try:
                wrong = [_call(mistake.answer, case) for case in cases]
                wrong = wrong if self.mistakes_on_all_cases else wrong[0]
                # A mistake that gives the right answer on this case says nothing about `got`.
                if same_value(wrong, got, self.atol, self.rtol) and not same_value(
                    wrong, expected, self.atol, self.rtol
                ):
                    return mistake.note
            except Exception:  # this mistake cannot be made on this case
                continue
        return None

    def _error_message(self, error: Exception, case: Case) -> str:
        explanation = self.explain_error(error, case)
        if explanation is None:
            return f"Your code raised {explain_exception(error)}"
        # The explanation says what to change, so the error's first line is enough.
        first_line = (str(error).splitlines() or [""])[0]
        return f"Your code raised {type(error).__name__}: {first_line}\n{explanation}"

    def _safe_compare(self, expected: Any, got: Any, name: str) -> str | None:
        # A custom compare may trip over an answer of a type nobody expected; explain, not crash.
        try:
            why = self.compare(expected, got, name)
        except Incorrect as wrong:
            return str(wrong)
        except Exception as error:
            return (
                f"`{name}` could not be compared with the expected answer "
                f"({type(error).__name__}: {error}); is it {a_type(expected)}?"
            )
        try:
            note = why and self.diagnose(expected, got)
        except Exception:  # a diagnosis that does not fit this answer (e.g. not an array)
            note = None
        return f"{why} {note}" if note else why

    def _changed_inputs(self, original: Case, theirs: Case) -> str | None:
        names = self._arg_names(original)
        pairs = list(zip(names, original.args, theirs.args, strict=False))
        pairs += [(k, v, theirs.kwargs[k]) for k, v in original.kwargs.items()]
        for name, before, after in pairs:
            if isinstance(before, torch.Tensor | np.ndarray) and compare_values(
                before, after, name, atol=0, rtol=0
            ):
                return (
                    f"Your function changed its input `{name}` in place. The output was "
                    f"right, but work on a copy (`{name}.clone()`) or use out-of-place "
                    "operations so the caller's data is left alone."
                )
        return None

    def _arg_names(self, case: Case) -> list[str]:
        try:
            params = list(inspect.signature(self.reference).parameters)
        except (TypeError, ValueError):
            params = []
        return [params[i] if i < len(params) else f"arg{i}" for i in range(len(case.args))]

    def _describe_call(self, answer: Any, case: Case) -> str:
        fn = getattr(answer, "__name__", "your_function")
        if case.label:
            return f"{fn}(...) on {case.label}"
        named = dict(zip(self._arg_names(case), case.args, strict=True)) | case.kwargs
        return f"{fn}({', '.join(f'{k}={describe(v)}' for k, v in named.items())})"

    def _correct(self) -> CheckResult:
        return CheckResult("correct", f"Correct: {self.title}.")

    def _incorrect(self, why: str) -> CheckResult:
        tip = "Stuck? `.hint()` gives a hint" + (
            ", `.solution()` the answer." if self.solution_code else "."
        )
        return CheckResult("incorrect", f"Not quite: {self.title}.\n{why}\n{tip}")

    def _not_attempted(self) -> CheckResult:
        what = "the function" if self.expects_function else "your answer"
        return CheckResult(
            "not_attempted",
            f"Not attempted yet: {self.title}. Replace the "
            f"placeholder (`...` or `raise NotImplementedError`) in {what}, "
            "run that cell, then check again.",
        )


def questions(module: ModuleType) -> dict[str, Question]:
    """The questions of an exercise module by name, e.g. `{"q1": ..., "q2": ...}`.

    Introduced in `01_data.ipynb`.
    """
    return {name: q for name, q in vars(module).items() if isinstance(q, Question)}


def _call(fn: Callable[..., Any], case: Case) -> Any:
    """`fn` on copies of the case's inputs, so the case stays as it was."""
    return fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
