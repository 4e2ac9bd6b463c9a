"""`python -m segtutor.exercises {student,grade} ...`: the instructor's two commands.

Introduced in `01_data.ipynb`.

    python -m segtutor.exercises student solutions/ notebooks/     # student.py
    python -m segtutor.exercises grade SUBMISSIONS/ --out grades.csv  # grade.py
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command named first in `argv` with the rest of `argv`.

    Introduced in `01_data.ipynb`.
    """
    parser = argparse.ArgumentParser(
        prog="python -m segtutor.exercises",
        description="student: write the student version of the notebooks (answers removed); "
        "grade: run submitted notebooks and write one CSV row per student and question. "
        "`python -m segtutor.exercises COMMAND --help` says more.",
    )
    parser.add_argument("command", choices=["student", "grade"])
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the command's arguments")
    args = parser.parse_args(argv)
    if args.command == "student":
        from segtutor.exercises import student as command
    else:
        from segtutor.exercises import grade as command
    return command.main(args.arguments)


if __name__ == "__main__":
    sys.exit(main())
