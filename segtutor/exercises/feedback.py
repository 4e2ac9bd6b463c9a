"""What the learner sees: the verdict (HTML in Jupyter, text elsewhere), their errors in brief.

Introduced in `01_data.ipynb`.
"""

from __future__ import annotations

import dis
import html
import sysconfig
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import torch

__all__ = ["CheckResult", "explain_exception", "is_stub", "raised_by_learner", "show"]

Status = Literal["correct", "incorrect", "not_attempted"]
_COLOURS = {"correct": "#1a7f37", "incorrect": "#cf222e", "not_attempted": "#9a6700"}


class CheckResult:
    """The verdict of `Question.check`: truthy when correct, with the message that was shown.

    Introduced in `01_data.ipynb`.

    Attributes:
        status: "correct", "incorrect" or "not_attempted" (the placeholder is still there).
        message: the plain-text explanation, as printed.
        checked_at: when the check ran, ISO 8601 in UTC (what `ex.progress()` exports).
    """

    __slots__ = ("status", "message", "checked_at")

    def __init__(self, status: Status, message: str) -> None:
        self.status = status
        self.message = message
        self.checked_at = datetime.now(timezone.utc).isoformat(timespec="seconds")

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def __bool__(self) -> bool:
        return self.correct

    def __repr__(self) -> str:
        return f"CheckResult(status={self.status!r})"

    def _ipython_display_(self) -> None:
        """Show nothing as a cell's value: `check` already displayed the verdict."""

    def show(self) -> None:
        """The first line in bold, in the status's colour; the explanation below it."""
        first, _, rest = self.message.partition("\n")
        colour = _COLOURS[self.status]
        body = f"<pre style='white-space: pre-wrap; margin: 4px 0 0 0'>{html.escape(rest)}</pre>"
        show(
            self.message,
            f"<div style='border-left: 4px solid {colour}; padding: 2px 8px'>"
            f"<b style='color: {colour}'>{html.escape(first)}</b>{body if rest else ''}</div>",
            "text/html",
        )


def show(text: str, rich: str, mimetype: str) -> None:
    """Rich output in IPython/Jupyter (with the plain text alongside), `print` elsewhere.

    Introduced in `01_data.ipynb`.
    """
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


def is_stub(fn: Any) -> bool:
    """True for a function whose body is only `...`, `pass` or a docstring: not written yet.

    Introduced in `01_data.ipynb`.
    """
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    ops = [
        (i.opname, i.argval)
        for i in dis.get_instructions(code)
        if i.opname not in {"RESUME", "NOP", "CACHE"}
    ]
    return ops in ([("LOAD_CONST", None), ("RETURN_VALUE", None)], [("RETURN_CONST", None)])


# Frames from these folders are the library's, not the learner's: a learner's exception is
# shown at the last line *they* wrote, not deep inside torch.
_LIBRARY_DIRS = tuple(
    {str(Path(p).resolve()) for k, p in sysconfig.get_paths().items() if k.endswith("lib")}
    | {str(Path(torch.__file__).resolve().parent), str(Path(__file__).resolve().parents[1])}
)


def _is_learners(frame: traceback.FrameSummary) -> bool:
    return not str(Path(frame.filename).resolve()).startswith(_LIBRARY_DIRS)


def raised_by_learner(error: BaseException) -> bool:
    """True when the innermost frame is the learner's (their `raise`, not torch's).

    Introduced in `01_data.ipynb`.
    """
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and _is_learners(frames[-1])


def explain_exception(error: BaseException, max_lines: int = 6) -> str:
    """'ValueError: msg' plus the learner's last line, without the whole traceback.

    Introduced in `01_data.ipynb`.
    """
    # Some torch errors run to dozens of lines (dispatcher tables); the first few say what matters.
    lines = str(error).splitlines()
    text = f"{type(error).__name__}: " + "\n".join(
        lines[:max_lines] + (["..."] if len(lines) > max_lines else [])
    )
    theirs = [f for f in traceback.extract_tb(error.__traceback__) if _is_learners(f)]
    if theirs:
        frame = theirs[-1]
        text += f"\n  in {frame.name}, line {frame.lineno}: {(frame.line or '').strip()}"
    return text
