"""Tests for segtutor.exercises.student: the student version keeps no solution and stays valid."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from segtutor.exercises import Case, Question
from segtutor.exercises.student import (
    SOLUTION_TAG,
    main,
    make_student_version,
    strip_solutions,
)

FUNCTION_CELL = '''def count_pixels(mask, c):
    """Number of pixels of class `c` in `mask`."""
    # BEGIN SOLUTION
    hits = mask == c  # SECRET-1
    return int(hits.sum())
    # END SOLUTION'''

VALUE_CELL = """# BEGIN SOLUTION (placeholder: num_params = ...)
num_params = 2 * 4 * 3 * 3 + 4  # SECRET-2
# END SOLUTION
num_params"""


class CountPixels(Question):
    title = "Count the pixels of one class"

    def reference(self, mask, c):
        return int((mask == c).sum())

    def cases(self):
        yield Case(torch.tensor([[0, 1], [1, 1]]), 1)


def _output(text):
    return new_output("execute_result", data={"text/plain": text}, execution_count=1)


def _notebook():
    cells = [
        new_markdown_cell("# Count pixels\nWrite `count_pixels`."),
        new_code_cell(FUNCTION_CELL, metadata={"tags": ["solution"]}),
        new_code_cell(VALUE_CELL, metadata={"tags": ["solution"]}, outputs=[_output("76")]),
        new_code_cell("ex.q1.check(count_pixels)", outputs=[_output("Correct")]),
        new_code_cell("answer = 42  # SECRET-3", metadata={"tags": ["solution"]}),
        new_code_cell("# BEGIN SOLUTION\nx = 1  # SECRET-4\n# END SOLUTION"),  # tag forgotten
        new_code_cell("print('kept')", outputs=[_output("kept")]),
    ]
    for i, cell in enumerate(cells):
        if cell.cell_type == "code":
            cell.execution_count = i
    return new_notebook(cells=cells)


@pytest.fixture
def student(tmp_path):
    src, dst = tmp_path / "01_data.ipynb", tmp_path / "student" / "01_data.ipynb"
    nbformat.write(_notebook(), src)
    changed = make_student_version(src, dst)
    return changed, dst


def test_no_solution_is_left(student):
    changed, dst = student
    assert changed == 4
    text = dst.read_text()
    assert "SECRET" not in text
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text


def test_student_version_is_valid_json_and_nbformat(student):
    _, dst = student
    json.loads(dst.read_text())
    nbformat.validate(nbformat.read(dst, as_version=4))


def test_placeholders_and_outputs(student):
    _, dst = student
    cells = nbformat.read(dst, as_version=4).cells
    assert cells[1].source == (
        "def count_pixels(mask, c):\n"
        '    """Number of pixels of class `c` in `mask`."""\n'
        '    raise NotImplementedError("your code here")'
    )
    assert cells[2].source == "num_params = ...\nnum_params"
    assert cells[4].source == 'raise NotImplementedError("your code here")'
    assert cells[5].source == 'raise NotImplementedError("your code here")'
    for i in (1, 2, 3, 4, 5):  # solution cells and the check cell: no stale "Correct"
        assert cells[i].outputs == [] and cells[i].execution_count is None
    assert cells[6].outputs[0].data["text/plain"] == "kept"
    assert cells[0].source.startswith("# Count pixels")


def test_check_sees_the_student_placeholders_as_not_attempted(student):
    _, dst = student
    cells = nbformat.read(dst, as_version=4).cells
    namespace = {}
    exec(cells[1].source, namespace)
    exec(cells[2].source, namespace)
    assert CountPixels().check(namespace["count_pixels"]).status == "not_attempted"
    assert CountPixels().check(namespace["num_params"]).status == "not_attempted"


def test_strip_solutions_keeps_code_around_the_markers():
    source = "a = 1\n    # BEGIN SOLUTION\n    b = 2\n    # END SOLUTION\nc = 3\n"
    assert (
        strip_solutions(source) == 'a = 1\n    raise NotImplementedError("your code here")\nc = 3\n'
    )
    assert strip_solutions("no markers") == "no markers"


@pytest.mark.parametrize(
    "source",
    ["# BEGIN SOLUTION\nx = 1", "x = 1\n# END SOLUTION", "# BEGIN SOLUTION\n# BEGIN SOLUTION"],
)
def test_unbalanced_markers_are_refused(tmp_path, source):
    nb = new_notebook(cells=[new_markdown_cell("# t"), new_code_cell(source)])
    nbformat.write(nb, tmp_path / "bad.ipynb")
    with pytest.raises(ValueError, match=r"bad\.ipynb, cell 1: .*SOLUTION"):
        make_student_version(tmp_path / "bad.ipynb", tmp_path / "out.ipynb")


def test_cli_converts_a_folder(tmp_path, capsys):
    notebooks = tmp_path / "notebooks"
    (notebooks / ".ipynb_checkpoints").mkdir(parents=True)
    nbformat.write(_notebook(), notebooks / "01_data.ipynb")
    nbformat.write(_notebook(), notebooks / ".ipynb_checkpoints" / "01_data-checkpoint.ipynb")
    assert main([str(notebooks), str(tmp_path / "student")]) == 0
    written = sorted(p.name for p in (tmp_path / "student").rglob("*.ipynb"))
    assert written == ["01_data.ipynb"]
    assert "4 solution cell(s) replaced" in capsys.readouterr().out


def test_cli_refuses_to_overwrite_the_sources(tmp_path, capsys):
    nbformat.write(_notebook(), tmp_path / "01_data.ipynb")
    assert main([str(tmp_path), str(tmp_path)]) == 2
    assert "overwrite" in capsys.readouterr().err
    assert "SECRET" in (tmp_path / "01_data.ipynb").read_text()


@pytest.mark.slow  # starts a Python process
def test_cli_as_a_module(tmp_path):
    nbformat.write(_notebook(), tmp_path / "01_data.ipynb")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "segtutor.exercises.student",
            str(tmp_path / "01_data.ipynb"),
            str(tmp_path / "student"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "SECRET" not in (tmp_path / "student" / "01_data.ipynb").read_text()


def test_a_top_level_placeholder_is_tagged_so_run_all_carries_on(student):
    _, dst = student
    cells = nbformat.read(dst, as_version=4).cells
    assert "raises-exception" in cells[4].metadata["tags"]  # a whole solution cell
    assert "raises-exception" in cells[5].metadata["tags"]  # markers without the tag
    assert "raises-exception" not in cells[1].metadata["tags"]  # raises only when called
    assert "tags" not in cells[6].metadata


# ---- the course itself: solutions/ (worked, what the tests run) and notebooks/ (students) ----

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS, STUDENT = ROOT / "solutions", ROOT / "notebooks"
COURSE = sorted(p.name for p in SOLUTIONS.glob("*.ipynb"))
REGENERATE = "python -m segtutor.exercises student solutions/ notebooks/"
CHECK_CALL = re.compile(r"\bex\.\w+\.check\(")


def _code_lines(source):
    return {line.strip() for line in source.splitlines()} - {""}


def _solution_lines(nb):
    """(lines inside solution blocks, every other line of the notebook), stripped."""
    secret, public = set(), set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            public |= _code_lines(cell.source)
            continue
        whole = SOLUTION_TAG in cell.metadata.get("tags", []) and "# BEGIN SOLUTION" not in (
            cell.source
        )
        inside = whole
        for line in cell.source.splitlines():
            if "# BEGIN SOLUTION" in line or "# END SOLUTION" in line:
                inside = "BEGIN" in line
            elif line.strip():
                (secret if inside else public).add(line.strip())
    return secret, public


def test_the_course_has_both_versions_of_every_notebook():
    assert COURSE, "no notebooks in solutions/"
    assert sorted(p.name for p in STUDENT.glob("*.ipynb")) == COURSE, (
        f"notebooks/ and solutions/ hold different notebooks: run `{REGENERATE}` "
        "(and delete from notebooks/ what solutions/ no longer has)"
    )


@pytest.mark.parametrize("name", COURSE)
def test_committed_student_version_is_what_the_generator_makes(tmp_path, name):
    make_student_version(SOLUTIONS / name, tmp_path / name)
    generated = nbformat.read(tmp_path / name, as_version=4)
    committed = nbformat.read(STUDENT / name, as_version=4)
    assert committed == generated, (
        f"notebooks/{name} is not the student version of solutions/{name}: "
        f"solutions/ changed without regenerating. Run `{REGENERATE}` and commit notebooks/."
    )


@pytest.mark.parametrize("name", COURSE)
def test_no_answer_survives_in_the_student_version(name):
    secret, public = _solution_lines(nbformat.read(SOLUTIONS / name, as_version=4))
    assert secret, f"solutions/{name} has no solution block"
    leaked = secret - public  # lines the notebook also shows outside its answers are no secret
    student = nbformat.read(STUDENT / name, as_version=4)
    for index, cell in enumerate(student.cells):
        where = f"notebooks/{name}, cell {index}"
        assert not leaked & _code_lines(cell.source), f"{where} holds a line of an answer"
        assert "SOLUTION" not in cell.source, f"{where} still has a solution marker"
        outputs = json.dumps(cell.get("outputs", []))
        assert "Correct:" not in outputs, f"{where} stores a 'Correct' verdict"
        assert "Solution:" not in outputs, f"{where} stores the output of `.solution()`"
        if cell.cell_type == "code" and CHECK_CALL.search(cell.source):
            assert cell.outputs == [], f"{where} stores the output of a check"


def _run_in_quick_mode(path, cwd):
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=2000, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env={**os.environ, "SEGTUTOR_QUICK": "1"})
    return nb


@pytest.mark.slow  # runs every student notebook in a kernel (quick mode)
@pytest.mark.parametrize("name", COURSE)
def test_every_check_of_the_student_version_says_not_attempted(name):
    nb = _run_in_quick_mode(STUDENT / name, STUDENT)
    checks = [c for c in nb.cells if c.cell_type == "code" and CHECK_CALL.search(c.source)]
    assert len(checks) >= 3, f"notebooks/{name} has {len(checks)} check cells"
    for cell in checks:
        text = json.dumps(cell.outputs)
        assert "Not attempted yet" in text, f"{cell.source!r} printed {text[:300]}"
        assert "Correct:" not in text and "Not quite" not in text
