"""Build the student version of the notebooks: worked solutions replaced by placeholders.

Introduced in `01_data.ipynb`.

The committed notebooks hold the worked solutions, marked like this in a code cell tagged
`solution`::

    def count_pixels(mask, c):
        # BEGIN SOLUTION
        return int((mask == c).sum())
        # END SOLUTION

The student version replaces each marked block, markers included, by one placeholder line at
the marker's indentation: `raise NotImplementedError("your code here")`, or the text given as
`# BEGIN SOLUTION (placeholder: num_params = ...)`. A cell tagged `solution` without markers
is replaced whole. Markers in an untagged code cell are stripped too, so a forgotten tag never
leaks a solution. `Question.check` recognises both placeholders as "not attempted yet".

Outputs are cleared in the cells that changed and in cells that call `.check(`,
`.self_check(` or `.solution(` (their committed output would say "Correct" or show the answer).

A placeholder inside a function (the usual case) raises only when the function is called, and
`check` reports that as "not attempted". A placeholder at the top level of a cell raises as soon
as the cell runs, so that cell is tagged `raises-exception`: the tag by which Jupyter's
executors (nbclient, nbconvert, nbval) carry on after a cell's expected error. "Run all" of the
student version therefore runs to the end, and so does the test that executes every student
notebook in quick mode. (Rewriting the placeholder so that it cannot raise was the other
choice; it would hide from the learner which cells are theirs to fill in.)

The course keeps the worked notebooks in `solutions/` (what instructors edit and the tests run)
and the generated student version in `notebooks/` (what learners open); after editing
`solutions/`, regenerate::

    python -m segtutor.exercises.student solutions/ notebooks/
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

__all__ = ["RAISES_TAG", "SOLUTION_TAG", "make_student_version", "strip_solutions"]

SOLUTION_TAG = "solution"
RAISES_TAG = "raises-exception"
DEFAULT_PLACEHOLDER = 'raise NotImplementedError("your code here")'

_BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION(?:\s*\(placeholder:\s*(?P<ph>.*)\))?\s*$")
_END = re.compile(r"^[ \t]*# END SOLUTION\s*$")
# Cells whose committed output gives the game away once the solution is gone.
_REVEALING_CALL = re.compile(r"\.(check|self_check|solution)\(")
_TOP_LEVEL_RAISE = re.compile(r"^raise NotImplementedError\b", re.MULTILINE)


def strip_solutions(source: str, whole_cell: bool = False) -> str:
    """Replace every `# BEGIN SOLUTION` ... `# END SOLUTION` block of `source` by a placeholder.

    Introduced in `01_data.ipynb`.

    Args:
        source: the code of one cell.
        whole_cell: replace the whole cell when it has no markers (a cell tagged `solution`).

    Raises:
        ValueError: a marker without its partner, or nested markers (an instructor's mistake;
            a half-stripped notebook could leak the solution, so stop).
    """
    lines = source.splitlines()
    if whole_cell and not any(_BEGIN.match(line) for line in lines):
        return DEFAULT_PLACEHOLDER
    out: list[str] = []
    inside = False
    for number, line in enumerate(lines, start=1):
        if begin := _BEGIN.match(line):
            if inside:
                raise ValueError(f"line {number}: `# BEGIN SOLUTION` inside another solution block")
            inside = True
            out.append(begin["indent"] + (begin["ph"] or DEFAULT_PLACEHOLDER).strip())
        elif _END.match(line):
            if not inside:
                raise ValueError(f"line {number}: `# END SOLUTION` without `# BEGIN SOLUTION`")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("`# BEGIN SOLUTION` without `# END SOLUTION`")
    return "\n".join(out) + ("\n" if source.endswith("\n") else "")


def make_student_version(src_ipynb: str | Path, dst_ipynb: str | Path) -> int:
    """Write the student version of notebook `src_ipynb` to `dst_ipynb`.

    Introduced in `01_data.ipynb`.

    Returns:
        The number of cells whose solution was replaced.

    Raises:
        ValueError: unbalanced markers; the message names the notebook and the cell.
    """
    nb = nbformat.read(src_ipynb, as_version=4)
    changed = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tagged = SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])
        try:
            student = strip_solutions(cell.source, whole_cell=tagged)
        except ValueError as error:
            raise ValueError(f"{src_ipynb}, cell {index}: {error}. Fix the markers.") from None
        replaced = student != cell.source
        cell.source = student
        changed += replaced
        tags = cell.get("metadata", {}).get("tags", [])
        if replaced and _TOP_LEVEL_RAISE.search(student) and RAISES_TAG not in tags:
            cell.setdefault("metadata", {})["tags"] = [*tags, RAISES_TAG]
        if replaced or tagged or _REVEALING_CALL.search(student):
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(nb)
    Path(dst_ipynb).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst_ipynb)
    return changed


def main(argv: list[str] | None = None) -> int:
    """CLI: `python -m segtutor.exercises student SRC DST` (folders or single notebooks)."""
    parser = argparse.ArgumentParser(
        prog="python -m segtutor.exercises student",
        description="Write the student version of the notebooks (solutions replaced).",
    )
    parser.add_argument("src", type=Path, help="a notebook, or a folder of notebooks")
    parser.add_argument("dst", type=Path, help="where to write the student version(s)")
    args = parser.parse_args(argv)

    if args.src.is_dir():
        pairs = [
            (path, args.dst / path.relative_to(args.src))
            for path in sorted(args.src.rglob("*.ipynb"))
            if ".ipynb_checkpoints" not in path.parts
        ]
    else:
        dst = args.dst / args.src.name if args.dst.suffix != ".ipynb" else args.dst
        pairs = [(args.src, dst)]
    if not pairs:
        print(f"error: no notebooks found in {args.src}", file=sys.stderr)
        return 2
    # Writing over the instructor's notebooks would delete the worked solutions.
    if any(src.resolve() == dst.resolve() for src, dst in pairs):
        print(
            f"error: {args.dst} would overwrite the source notebooks; choose another folder",
            file=sys.stderr,
        )
        return 2
    try:
        for src, dst in pairs:
            print(f"{src} -> {dst}: {make_student_version(src, dst)} solution cell(s) replaced")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
