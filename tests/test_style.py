"""The code stays in the project's style: `ruff check` and `ruff format` (settings in pyproject.toml).

A contributor who forgets to format sees it here, with the command that fixes it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE = ["segtutor", "tests", "benchmarks", "conftest.py"]


@pytest.mark.parametrize(
    ("command", "fix"),
    [
        (["check"], "ruff check --fix"),
        (["format", "--check"], "ruff format"),
    ],
    ids=["check", "format"],
)
def test_ruff(command, fix):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *CODE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        f"{result.stdout}{result.stderr}\nrun: .venv/bin/{fix} {' '.join(CODE)}"
    )
