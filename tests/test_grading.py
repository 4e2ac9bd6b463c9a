"""Tests for segtutor.exercises.grade: a folder of made-up submissions, one per way to go wrong."""

import csv
import json
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from segtutor.exercises import ex01
from segtutor.exercises.__main__ import main as exercises_main
from segtutor.exercises.grade import (
    answer_names,
    audit,
    check_in_kernel,
    find_submissions,
    grade_folder,
    main,
    write_csv,
)

SETUP = "import numpy as np\nimport torch\nfrom segtutor.exercises import ex01 as ex"
RIGHT_Q1 = "def mask_to_tensor(pil_mask):\n    return torch.from_numpy(np.array(pil_mask)).long()"
WRONG_Q3 = (  # counts the ignored pixels as class 255: the grade's note must say so
    "def class_pixel_counts(masks, num_classes, ignore_index=255):\n"
    "    return torch.bincount(masks.flatten(), minlength=num_classes)"
)
HANGS_Q4 = "def resize_mask(mask, size):\n    while True:\n        pass"
# Each way of faking a "Correct" that a learner might try, in one cell.
CHEATS = """\
from segtutor.exercises.core import Question
from segtutor.exercises.feedback import CheckResult
Question._verdict = lambda self, answer: CheckResult("correct", "Correct: faked.")
ex.q3.reference = lambda masks, num_classes, ignore_index=255: torch.bincount(
    masks.flatten(), minlength=num_classes)
pair_by_stem = ex.q2.reference"""


def _notebook(*sources):
    cells = [new_markdown_cell("# 01 · Data")] + [new_code_cell(s) for s in sources]
    return new_notebook(cells=cells)


def _write(path, nb):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _submissions(root):
    """alice: folder layout, right, wrong, missing, a crash and two hangs; bob: flat name, every
    cheat and no check cells; carol: not JSON; dave: ends his kernel; erin: no exercises."""
    alice = _notebook(
        SETUP,
        RIGHT_Q1,
        "ex.q1.check(mask_to_tensor)",
        "1 / 0",
        "import time\ntime.sleep(600)",
        WRONG_Q3,
        "ex.q3.check(class_pixel_counts)",
        HANGS_Q4,
        "ex.q2.check(pair_by_stem)",
    )
    _write(root / "alice" / "01_data.ipynb", alice)
    _write(root / "bob_01_data.ipynb", _notebook(SETUP, RIGHT_Q1, WRONG_Q3, CHEATS))
    (root / "carol_01_data.ipynb").write_text('{"cells": [ this is not JSON')
    _write(root / "dave" / "01_data.ipynb", _notebook(RIGHT_Q1, "import os\nos._exit(3)"))
    _write(root / "erin" / "notes.ipynb", _notebook("x = 1"))
    (root / "erin" / "notes.txt").write_text("not a notebook, not graded")
    return root


def _table(rows):
    return {(r["student"], r["question"], r["state"]): r["note"] for r in rows}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = _submissions(tmp_path_factory.mktemp("submissions"))
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    out = root.parent / "grades.csv"
    start = time.monotonic()
    rows = grade_folder(root, out, timeout=15, data_dir=None, log=lambda line: None)
    print(f"graded 5 submissions in {time.monotonic() - start:.0f} s")
    return root, before, out, rows


@pytest.mark.slow  # starts three kernels
def test_each_question_gets_the_packages_verdict(graded):
    *_, rows = graded
    alice = {r["question"]: (r["state"], r["note"]) for r in rows if r["student"] == "alice"}
    assert alice["q1"] == ("correct", "")
    assert alice["q2"] == ("not attempted", "no `pair_by_stem` in the notebook")
    assert alice["q3"][0] == "wrong" and "ignored pixels" in alice["q3"][1]
    # the learner's function hangs when the grader calls it: that question alone times out
    assert alice["q4"] == ("timed out", "the check was still running after 15 s")


@pytest.mark.slow
def test_a_crash_and_a_hang_get_their_rows_and_the_run_goes_on(graded):
    *_, rows = graded
    table = _table(rows)
    assert table["alice", "notebook", "crashed"] == (
        "cell 4 raised ZeroDivisionError: division by zero; "
        "cell 9 raised NameError: name 'pair_by_stem' is not defined"
    )
    assert table["alice", "notebook", "timed out"] == "cell 5 ran over 15 s and was interrupted"
    assert "no check cell for q4" in table["alice", "notebook", "changed"]
    # dave's kernel died: his answers could not be checked, and the batch went on to erin
    assert "the kernel died" in table["dave", "notebook", "crashed"]
    dave = [r for r in rows if r["student"] == "dave" and r["question"] != "notebook"]
    assert {r["state"] for r in dave} == {"crashed"} and len(dave) >= 4
    assert dave[0]["note"].startswith("not checked: the kernel died")


@pytest.mark.slow
def test_an_edited_checker_or_a_deleted_check_cell_fakes_nothing(graded):
    *_, rows = graded
    bob = {r["question"]: (r["state"], r["note"]) for r in rows if r["student"] == "bob"}
    assert bob["q1"] == ("correct", "")  # no check cell: checked all the same
    assert bob["q3"][0] == "wrong"  # the patched Question and reference were thrown away
    assert bob["q2"] == (
        "wrong",
        "The answer calls the checker's own reference: write the function yourself.",
    )
    assert bob["q4"][0] == "not attempted"
    changed = bob["notebook"]
    assert changed[0] == "changed" and "touches the checker" in changed[1]
    assert "no check cell for q1, q2, q3, q4" in changed[1]


@pytest.mark.slow
def test_unreadable_and_unknown_notebooks_get_rows(graded):
    *_, rows = graded
    carol = [r for r in rows if r["student"] == "carol"]
    assert carol[0]["question"] == "notebook" and carol[0]["state"] == "crashed"
    assert carol[0]["note"].startswith("not a notebook (NotJSONError")
    assert [r["question"] for r in carol[1:5]] == ["q1", "q2", "q3", "q4"]
    erin = [r for r in rows if r["student"] == "erin"]
    assert [(r["notebook"], r["state"]) for r in erin] == [("notes.ipynb", "skipped")]


@pytest.mark.slow
def test_the_csv_holds_every_row_and_the_submissions_are_untouched(graded):
    root, before, out, rows = graded
    with open(out, newline="", encoding="utf-8") as f:
        assert list(csv.DictReader(f)) == rows
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    assert [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")] == []


# ---- the parts, without a kernel ------------------------------------------------------------


def test_both_layouts_are_found(tmp_path):
    for name in ("alice/01_data.ipynb", "bob_smith_02_unet.ipynb", "x.ipynb", "a/.x/01.ipynb"):
        _write(tmp_path / name, _notebook())
    (tmp_path / ".ipynb_checkpoints").mkdir()
    _write(tmp_path / ".ipynb_checkpoints" / "c_01_data-checkpoint.ipynb", _notebook())
    found = [(s, n) for s, n, _ in find_submissions(tmp_path)]
    assert found == [("alice", "01_data.ipynb"), ("bob_smith", "02_unet.ipynb"), ("x", "x.ipynb")]


def test_the_answer_is_looked_up_by_the_name_the_solution_defines():
    assert answer_names(ex01.q1) == ["mask_to_tensor"]
    assert answer_names(ex01.q2) == ["pair_by_stem"]  # after `IMAGE_EXTENSIONS = ...`
    assert answer_names(ex01.q1, "my_fn") == ["mask_to_tensor", "my_fn"]
    assert answer_names(ex01.q1, "mask_to_tensor") == ["mask_to_tensor"]


def test_audit_names_deleted_and_edited_checks_and_viewed_solutions():
    nb = _notebook(
        "ex.q1.check(my_mask_to_tensor)",
        "ex.q2.check(lambda a, b: ([], []))",
        "ex.q3.solution()",
        "ex.q3.last_result = None",
    )
    passed, notes, viewed = audit(nb, ["q1", "q2", "q3", "q4"])
    assert passed == {"q1": "my_mask_to_tensor"}
    assert notes == [
        "cell 2 edits a check: `ex.q2.check(lambda a, b: ([], []))`",
        "cell 4 touches the checker: `ex.q3.last_result = None`",
        "no check cell for q3, q4",
    ]
    assert viewed == {"q3"}


def test_check_in_kernel_checks_what_the_namespace_holds():
    namespace = {}
    exec(RIGHT_Q1 + "\n" + WRONG_Q3, {"np": __import__("numpy"), "torch": __import__("torch")},
         namespace)  # fmt: skip
    module = "segtutor.exercises.ex01"
    verdict = json.loads(check_in_kernel(module, "q1", ["mask_to_tensor"], namespace))
    assert verdict == {"state": "correct", "note": ""}
    verdict = json.loads(check_in_kernel(module, "q3", ["class_pixel_counts"], namespace))
    assert verdict["state"] == "wrong" and verdict["note"].startswith("Case 1 of 3")
    verdict = json.loads(check_in_kernel(module, "q4", ["resize_mask"], namespace))
    assert verdict == {"state": "not attempted", "note": "no `resize_mask` in the notebook"}
    namespace["resize_mask"] = lambda mask, size: ex01.q4.reference(mask, size)
    verdict = json.loads(check_in_kernel(module, "q4", ["resize_mask"], namespace))
    assert verdict["state"] == "wrong" and "own reference" in verdict["note"]


def test_write_csv_replaces_the_file_whole(tmp_path):
    out = tmp_path / "grades.csv"
    out.write_text("old")
    row = {"student": "a", "notebook": "01_data.ipynb", "question": "q1", "state": "wrong",
           "note": 'two\nlines, "quoted"'}  # fmt: skip
    write_csv(out, [row])
    with open(out, newline="", encoding="utf-8") as f:
        assert list(csv.DictReader(f)) == [row]
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]


def test_the_command_refuses_a_missing_folder(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "g.csv")]) == 2
    assert "is not a folder of notebooks" in capsys.readouterr().err
    assert not (tmp_path / "g.csv").exists()


def test_python_m_segtutor_exercises_runs_both_commands(tmp_path, capsys):
    _write(
        tmp_path / "solutions" / "01_data.ipynb",
        _notebook("# BEGIN SOLUTION\nx = 1\n# END SOLUTION"),
    )
    assert exercises_main(["student", str(tmp_path / "solutions"), str(tmp_path / "out")]) == 0
    assert "x = 1" not in (tmp_path / "out" / "01_data.ipynb").read_text()
    (tmp_path / "subs").mkdir()
    assert exercises_main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "g.csv")]) == 0
    assert (tmp_path / "g.csv").read_text().splitlines() == ["student,notebook,question,state,note"]
    with pytest.raises(SystemExit):
        exercises_main(["mark"])
    assert "invalid choice: 'mark'" in capsys.readouterr().err
