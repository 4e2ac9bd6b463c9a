"""Where a learner stands: the state of every question of a notebook, as a table or as JSON.

Introduced in `01_data.ipynb`.

`ex.progress()` shows one row per question of the notebook's exercise module: its title and its
state, read from the question's last check (`Question.last_result`):

    correct        the last check passed
    wrong          the last check failed; the note says why
    not attempted  the placeholder (`...`, `raise NotImplementedError`) is still there
    not run        the check cell has not been run in this kernel

`ex.progress().to_json("progress.json")` writes the same as a small JSON file (the notebook,
each question's id, title, state, note and when it was checked), e.g. to hand in.
An exercise module offers `progress` with one line, `progress = make_progress(__name__)`;
`progress_of(module)` does the same for any module of questions.
"""

from __future__ import annotations

import html
import importlib
import re
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

from segtutor.exercises.core import Question, questions
from segtutor.exercises.feedback import CheckResult
from segtutor.jsonio import write_json

__all__ = ["STATES", "Progress", "make_progress", "notebook_of", "progress_of", "state_of"]

# `CheckResult.status` (None: never checked) -> the word a learner and a grade sheet read.
STATES = {
    "correct": "correct",
    "incorrect": "wrong",
    "not_attempted": "not attempted",
    None: "not run",
}
_COLOURS = {"correct": "#1a7f37", "wrong": "#cf222e", "not attempted": "#9a6700"}
_NOTEBOOK = re.compile(r"Introduced in `([^`]+\.ipynb)`")


def state_of(result: CheckResult | None) -> tuple[str, str]:
    """`(state, note)` of one check: the state's word and, for a wrong answer, why.

    Introduced in `01_data.ipynb`.

    The note is the verdict's explanation without its first line (the title, known already)
    and without the closing "Stuck?" tip.
    """
    if result is None:
        return STATES[None], ""
    if result.status != "incorrect":
        return STATES[result.status], ""
    lines = result.message.splitlines()[1:]
    if lines and lines[-1].startswith("Stuck?"):
        lines = lines[:-1]
    return STATES["incorrect"], "\n".join(lines)


class Progress:
    """The state of each question of one notebook; a table in Jupyter and in `print`.

    Introduced in `01_data.ipynb`.

    Attributes:
        notebook: the notebook the questions belong to, e.g. "01_data.ipynb".
        rows: one dict per question: `id`, `title`, `state`, `note`, `checked_at` (None when
            not run).
    """

    def __init__(self, notebook: str, rows: list[dict[str, Any]]) -> None:
        self.notebook = notebook
        self.rows = rows

    def summary(self) -> str:
        """One line, e.g. "01_data.ipynb: 2 of 4 correct"."""
        done = sum(row["state"] == "correct" for row in self.rows)
        return f"{self.notebook}: {done} of {len(self.rows)} correct"

    def __str__(self) -> str:
        width = max([len(row["id"]) for row in self.rows] + [8])
        lines = [self.summary(), f"{'question':<{width}}  {'state':<13}  title / note"]
        for row in self.rows:
            note = row["note"].splitlines()[-1] if row["note"] else ""
            lines.append(f"{row['id']:<{width}}  {row['state']:<13}  {row['title']}")
            if note:
                lines.append(f"{'':<{width}}  {'':<13}  {_shorten(note, 90)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        cells = []
        for row in self.rows:
            colour = _COLOURS.get(row["state"], "#57606a")
            note = html.escape(_shorten(row["note"].replace("\n", " "), 200))
            cells.append(
                f"<tr><td>{html.escape(row['id'])}</td>"
                f"<td style='color: {colour}'><b>{row['state']}</b></td>"
                f"<td style='text-align: left'>{html.escape(row['title'])}"
                f"{'<br><small>' + note + '</small>' if note else ''}</td></tr>"
            )
        return (
            f"<p><b>{html.escape(self.summary())}</b></p><table><tr><th>question</th>"
            f"<th>state</th><th style='text-align: left'>title</th></tr>{''.join(cells)}</table>"
        )

    def to_json(self, path: str | Path) -> Path:
        """Write the progress as JSON to `path` (atomically); returns the path written."""
        exported_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        data = {"notebook": self.notebook, "exported_at": exported_at, "questions": self.rows}
        return write_json(path, data)


def progress_of(module: ModuleType) -> Progress:
    """The `Progress` of the questions of an exercise module (`ex01`, ...), in their order.

    Introduced in `01_data.ipynb`.
    """
    rows = []
    for name, question in questions(module).items():
        result: CheckResult | None = question.last_result
        state, note = state_of(result)
        checked_at = None if result is None else result.checked_at
        rows.append(_row(name, question, state, note, checked_at))
    return Progress(notebook_of(module), rows)


def make_progress(module_name: str) -> Callable[[], Progress]:
    """`progress()` for the module named `module_name`: `progress = make_progress(__name__)`.

    Introduced in `01_data.ipynb`.
    """

    def progress() -> Progress:
        """The state of this notebook's questions: a table; `.to_json(path)` saves it."""
        module = sys.modules.get(module_name) or importlib.import_module(module_name)
        return progress_of(module)

    return progress


def notebook_of(module: ModuleType) -> str:
    """The notebook an exercise module belongs to, from its docstring's "Introduced in".

    Introduced in `01_data.ipynb`.
    """
    found = _NOTEBOOK.search(module.__doc__ or "")
    return found[1] if found else module.__name__.rsplit(".", 1)[-1]


def _row(name: str, question: Question, state: str, note: str, checked_at: str | None) -> dict:
    return {
        "id": name,
        "title": question.title,
        "state": state,
        "note": note,
        "checked_at": checked_at,
    }


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
