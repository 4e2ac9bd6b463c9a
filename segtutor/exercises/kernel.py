"""Run a notebook's cells in a Jupyter kernel, one at a time, each with a time limit.

Introduced in `01_data.ipynb`.

What the grader (`grade.py`) runs submitted notebooks with: nbclient's `NotebookClient`, told to
carry on after errors and to interrupt a cell that runs too long, plus a check that an
interrupted kernel still answers (a learner's `except: pass` can swallow the interrupt).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat

__all__ = ["TIMEOUT", "Kernel", "KernelStuck"]

TIMEOUT = "GraderTimeout"  # the error name of a cell interrupted for running too long


class KernelStuck(Exception):
    """A cell ran over its time and the kernel did not answer the interrupt.

    Introduced in `01_data.ipynb`.
    """


class Kernel:
    """One notebook's kernel (nbclient): runs its cells one at a time, each with a time limit,
    and remembers every error as `(cell index, error name, message)` in `errors`.

    Introduced in `01_data.ipynb`.

    An error does not stop anything (the caller decides); a cell over its limit is interrupted
    and reported as the error `TIMEOUT`.
    """

    def __init__(self, nb: Any, workdir: Path, timeout: int, kernel_name: str) -> None:
        from nbclient import NotebookClient  # the grader's own dependency, not the course's

        self.errors: list[tuple[int, str, str]] = []
        self.client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name=kernel_name,
            allow_errors=True,
            interrupt_on_timeout=True,
            error_on_timeout={"ename": TIMEOUT, "evalue": f"over {timeout} s", "traceback": []},
            resources={"metadata": {"path": str(workdir)}},
            on_cell_error=self._error,
        )

    def _error(self, cell: Any, cell_index: int, execute_reply: dict) -> None:
        content = execute_reply["content"]
        self.errors.append((cell_index, content.get("ename", "?"), content.get("evalue", "")))

    def run(self, cell: Any, index: int, limit: int | None = None) -> str | None:
        """Run one cell (for `limit` seconds, else the kernel's timeout): None, or the name of
        its error (`GraderTimeout` when it ran too long).

        Raises:
            nbclient.exceptions.DeadKernelError: the kernel died.
            KernelStuck: the cell ran over its time and the kernel ignored the interrupt.
        """
        before, usual = len(self.errors), self.client.timeout
        self.client.timeout = limit or usual
        try:
            self.client.execute_cell(cell, index)
        finally:
            self.client.timeout = usual
        error = self.errors[before][1] if len(self.errors) > before else None
        if error == TIMEOUT and not self._responds():
            raise KernelStuck(f"cell {index} ran over {limit or usual} s and ignored the interrupt")
        return error

    def _responds(self) -> bool:
        """After an interrupt: does the kernel answer a trivial cell within a minute?"""
        before = len(self.errors)
        self.client.timeout, usual = 60, self.client.timeout
        try:  # nbclient stores a cell it runs in the notebook: the probe's place is at the end
            self.client.nb.cells.append(nbformat.v4.new_code_cell("None"))
            self.client.execute_cell(self.client.nb.cells[-1], len(self.client.nb.cells) - 1)
        finally:
            self.client.timeout = usual
        return len(self.errors) == before
