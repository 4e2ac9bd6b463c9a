"""Grade a folder of submitted notebooks: one CSV row per student and question.

Introduced in `01_data.ipynb`.

    python -m segtutor.exercises grade SUBMISSIONS/ --out grades.csv [--timeout 120]

SUBMISSIONS/ holds one notebook per student and course notebook, either in a folder per
student, `alice/01_data.ipynb`, or flat, `alice_01_data.ipynb` (everything before `_01_` names
the student). The notebook's number picks its questions: `01_...` is graded with
`segtutor.exercises.ex01`.

Each notebook is run headless in a kernel of its own (nbclient), in quick mode
(`SEGTUTOR_QUICK=1`), from a fresh temporary folder with the course's `data_samples/` beside
it, so that `../data_samples/...` opens as in class. The notebook is read into memory: the
submitted file is never written. Its cells run in order and an error does not stop the run (each
cell after it is still run); a cell gets `--timeout` seconds, then is interrupted.

The grade does not come from the notebook's own check cells, which a learner can edit or delete.
After the learner's cells, the grader runs one cell per question: it imports
`segtutor.exercises` afresh (a checker patched in the notebook is thrown away), looks up the
learner's answer by name (the function the question's worked solution defines, e.g.
`mask_to_tensor`, else the name the notebook's check cell passes) and runs the package's check.
So a deleted check cell changes nothing: the answer is checked if it exists, "not attempted" if
it does not. The verdict comes back as that cell's value, which the learner's code cannot
print. An answer that calls the checker's own reference is wrong.

Rows: `student, notebook, question, state, note`. A question's state is `correct`, `wrong` (the
note says why), `not attempted`, `crashed` (the kernel died, or the file is no notebook) or
`timed out` (its check ran over the limit). Problems of the notebook as a whole get rows of
their own, with `question` = `notebook`: `crashed` (a cell raised; not a notebook), `timed out`
(a cell ran over the limit), `changed` (a check cell deleted or edited, the checker touched;
graded all the same), `viewed solution` (`.solution()` called) and `skipped` (no exercises for
that file name). The CSV is rewritten (atomically) after every notebook: an interrupted batch
keeps what it finished.

This is not a sandbox: a submitted notebook runs with the grader's rights, like any notebook
one opens. Grade in a throwaway account or container when that matters.
"""

from __future__ import annotations

import argparse
import ast
import csv
import importlib
import importlib.util
import io
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import CodeType
from typing import Any

import nbformat

from segtutor.exercises.core import Question, questions
from segtutor.exercises.kernel import TIMEOUT, Kernel, KernelStuck
from segtutor.exercises.progress import state_of

__all__ = [
    "FIELDS",
    "answer_names",
    "audit",
    "check_in_kernel",
    "find_submissions",
    "grade_folder",
    "grade_notebook",
    "main",
    "write_csv",
]

FIELDS = ["student", "notebook", "question", "state", "note"]
_FLAT = re.compile(r"^(?P<student>.+?)_(?P<notebook>\d\d_[^/]*\.ipynb)$")
_CHECK_CELL = re.compile(r"^ex\.(\w+)\.check\((\w+)\)$")
_ANY_CHECK = re.compile(r"\bex\.(\w+)\.check\(")
_SOLUTION_CALL = re.compile(r"\bex\.(\w+)\.solution\(")
# What a notebook has no business touching: the questions' insides, the checking modules.
_TOUCHES = re.compile(
    r"\bex\.\w+\s*=[^=]|\bex\.\w+\.(?!check\(|hint\(|solution\()\w+"
    r"|segtutor\.exercises\.(core|feedback|compare)\b|\bQuestion\b|\bCheckResult\b"
)
# Run in the learner's kernel after their cells, per question: a fresh checker (its import has
# time enough), then the check alone under the time limit, its verdict as the cell's value.
_FRESH_CELL = """\
import sys as _grader_sys
import importlib as _grader_importlib
for _grader_name in [n for n in _grader_sys.modules if n.startswith("segtutor.exercises")]:
    del _grader_sys.modules[_grader_name]
_grader_check = _grader_importlib.import_module("segtutor.exercises.grade").check_in_kernel"""
_GRADING_CELL = "_grader_check({module!r}, {question!r}, {names!r}, globals())"


def find_submissions(folder: str | Path) -> list[tuple[str, str, Path]]:
    """`(student, notebook name, path)` of every `.ipynb` under `folder`, sorted.

    Introduced in `01_data.ipynb`.

    `folder/alice/01_data.ipynb` and `folder/alice_01_data.ipynb` both give
    `("alice", "01_data.ipynb", path)`; a flat name without `_NN_` is its own student.
    """
    folder = Path(folder)
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        parts = path.relative_to(folder).parts
        if any(part.startswith(".") for part in parts):  # .ipynb_checkpoints and hidden files
            continue
        if len(parts) > 1:
            found.append((parts[0], path.name, path))
        elif flat := _FLAT.match(path.name):
            found.append((flat["student"], flat["notebook"], path))
        else:
            found.append((path.stem, path.name, path))
    return found


def answer_names(question: Question, passed: str | None = None) -> list[str]:
    """The names the learner's answer may have: the one the worked solution defines (its last
    `def`, `class` or assignment), then `passed`, the name the notebook's check cell passes.

    Introduced in `01_data.ipynb`.
    """
    names = []
    try:
        body = ast.parse(question.solution_code).body
    except SyntaxError:
        body = []
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            names.append(node.targets[0].id)
    names = names[-1:]
    return names + [passed] if passed and passed not in names else names


def audit(nb: Any, question_ids: list[str]) -> tuple[dict[str, str], list[str], set[str]]:
    """What a notebook did to its exercises: `(names passed to the check cells, notes on
    changed checks, ids whose solution was shown)`.

    Introduced in `01_data.ipynb`.
    """
    passed: dict[str, str] = {}
    checked: set[str] = set()
    notes, viewed = [], set()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        source = cell.source.strip()
        viewed |= {found for found in _SOLUTION_CALL.findall(source) if found in question_ids}
        checked |= set(_ANY_CHECK.findall(source))
        if (plain := _CHECK_CELL.match(source)) and plain[1] in question_ids:
            passed[plain[1]] = plain[2]
        elif _ANY_CHECK.search(source) or _TOUCHES.search(source):
            first = source.splitlines()[0][:80]
            what = "edits a check" if _ANY_CHECK.search(source) else "touches the checker"
            notes.append(f"cell {index} {what}: `{first}`")
    missing = [q for q in question_ids if q not in checked]
    if missing:
        notes.append(f"no check cell for {', '.join(missing)}")
    return passed, notes, viewed


def check_in_kernel(module: str, question_id: str, names: list[str], namespace: dict) -> str:
    """Check the answer found in `namespace` (the learner's kernel); the verdict as JSON text.

    Introduced in `01_data.ipynb`.

    What the grading cell calls after the learner's cells, with this module freshly imported.
    """
    question = questions(importlib.import_module(module))[question_id]
    found = [name for name in names if name in namespace]
    if not found:
        verdict = {"state": "not attempted", "note": f"no `{names[0]}` in the notebook"}
    elif why := _borrowed(namespace[found[0]]):
        verdict = {"state": "wrong", "note": why}
    else:
        state, note = state_of(question.check(namespace[found[0]], show=False))
        verdict = {"state": state, "note": note}
    return json.dumps(verdict)


def _borrowed(answer: Any) -> str | None:
    """Why `answer` is the checker's own code rather than the learner's, or None."""
    owner = getattr(answer, "__self__", None)
    modules = [getattr(answer, "__module__", None), type(owner).__module__ if owner else None]
    names, codes = set(), [getattr(answer, "__code__", None)]
    while codes:  # the function's code and every function or lambda defined inside it
        code = codes.pop()
        if isinstance(code, CodeType):
            names |= set(code.co_names)
            codes += [c for c in code.co_consts if isinstance(c, CodeType)]
    if any(str(m).startswith("segtutor.exercises") for m in modules) or names & {
        "reference",
        "solution_code",
    }:
        return "The answer calls the checker's own reference: write the function yourself."
    return None


@contextmanager
def _workdir(data_dir: Path | None) -> Iterator[Path]:
    """A fresh `notebooks/` folder to run in, with `data_samples/` beside it."""
    with tempfile.TemporaryDirectory(prefix="segtutor-grade-") as root:
        (Path(root) / "notebooks").mkdir()
        if data_dir is not None:
            (Path(root) / "data_samples").symlink_to(data_dir.resolve(), target_is_directory=True)
        yield Path(root) / "notebooks"


def grade_notebook(path: Path, module_name: str, *, timeout: int, data_dir: Path | None,
                   kernel_name: str = "python3") -> list[dict[str, str]]:  # fmt: skip
    """Rows `{question, state, note}` of one submitted notebook (see the module's docstring).

    Introduced in `01_data.ipynb`.
    """
    questions_ = questions(importlib.import_module(module_name))
    ids = list(questions_)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # not JSON, not a notebook, unreadable: its rows say so
        note = f"not a notebook ({type(error).__name__}: {str(error)[:200]})"
        return [_row("notebook", "crashed", note)] + [_row(q, "crashed", note) for q in ids]
    passed, changed, viewed = audit(nb, ids)
    learner_cells = len(nb.cells)
    nb.metadata["segtutor_grade"] = module_name
    for q in ids:
        names = answer_names(questions_[q], passed.get(q))
        source = _GRADING_CELL.format(module=module_name, question=q, names=names)
        nb.cells += [nbformat.v4.new_code_cell(_FRESH_CELL), nbformat.v4.new_code_cell(source)]
    rows = [_row("notebook", "changed", "; ".join(changed))] if changed else []
    rows += [_row("notebook", "viewed solution", ", ".join(sorted(viewed)))] if viewed else []
    with _workdir(data_dir) as workdir:
        kernel = Kernel(nb, workdir, timeout, kernel_name)
        verdicts, fatal = _run_all(kernel, nb, learner_cells, ids, timeout)
    problems = [(i, name, value) for i, name, value in kernel.errors if 0 <= i < learner_cells]
    problems = [p for p in problems if not _placeholder_error(nb.cells[p[0]], p[1])]
    for state in ("crashed", "timed out"):
        mine = [p for p in problems if (p[1] == TIMEOUT) == (state == "timed out")]
        if mine and not (fatal and fatal[0] == state == "timed out"):  # said once, below
            rows.append(_row("notebook", state, _describe(mine, timeout)))
    rows += [_row("notebook", *fatal)] if fatal else []
    return rows + [_row(q, *verdicts[q]) for q in ids]


def _run_all(
    kernel: Kernel, nb: Any, learner_cells: int, ids: list[str], timeout: int
) -> tuple[dict[str, tuple[str, str]], tuple[str, str] | None]:
    """Run the learner's cells, then one grading cell per question.

    Returns:
        `{id: (state, note)}`, and `(state, note)` of what stopped the kernel, or None.
    """
    from nbclient.exceptions import DeadKernelError

    verdicts: dict[str, tuple[str, str]] = {}
    try:
        with kernel.client.setup_kernel(env=_quick_env()):
            # torch and the checker imported once, outside the learner's time limits
            nb.cells.append(nbformat.v4.new_code_cell(f"import {nb.metadata['segtutor_grade']}"))
            kernel.run(nb.cells[-1], len(nb.cells) - 1, limit=max(10 * timeout, 300))
            for index in range(learner_cells):
                if nb.cells[index].cell_type == "code":
                    kernel.run(nb.cells[index], index)
            for offset, q in enumerate(ids):
                index = learner_cells + 2 * offset
                if error := kernel.run(nb.cells[index], index, limit=max(10 * timeout, 300)):
                    verdicts[q] = ("crashed", f"the checker could not be imported ({error})")
                    continue
                error = kernel.run(nb.cells[index + 1], index + 1)
                verdicts[q] = _verdict(nb.cells[index + 1], error, timeout)
        return verdicts, None
    except KernelStuck as error:
        fatal = ("timed out", f"{error}; the kernel was stopped")
    except DeadKernelError:
        fatal = ("crashed", "the kernel died (the notebook ended its own process or ran out of "
                 "memory)")  # fmt: skip
    except Exception as error:  # a kernel that cannot start, a broken connection
        fatal = ("crashed", f"{type(error).__name__}: {str(error)[:200]}")
    unchecked = (fatal[0], f"not checked: {fatal[1]}")
    return {q: verdicts.get(q, unchecked) for q in ids}, fatal


def _verdict(cell: Any, error: str | None, timeout: int) -> tuple[str, str]:
    """A grading cell's (state, note), from its value or its error."""
    if error in (TIMEOUT, "KeyboardInterrupt"):
        return "timed out", f"the check was still running after {timeout} s"
    for output in cell.outputs:
        if output.output_type == "execute_result" and not error:
            verdict = json.loads(ast.literal_eval(output.data["text/plain"]))
            return verdict["state"], verdict["note"]
    shown = next((f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error"), "")
    return "crashed", f"the check gave no verdict ({shown or error or 'no value'})"


def _placeholder_error(cell: Any, error: str) -> bool:
    """The student version's own top-level placeholder: not attempted, not a crash."""
    return error == "NotImplementedError" and "raises-exception" in cell.metadata.get("tags", [])


def _describe(problems: list[tuple[int, str, str]], timeout: int) -> str:
    """'cell 4 raised ZeroDivisionError: division by zero; cell 9 raised ...' (three at most)."""
    said = [
        f"cell {index} ran over {timeout} s and was interrupted"
        if name == TIMEOUT
        else f"cell {index} raised {name}: {value[:200]}"
        for index, name, value in problems[:3]
    ]
    more = f"; and {len(problems) - 3} more cell(s)" if len(problems) > 3 else ""
    return "; ".join(said) + more


def _quick_env() -> dict[str, str]:
    return {**os.environ, "SEGTUTOR_QUICK": "1"}


def _row(question: str, state: str, note: str) -> dict[str, str]:
    return {"question": question, "state": state, "note": note}


def _module_for(notebook: str) -> str | None:
    """`01_data.ipynb` -> "segtutor.exercises.ex01", or None when there is no such module."""
    number = re.match(r"(\d\d)_", notebook)
    name = f"segtutor.exercises.ex{number[1]}" if number else None
    if name is None or importlib.util.find_spec(name) is None:
        return None
    return name


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    """Write `rows` as CSV with the columns `FIELDS`, atomically (temporary file, rename).

    Introduced in `01_data.ipynb`.
    """
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text.getvalue(), encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def grade_folder(folder: str | Path, out: str | Path, *, timeout: int = 120,
                 data_dir: Path | None = None, kernel_name: str = "python3",
                 log: Any = print) -> list[dict[str, str]]:  # fmt: skip
    """Grade every notebook under `folder` into the CSV `out`; returns the rows.

    Introduced in `01_data.ipynb`.
    """
    rows: list[dict[str, str]] = []
    write_csv(Path(out), rows)  # the header at once: an empty folder still gives a sheet
    for student, notebook, path in find_submissions(folder):
        module = _module_for(notebook)
        start = time.monotonic()
        if module is None:
            note = f"no exercises for {notebook}: name it after a course notebook (01_data.ipynb)"
            found = [_row("notebook", "skipped", note)]
        else:
            found = grade_notebook(
                path, module, timeout=timeout, data_dir=data_dir, kernel_name=kernel_name
            )
        rows += [{"student": student, "notebook": notebook, **row} for row in found]
        write_csv(Path(out), rows)
        correct = sum(row["state"] == "correct" for row in found)
        log(f"{student} {notebook}: {correct} correct ({time.monotonic() - start:.0f} s)")
    return rows


def _default_data_dir() -> Path | None:
    """`./data_samples`, else the one of the checkout this package runs from."""
    for candidate in (Path("data_samples"), Path(__file__).resolve().parents[2] / "data_samples"):
        if candidate.is_dir():
            return candidate
    return None


def main(argv: list[str] | None = None) -> int:
    """CLI: `python -m segtutor.exercises grade SUBMISSIONS/ --out grades.csv`.

    Introduced in `01_data.ipynb`.
    """
    parser = argparse.ArgumentParser(
        prog="python -m segtutor.exercises grade",
        description="Run every submitted notebook headless and write one CSV row per student "
        "and question (see segtutor/exercises/grade.py).",
    )
    parser.add_argument("submissions", type=Path, help="alice/01_data.ipynb or alice_01_data...")
    parser.add_argument("--out", type=Path, required=True, help="the CSV to write")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per cell (120)")
    parser.add_argument("--data", type=Path, default=None,
                        help="the data_samples folder the notebooks read (default: found)")  # fmt: skip
    parser.add_argument("--kernel", default="python3", help="the Jupyter kernel (python3)")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        print(f"error: {args.submissions} is not a folder of notebooks", file=sys.stderr)
        return 2
    if args.timeout < 1:
        parser.error("--timeout must be at least 1 second")
    data_dir = args.data or _default_data_dir()
    if data_dir is not None and not data_dir.is_dir():
        print(f"error: {data_dir} is not a folder; pass --data data_samples/", file=sys.stderr)
        return 2
    rows = grade_folder(
        args.submissions, args.out, timeout=args.timeout, data_dir=data_dir,
        kernel_name=args.kernel,
    )  # fmt: skip
    print(f"{args.out}: {len(rows)} row(s)")
    return 0
