"""Errors that reach users: each names the file and says what to do.

Introduced in `01_data.ipynb`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CheckpointError", "DataError", "Problem", "listed"]

LIST_LIMIT = 8  # how many files or values a message names before it says "and N more"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset. Introduced in `01_data.ipynb`.

    Args:
        path: the file or folder at fault.
        message: what is wrong, in words a user understands.
        fix: what to do about it.
    """

    path: Path | str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}"
        return f"{text}\n    fix: {self.fix}" if self.fix else text


class DataError(ValueError):
    """Raised before training starts when a dataset cannot be used; lists every problem at once.

    Introduced in `01_data.ipynb`. The command line prints it and exits with code 2.
    """

    def __init__(self, problems: list[Problem] | Problem | str, path: Path | str = ""):
        if isinstance(problems, str):
            problems = [Problem(path, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} found:"
        super().__init__("\n".join([head, *(f"- {p}" for p in self.problems)]))


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or was not written by segtutor.

    Introduced in `04_training.ipynb`.
    """


def listed(items: Sequence[Any], limit: int = LIST_LIMIT) -> str:
    """`a, b, c` or `a, b, ... and 12 more`: messages stay readable for big datasets.

    Introduced in `01_data.ipynb` (in every `DataError` message).
    """
    shown = ", ".join(str(x) for x in items[:limit])
    return f"{shown} ... and {len(items) - limit} more" if len(items) > limit else shown
