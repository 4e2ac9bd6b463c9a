"""Tests for segtutor.exercises.progress: the table of a notebook's questions and its JSON."""

import json
import sys
import types

import pytest
import torch

from segtutor.exercises import Case, Question
from segtutor.exercises.progress import make_progress, notebook_of, progress_of


class CountPixels(Question):
    title = "Count the pixels of one class"

    def reference(self, mask, c):
        return int((mask == c).sum())

    def cases(self):
        yield Case(torch.tensor([[0, 1], [1, 1]]), 1)


class Double(CountPixels):
    title = "Twice the count"

    def reference(self, mask, c):
        return 2 * int((mask == c).sum())


def count_pixels(mask, c):
    return int((mask == c).sum())


def count_pixels_wrong(mask, c):
    return int((mask != c).sum())


def not_yet(mask, c):
    raise NotImplementedError("your code here")


@pytest.fixture
def ex():
    """A made-up exercise module, registered as the exNN modules are."""
    module = types.ModuleType("exercises_for_tests", "Questions.\n\nIntroduced in `01_data.ipynb`.")
    module.q1, module.q2, module.q3, module.q4 = CountPixels(), Double(), CountPixels(), Double()
    module.progress = make_progress(module.__name__)
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def _checked(ex):
    ex.q1.check(count_pixels, show=False)
    ex.q2.check(count_pixels_wrong, show=False)
    ex.q3.check(not_yet, show=False)
    return ex.progress()


def test_each_question_has_its_state(ex):
    progress = _checked(ex)
    assert progress.notebook == "01_data.ipynb"
    assert [(r["id"], r["state"]) for r in progress.rows] == [
        ("q1", "correct"),
        ("q2", "wrong"),
        ("q3", "not attempted"),
        ("q4", "not run"),
    ]
    assert progress.rows[1]["title"] == "Twice the count"
    # the note says why (the output differs) without the title line or the "Stuck?" tip
    assert progress.rows[1]["note"].startswith("Case 1 of 1: count_pixels_wrong(")
    assert "Stuck?" not in progress.rows[1]["note"]
    assert progress.rows[0]["note"] == progress.rows[2]["note"] == progress.rows[3]["note"] == ""
    assert progress.rows[3]["checked_at"] is None and progress.rows[0]["checked_at"]
    assert progress.summary() == "01_data.ipynb: 1 of 4 correct"


def test_a_new_check_replaces_the_state(ex):
    _checked(ex)
    ex.q2.check(lambda mask, c: 2 * int((mask == c).sum()), show=False)
    assert ex.progress().rows[1]["state"] == "correct"


def test_text_and_html_tables(ex):
    progress = _checked(ex)
    text = str(progress).splitlines()
    assert text[0] == "01_data.ipynb: 1 of 4 correct"
    assert text[2].split()[:2] == ["q1", "correct"]
    assert text[3].split()[:2] == ["q2", "wrong"]
    assert text[5].split()[:3] == ["q3", "not", "attempted"]
    assert text[6].split()[:3] == ["q4", "not", "run"]
    page = progress._repr_html_()
    assert page.count("<tr>") == 5 and "<b>not run</b>" in page and "Twice the count" in page


def test_to_json_writes_the_rows(ex, tmp_path):
    path = _checked(ex).to_json(tmp_path / "out" / "progress.json")
    data = json.loads(path.read_text())
    assert data["notebook"] == "01_data.ipynb" and data["exported_at"].endswith("+00:00")
    assert [q["state"] for q in data["questions"]] == [
        "correct",
        "wrong",
        "not attempted",
        "not run",
    ]
    assert data["questions"][0] == {
        "id": "q1",
        "title": "Count the pixels of one class",
        "state": "correct",
        "note": "",
        "checked_at": ex.q1.last_result.checked_at,
    }
    assert list(tmp_path.joinpath("out").iterdir()) == [path]  # no temporary file left


def test_the_course_modules_name_their_notebook():
    from segtutor.exercises import ex01, ex04

    assert notebook_of(ex01) == "01_data.ipynb"
    assert notebook_of(ex04) == "04_training.ipynb"
    assert [r["id"] for r in progress_of(ex01).rows][:4] == ["q1", "q2", "q3", "q4"]
