"""The Colab setup cell: the same in every notebook, a no-op off Colab, and on Colab it clones
the repository the website's links point at, installs it over Colab's torch, and moves into
`notebooks/` so that `../data_samples` resolves.

Colab itself cannot run here (no network); the cell runs in a namespace where a module named
`google.colab` is imported and `subprocess.run`, `os.chdir` and `os.path.isdir` are recorded.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
STUDENT = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _site_repo() -> str:
    spec = importlib.util.spec_from_file_location("build_site", ROOT / "docs" / "build_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SITE_REPO


def colab_cell(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    tagged = [c for c in cells if "colab" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged colab"
    return "".join(tagged[0]["source"])


def test_every_notebook_has_the_same_cell():
    sources = {path: colab_cell(path) for path in SOLUTIONS + STUDENT}
    assert len(sources) == len(SOLUTIONS) + len(STUDENT) == 18
    assert len(set(sources.values())) == 1, "the notebooks' Colab cells differ"


def test_it_clones_the_repository_the_website_links_to():
    source = colab_cell(SOLUTIONS[0])
    assert f'REPOSITORY = "{_site_repo()}"' in source


def _run(source: str, on_colab: bool, cloned: bool = False, monkeypatch=None):
    calls: list[tuple] = []

    def record_run(args, **kwargs):
        calls.append(("run", list(args), kwargs.get("check")))
        return subprocess.CompletedProcess(args, 0)

    monkeypatch.setattr(subprocess, "run", record_run)
    monkeypatch.setattr("os.chdir", lambda path: calls.append(("chdir", str(path))))
    monkeypatch.setattr("os.path.isdir", lambda path: cloned)
    monkeypatch.setattr(sys, "path", list(sys.path))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, "colab-cell", "exec"), {})
    return calls


def test_off_colab_it_does_nothing(monkeypatch):
    assert _run(colab_cell(SOLUTIONS[0]), on_colab=False, monkeypatch=monkeypatch) == []


def test_on_colab_it_clones_installs_and_moves_into_the_notebooks(monkeypatch):
    calls = _run(colab_cell(SOLUTIONS[0]), on_colab=True, monkeypatch=monkeypatch)
    clone, install, chdir = calls
    assert clone == ("run", ["git", "clone", "--depth", "1", _site_repo(), "/content/segtutor"],
                     True)  # fmt: skip
    assert install[0] == "run" and install[2] is True
    assert install[1][1:] == ["-m", "pip", "install", "-q", "-e", "/content/segtutor"]
    assert "torch" not in " ".join(install[1]), "Colab's own torch must stay"
    assert chdir == ("chdir", "/content/segtutor/notebooks")
    assert "/content/segtutor" in sys.path  # importable before the kernel restarts
    assert (ROOT / "notebooks" / ".." / "data_samples").is_dir()  # what the chdir is for


def test_a_second_run_does_not_clone_again(monkeypatch):
    calls = _run(colab_cell(SOLUTIONS[0]), on_colab=True, cloned=True, monkeypatch=monkeypatch)
    assert [c[1][:2] for c in calls if c[0] == "run"] == [[sys.executable, "-m"]]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_it_comes_before_anything_imports_segtutor(path: Path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert "colab" in code[0].get("metadata", {}).get("tags", []), "the first code cell"
    assert not code[0].get("outputs"), "off Colab it prints nothing"
