"""The instructor guide (`docs/instructor.md`) is what `segtutor.exercises.guide` writes today."""

from __future__ import annotations

import difflib
from pathlib import Path

import torch

from segtutor.exercises import ex03, ex05
from segtutor.exercises.core import Case, Mistake, Question
from segtutor.exercises.guide import course_map, guide_markdown, main, question_section

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
GUIDE = ROOT / "docs" / "instructor.md"


def test_the_committed_guide_is_the_generated_one():
    expected = guide_markdown(README)
    committed = GUIDE.read_text(encoding="utf-8")
    if committed != expected:
        diff = difflib.unified_diff(
            committed.splitlines(), expected.splitlines(), "committed", "generated", lineterm=""
        )
        raise AssertionError(
            "docs/instructor.md is out of date; regenerate it from the repository root:\n"
            "    python -m segtutor.exercises.guide > docs/instructor.md\n"
            + "\n".join(list(diff)[:40])
        )


def test_the_course_map_gives_every_notebook_a_run_time():
    rows = course_map(README)
    notebooks = {p.stem for p in (ROOT / "solutions").glob("*.ipynb")}
    assert len(rows) >= 7 and set(rows) <= notebooks
    what, learner, run = rows["03_losses"]
    assert what.startswith("per-pixel cross-entropy")
    assert run.startswith("~") and run.endswith("s") and "min" in learner
    old_map = "| [01_data](notebooks/01_data.ipynb) | masks | `data` | ~20 s |"
    assert course_map(old_map) == {"01_data": ("masks", "?", "~20 s")}


def test_the_guide_holds_each_question_its_cases_and_its_mistakes():
    guide = guide_markdown(README)
    assert "| `04_training.ipynb` |" in guide  # the session plan
    assert f"#### `ex.q2`: {ex03.q2.title}" in guide
    for mistake in ex05.q2.mistakes:  # a Mistake table, note by note
        assert " ".join(mistake.note.split()) in guide
    assert "a 4x4 matrix where class 2 is in no mask and no prediction" in guide  # a case label
    # a note written in code (ex05.q1.diagnose), its field shown as "…"
    assert "This case uses ignore_index=…: use the argument, not a hard-coded 255." in guide
    # a questionnaire: its items' reasons, no "your answers" case
    assert "VOC marks object outlines and unclear regions 255 (section 3)." in guide


class _Double(Question):
    title = "Double a tensor"
    hints = ("Multiply by 2.",)
    mistakes = (
        Mistake(lambda x: x + 2, "Add? Multiply."),
        Mistake(lambda x: x + 2.0, "Add? Multiply."),
    )

    def reference(self, x):
        return 2 * x

    def cases(self):
        yield Case(torch.ones(3), label="three ones")
        yield Case(torch.zeros(2))

    def diagnose(self, expected, got):
        if got.shape != expected.shape:
            return f"Shape {tuple(got.shape)}: keep the input's " + "shape."
        return "short"  # too short to be a note


def test_a_question_section_reads_its_tables_and_its_code():
    section = question_section("q9", _Double())
    assert section.startswith("#### `ex.q9`: Double a tensor\n")
    assert "- three ones\n" in section and "- Case(tensor([0., 0.]))\n" in section
    assert "1. Multiply by 2.\n" in section
    assert section.count("Add? Multiply.") == 1  # one note, however many mistakes give it
    assert "- Shape …: keep the input's shape.\n" in section
    assert "short" not in section


def test_without_a_readme_the_command_says_where_to_run_it(tmp_path, capsys):
    assert main(["--readme", str(tmp_path / "README.md")]) == 2
    assert "Run from the repository root" in capsys.readouterr().err
