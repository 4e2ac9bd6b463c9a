"""Errors that reach users: each names the file and says what to do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["CheckpointError", "DataError", "Problem"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset.

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
    """Raised before training starts when a dataset cannot be used; lists every problem at once."""

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
    """A checkpoint file is missing, corrupt, or was not written by segtutor."""
