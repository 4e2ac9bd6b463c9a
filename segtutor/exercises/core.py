"""Exercises that check themselves: the `Question` base class and the comparison helpers.

A notebook author adds a question to `segtutor/exercises/exNN.py` in a few declarative lines::

    class CountPixels(Question):
        title = "Count the pixels of one class"
        hints = ("`mask == c` is a boolean tensor.", "`.sum()` counts True values; `int()` it.")
        solution_code = "def count_pixels(mask, c):\\n    return int((mask == c).sum())"
        def reference(self, mask, c):                 # the right answer, on any input
            return int((mask == c).sum())
        def cases(self):                              # hidden inputs, never shown in the notebook
            yield Case(torch.randint(0, 3, (4, 5), generator=self.generator()), c=1)
    q1 = CountPixels()

A learner then runs `from segtutor.exercises import ex01 as ex` and `ex.q1.check(count_pixels)`,
`ex.q1.hint()`, `ex.q1.hint(2)`, `ex.q1.solution()`.

`check` never raises on a wrong answer: it shows "Correct" or what is wrong and why, and returns
a `CheckResult` (truthy when correct, also kept as `question.last_result`). The result shows
nothing as a cell's value, so a notebook does not print a stray `True` under the verdict.

Typical mistakes are a table, not code: `mistakes = (Mistake(wrong_fn, "what to change"), ...)`,
where `wrong_fn` reproduces the mistake with the reference's signature. When an answer is wrong
and equals `wrong_fn` on the failing case, the note is added to the explanation.

Optional attributes and methods: see `Question`.
"""

from __future__ import annotations

import copy
import dis
import html
import inspect
import math
import sysconfig
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, NamedTuple

import numpy as np
import torch

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

Status = Literal["correct", "incorrect", "not_attempted"]


class Incorrect(Exception):
    """Raise from `Question.run` or `Question.compare` to report a wrong answer with a message."""


class Case:
    """One hidden input: the positional and keyword arguments the answer is called with.

    `Case(mask, 1)` calls `answer(mask, 1)`; `label` replaces the automatic description of the
    inputs in messages (useful when the inputs are large, e.g. "a 64x64 mask with no class 2").
    """

    __slots__ = ("args", "kwargs", "label")

    def __init__(self, *args: Any, label: str | None = None, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.label = label

    def __repr__(self) -> str:
        return f"Case({', '.join(_call_args(self.args, self.kwargs))})"


class Mistake(NamedTuple):
    """A typical wrong answer: `answer` reproduces it (same signature as `reference`), `note`
    says what to change. Listed in `Question.mistakes`; see the module docstring."""

    answer: Callable[..., Any]
    note: str


class CheckResult:
    """The verdict of `Question.check`: truthy when correct, with the message that was shown.

    Attributes:
        status: "correct", "incorrect" or "not_attempted" (the placeholder is still there).
        message: the plain-text explanation, as printed.
    """

    __slots__ = ("status", "message")

    def __init__(self, status: Status, message: str) -> None:
        self.status = status
        self.message = message

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def __bool__(self) -> bool:
        return self.correct

    def __repr__(self) -> str:
        return f"CheckResult(status={self.status!r})"

    def _ipython_display_(self) -> None:
        """Show nothing as a cell's value: `check` already displayed the verdict."""


# --------------------------------------------------------------------------------------------
# Comparisons. Each returns None when `got` matches `expected`, else one short explanation.
# --------------------------------------------------------------------------------------------


def compare_tensors(
    expected: torch.Tensor | np.ndarray,
    got: Any,
    name: str = "output",
    atol: float = 1e-5,
    rtol: float = 1e-4,
    allow_numpy: bool = False,
) -> str | None:
    """Explain how tensor `got` differs from `expected` (type, shape, dtype, NaNs, values).

    Floating values match within `atol + rtol * |expected|`; integer and bool values exactly.
    With `allow_numpy`, a numpy array is accepted where a tensor is expected (and vice versa)
    and compared after conversion.

    Example:
        >>> compare_tensors(torch.zeros(2, 3), torch.zeros(3, 2))
        '`output` has shape (3, 2); expected (2, 3).'
    """
    want_type = "torch.Tensor" if isinstance(expected, torch.Tensor) else "numpy array"
    if not isinstance(got, torch.Tensor | np.ndarray):
        return f"`{name}` should be a {want_type}, but it is {_a_type(got)}."
    if isinstance(got, torch.Tensor) != isinstance(expected, torch.Tensor) and not allow_numpy:
        fix = "torch.from_numpy(x)" if isinstance(expected, torch.Tensor) else "x.numpy()"
        return f"`{name}` should be a {want_type}, but it is {_a_type(got)}; `{fix}` converts it."
    e, g = torch.as_tensor(expected).detach().cpu(), torch.as_tensor(got).detach().cpu()

    if e.shape != g.shape:
        msg = f"`{name}` has shape {tuple(g.shape)}; expected {tuple(e.shape)}."
        if e.numel() == g.numel():
            msg += " Same number of elements: a transpose, permute or reshape problem?"
        return msg
    if e.dtype != g.dtype:
        return f"`{name}` has dtype {g.dtype}; expected {e.dtype}."
    if e.is_floating_point():
        nan_mismatch = e.isnan() != g.isnan()
        if nan_mismatch.any():
            where = tuple(nan_mismatch.nonzero()[0].tolist())
            count = int(nan_mismatch.sum())
            return (
                f"`{name}` has NaN in the wrong place ({count} element(s)), e.g. at "
                f"{name}{_fmt_index(where)}: expected {_num(e[where])}, got {_num(g[where])}."
                + (" A division by zero (0 / 0)?" if g[where].isnan() else "")
            )
        bad = ~torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    else:
        bad = g != e
    if not bad.any():
        return None
    if e.dim() == 0:
        return f"`{name}` is {_num(g)}; expected {_num(e)}."

    # Point at the worst element: one concrete number helps more than a summary statistic.
    if e.dtype == torch.bool:
        diff = bad.double()
    else:  # inf - inf is NaN; such an element is only here if it is wrong, so rank it first
        diff = torch.where(bad, (g.double() - e.double()).abs().nan_to_num(nan=math.inf), 0.0)
    where = tuple(int(i) for i in np.unravel_index(int(diff.argmax()), tuple(e.shape)))
    return (
        f"`{name}` differs at {int(bad.sum())} of {e.numel()} elements; the largest difference "
        f"is at {name}{_fmt_index(where)}: expected {_num(e[where])}, got {_num(g[where])}."
    )


def compare_values(
    expected: Any,
    got: Any,
    name: str = "output",
    atol: float = 1e-5,
    rtol: float = 1e-4,
    allow_numpy: bool = False,
) -> str | None:
    """Explain how `got` differs from `expected`, for tensors, arrays, numbers and containers.

    Tensors and arrays go to `compare_tensors`. Python numbers accept a 0-d tensor or numpy
    scalar (learners often return `(mask == c).sum()`), but an `int` question refuses a float.
    Tuples, lists and dicts are compared element by element, naming the element (`output[1]`).
    """
    if isinstance(expected, torch.Tensor | np.ndarray):
        return compare_tensors(expected, got, name, atol, rtol, allow_numpy)
    if isinstance(expected, bool | int | float) and not isinstance(expected, np.generic):
        return _compare_numbers(expected, got, name, atol, rtol)
    if isinstance(expected, np.generic):
        return _compare_numbers(expected.item(), got, name, atol, rtol)
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return f"`{name}` should be a dict, but it is {_a_type(got)}."
        if set(got) != set(expected):
            missing, extra = set(expected) - set(got), set(got) - set(expected)
            parts = [f"missing keys {sorted(map(repr, missing))}"] if missing else []
            parts += [f"unexpected keys {sorted(map(repr, extra))}"] if extra else []
            return f"`{name}` has {' and '.join(parts)}."
        for key in expected:
            if why := compare_values(
                expected[key], got[key], f"{name}[{key!r}]", atol, rtol, allow_numpy
            ):
                return why
        return None
    if isinstance(expected, tuple | list):
        if not isinstance(got, tuple | list):
            return f"`{name}` should be a {type(expected).__name__}, but it is {_a_type(got)}."
        if len(got) != len(expected):
            return f"`{name}` has {len(got)} elements; expected {len(expected)}."
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            if why := compare_values(e, g, f"{name}[{i}]", atol, rtol, allow_numpy):
                return why
        return None
    if type(got) is not type(expected) and not isinstance(got, type(expected)):
        return f"`{name}` should be {_a_type(expected)}, but it is {_a_type(got)}."
    return None if got == expected else f"`{name}` is {_short(got)}; expected {_short(expected)}."


def _compare_numbers(expected: float, got: Any, name: str, atol: float, rtol: float) -> str | None:
    if isinstance(got, torch.Tensor | np.ndarray) and got.ndim == 0 or isinstance(got, np.generic):
        got = got.item()
    if isinstance(expected, bool) != isinstance(got, bool) or not isinstance(got, int | float):
        return f"`{name}` should be {_a_type(expected)}, but it is {_a_type(got)}."
    if isinstance(expected, int) and isinstance(got, float):
        return f"`{name}` should be an int, but it is a float ({got!r}); `int(...)` converts it."
    if isinstance(expected, float) and math.isnan(expected) and math.isnan(got):
        return None
    if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
        return None
    return f"`{name}` is {got!r}; expected {expected!r}."


# --------------------------------------------------------------------------------------------
# Questions
# --------------------------------------------------------------------------------------------


class Question:
    """Base class of one exercise; subclass it, set the attributes, write `reference` and `cases`.

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

    # ---- what a question author writes ------------------------------------------------------

    def reference(self, *args: Any, **kwargs: Any) -> Any:
        """The right answer: called like the learner's function, or with no arguments for values."""
        raise NotImplementedError(f"{type(self).__name__} must define reference()")

    def cases(self) -> Iterable[Case | tuple]:
        """Hidden inputs (a `Case` or a tuple of positional arguments each); not for values."""
        return ()

    def compare(self, expected: Any, got: Any, name: str) -> str | None:
        """Why `got` is wrong, or None when it is right. Override for a custom criterion."""
        return compare_values(expected, got, name, self.atol, self.rtol, self.allow_numpy)

    def run(self, answer: Callable[..., Any], case: Case) -> Any:
        """Call the learner's function on one case. Override for e.g. a class to instantiate."""
        _check_callable_with(answer, case)
        return answer(*case.args, **case.kwargs)

    def explain_error(self, error: Exception, case: Case) -> str | None:
        """Why the learner's function raised `error` on `case` (e.g. "255 is not a class: leave
        those pixels out first." when the case holds ignored pixels), or None for the plain error."""
        return None

    def generator(self) -> torch.Generator:
        """A fresh `torch.Generator` seeded with `self.seed`, for deterministic hidden cases."""
        return torch.Generator().manual_seed(self.seed)

    # ---- what a learner calls ----------------------------------------------------------------

    def check(self, answer: Any, *, show: bool = True) -> CheckResult:
        """Check `answer` on the hidden cases and show the verdict. Never raises on a wrong answer.

        Returns:
            A `CheckResult`, truthy when correct; also stored as `self.last_result`.
        """
        result = self._verdict(answer)
        self.last_result = result
        if show:
            _display(result.message, _result_html(result), "text/html")
        return result

    def hint(self, n: int = 1) -> None:
        """Show hint number `n` (1 is the gentlest)."""
        if not self.hints:
            text = "There is no hint for this question; `.solution()` shows the answer."
        elif not 1 <= n <= len(self.hints):
            count = len(self.hints)
            text = f"There are {count} hints for this question: hint(1) to hint({count})."
        else:
            more = f" `.hint({n + 1})` gives another." if n < len(self.hints) else ""
            text = f"Hint {n} of {len(self.hints)}: {self.hints[n - 1]}{more}"
        _display(text, text, "text/markdown")

    def solution(self) -> None:
        """Show the worked solution as code."""
        code = self.solution_code.strip() or "# No solution has been written for this question."
        _display(f"Solution:\n{code}", f"Solution:\n```python\n{code}\n```", "text/markdown")

    # ---- the checking itself -----------------------------------------------------------------

    def _verdict(self, answer: Any) -> CheckResult:
        self.answer = answer
        if answer is Ellipsis or (self.expects_function and _is_stub(answer)):
            return self._not_attempted()
        if not self.expects_function:
            why = self._safe_compare(self.reference(), answer, "your answer")
            return self._correct() if why is None else self._incorrect(why)
        if not callable(answer):
            return self._incorrect(
                f"Expected a function, but got {_a_type(answer)}. Pass the function itself, "
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
                if _raised_by_learner(error):  # the student version's placeholder
                    return self._not_attempted()
                return self._incorrect(f"{where}\nYour code raised {_explain_exception(error)}")
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
                if _same_value(wrong, got, self) and not _same_value(wrong, expected, self):
                    return mistake.note
            except Exception:  # this mistake cannot be made on this case
                continue
        return None

    def _error_message(self, error: Exception, case: Case) -> str:
        explanation = self.explain_error(error, case)
        if explanation is None:
            return f"Your code raised {_explain_exception(error)}"
        # The explanation says what to change, so the error's first line is enough.
        first_line = (str(error).splitlines() or [""])[0]
        return f"Your code raised {type(error).__name__}: {first_line}\n{explanation}"

    def _safe_compare(self, expected: Any, got: Any, name: str) -> str | None:
        # A custom compare may trip over an answer of a type nobody expected; explain, not crash.
        try:
            return self.compare(expected, got, name)
        except Incorrect as wrong:
            return str(wrong)
        except Exception as error:
            return (
                f"`{name}` could not be compared with the expected answer "
                f"({type(error).__name__}: {error}); is it {_a_type(expected)}?"
            )

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


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def questions(module: ModuleType) -> dict[str, Question]:
    """The questions of an exercise module by name, e.g. `{"q1": ..., "q2": ...}`."""
    return {name: q for name, q in vars(module).items() if isinstance(q, Question)}


def _call(fn: Callable[..., Any], case: Case) -> Any:
    """`fn` on copies of the case's inputs, so the case stays as it was."""
    return fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))


def _same_value(expected: Any, got: Any, tolerances: Question) -> bool:
    """True when `got` equals `expected` within the question's tolerances, whatever the dtype
    or container (a tensor for a list, float32 for float64, a 1-element tensor for a number)."""
    if isinstance(expected, Mapping):
        return (
            isinstance(got, Mapping)
            and expected.keys() == got.keys()
            and all(_same_value(expected[k], got[k], tolerances) for k in expected)
        )
    if isinstance(expected, tuple | list):
        got = got.tolist() if isinstance(got, torch.Tensor | np.ndarray) else got
        return (
            isinstance(got, tuple | list)
            and len(got) == len(expected)
            and all(_same_value(e, g, tolerances) for e, g in zip(expected, got, strict=True))
        )
    if not isinstance(expected, torch.Tensor | np.ndarray | bool | int | float | np.generic):
        return bool(expected == got)
    try:
        e = torch.as_tensor(expected).detach().cpu().double()
        g = torch.as_tensor(got).detach().cpu().double()
    except (TypeError, ValueError, RuntimeError):
        return False
    if e.dim() == 0 and g.numel() == 1:
        g = g.reshape(())
    return e.shape == g.shape and bool(
        torch.isclose(g, e, rtol=tolerances.rtol, atol=tolerances.atol, equal_nan=True).all()
    )


def describe(value: Any, max_elements: int = 25) -> str:
    """A one-line description of an input: small tensors in full, large ones by shape and dtype."""
    if isinstance(value, torch.Tensor | np.ndarray):
        numel = value.size if isinstance(value, np.ndarray) else value.numel()
        if numel <= max_elements:
            return " ".join(repr(value).split())
        kind = "tensor" if isinstance(value, torch.Tensor) else "array"
        return f"<{kind} of shape {tuple(value.shape)}, dtype {value.dtype}>"
    return _short(value)


def _call_args(args: tuple, kwargs: dict) -> list[str]:
    return [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()]


def _short(value: Any, limit: int = 80) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _a_type(value: Any) -> str:
    """'a torch.Tensor', 'None', 'an int (3)': how messages name the type of a value."""
    if value is None:
        return "None"
    if isinstance(value, torch.Tensor):
        return f"a torch.Tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape}"
    name = type(value).__name__
    article = "an" if name[0].lower() in "aeiou" else "a"
    return f"{article} {name} ({_short(value, 40)})"


def _fmt_index(idx: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, idx)) + "]" if idx else ""


def _num(x: torch.Tensor) -> str:
    value = x.item()
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def _is_stub(fn: Any) -> bool:
    """True for a function whose body is only `...`, `pass` or a docstring: not written yet."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    ops = [
        (i.opname, i.argval)
        for i in dis.get_instructions(code)
        if i.opname not in {"RESUME", "NOP", "CACHE"}
    ]
    return ops in ([("LOAD_CONST", None), ("RETURN_VALUE", None)], [("RETURN_CONST", None)])


def _check_callable_with(fn: Callable[..., Any], case: Case) -> None:
    """Raise `Incorrect` when `fn` cannot take the case's arguments, before calling it."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: just try the call
        return
    try:
        signature.bind(*case.args, **case.kwargs)
    except TypeError as error:
        n = len(case.args) + len(case.kwargs)
        raise Incorrect(
            f"Your function cannot be called with {n} argument(s): {error}. "
            f"It should look like `def {getattr(fn, '__name__', 'f')}(...)` with "
            f"{n} parameter(s)."
        ) from None


# Frames from these folders are the library's, not the learner's: a learner's exception is
# shown at the last line *they* wrote, not deep inside torch.
_LIBRARY_DIRS = tuple(
    {
        str(Path(p).resolve())
        for k, p in sysconfig.get_paths().items()
        if k in {"stdlib", "purelib", "platlib"}
    }
    | {str(Path(torch.__file__).resolve().parent), str(Path(__file__).resolve().parents[1])}
)


def _is_learners(frame: traceback.FrameSummary) -> bool:
    return not str(Path(frame.filename).resolve()).startswith(_LIBRARY_DIRS)


def _raised_by_learner(error: BaseException) -> bool:
    """True when the innermost frame is the learner's (their `raise`, not torch's)."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and _is_learners(frames[-1])


def _short_message(message: str, max_lines: int = 6) -> str:
    # Some torch errors run to dozens of lines (dispatcher tables); the first few say what matters.
    lines = message.splitlines()
    return "\n".join(lines[:max_lines] + (["..."] if len(lines) > max_lines else []))


def _explain_exception(error: BaseException) -> str:
    """'ValueError: msg' plus the learner's last line, without the whole traceback."""
    theirs = [f for f in traceback.extract_tb(error.__traceback__) if _is_learners(f)]
    text = f"{type(error).__name__}: {_short_message(str(error))}"
    if theirs:
        frame = theirs[-1]
        text += f"\n  in {frame.name}, line {frame.lineno}: {(frame.line or '').strip()}"
    return text


_COLOURS = {"correct": "#1a7f37", "incorrect": "#cf222e", "not_attempted": "#9a6700"}


def _result_html(result: CheckResult) -> str:
    first, _, rest = result.message.partition("\n")
    colour = _COLOURS[result.status]
    body = (
        f"<pre style='white-space: pre-wrap; margin: 4px 0 0 0'>{html.escape(rest)}</pre>"
        if rest
        else ""
    )
    return (
        f"<div style='border-left: 4px solid {colour}; padding: 2px 8px'>"
        f"<b style='color: {colour}'>{html.escape(first)}</b>{body}</div>"
    )


def _display(text: str, rich: str, mimetype: str) -> None:
    """Rich output in IPython/Jupyter (with the plain text alongside), `print` elsewhere."""
    try:  # IPython is imported here, not at the top: the package must work without it
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        print(text)
        return
    if get_ipython() is None:
        print(text)
    else:
        display({mimetype: rich, "text/plain": text}, raw=True)
