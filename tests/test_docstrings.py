"""The library stays readable: every public piece says where the course introduces it, and no
function grows past one screenful or so (the exercises' data tables aside)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import segtutor

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {path.name for path in (ROOT / "solutions").glob("*.ipynb")}
INTRODUCED = re.compile(r"Introduced in `([^`]+)`")
MAX_FUNCTION_LINES = 90  # def line to last line, docstring included


def _module_names() -> list[str]:
    names = ["segtutor"]
    for info in pkgutil.walk_packages(segtutor.__path__, "segtutor."):
        if not info.name.endswith("__main__"):  # importing it runs the command line
            names.append(info.name)
    return names


MODULES = _module_names()


def _introduction_problem(doc: str | None) -> str | None:
    """None when `doc` names an existing notebook as where it is introduced, else what is wrong."""
    if not doc:
        return "no docstring"
    found = INTRODUCED.findall(doc)
    if not found:
        return "no 'Introduced in `NN_name.ipynb`'"
    missing = [name for name in found if name not in NOTEBOOKS]
    return f"names no notebook: {missing}" if missing else None


def test_the_package_has_modules_and_the_notebooks_exist():
    assert len(MODULES) > 20
    assert {"01_data.ipynb", "04_training.ipynb"} <= NOTEBOOKS


def test_the_check_sees_a_missing_or_wrong_introduction():
    assert _introduction_problem("Introduced in `02_unet.ipynb`.") is None
    assert _introduction_problem(None) == "no docstring"
    assert _introduction_problem("Introduced in 02_unet.ipynb.") is not None
    assert _introduction_problem("Introduced in `07_nowhere.ipynb`.") is not None


@pytest.mark.parametrize("module_name", MODULES)
def test_every_module_and_public_name_says_where_it_is_introduced(module_name):
    module = importlib.import_module(module_name)
    problems = []
    if problem := _introduction_problem(module.__doc__):
        problems.append(f"module {module_name}: {problem}")
    assert hasattr(module, "__all__"), f"{module_name} has no __all__"
    for name in module.__all__:
        obj = getattr(module, name)
        if getattr(obj, "__module__", None) != module_name:
            continue  # re-exported or a constant: its own module answers for it
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if problem := _introduction_problem(inspect.getdoc(obj)):
            problems.append(f"{module_name}.{name}: {problem}")
    assert not problems, "\n".join(problems)


def _long_functions(source: str, limit: int) -> list[str]:
    """'name (N lines)' for each function of `source` longer than `limit` lines."""
    return [
        f"{node.name}:{node.lineno} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > limit
    ]


def test_the_length_check_sees_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    source = f"def long():\n{body}\n\n\ndef short():\n    pass\n"
    assert _long_functions(source, MAX_FUNCTION_LINES) == [
        f"long:1 ({MAX_FUNCTION_LINES + 1} lines)"
    ]


def test_no_function_is_longer_than_one_sitting():
    sources = [
        path
        for path in sorted((ROOT / "segtutor").rglob("*.py"))
        if not (path.parent.name == "exercises" and path.name.startswith("ex"))
    ]
    assert len(sources) > 20
    long = [
        f"{path.relative_to(ROOT)}: {entry}"
        for path in sources
        for entry in _long_functions(path.read_text(encoding="utf-8"), MAX_FUNCTION_LINES)
    ]
    assert not long, "split these functions:\n" + "\n".join(long)
