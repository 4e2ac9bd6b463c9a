"""The install split: `requirements.txt` is what a learner needs, `requirements-dev.txt` adds the
test and development tools, and nothing a learner runs imports a tool of the second file.

"What a learner runs" is the whole `segtutor` package (the command line, the widgets, the
exercises; imports inside functions count too: `python -m segtutor export` must work) and every
import of the notebooks' code cells. Each imported top-level module is mapped to the
distribution that provides it in this environment, and that distribution must be one the
learner's file installs, directly or as a dependency of one (`importlib.metadata`).
"""

from __future__ import annotations

import ast
import json
import re
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LEARNER_FILE = ROOT / "requirements.txt"
DEV_FILE = ROOT / "requirements-dev.txt"
TEST_COMMAND = (
    "python3.11 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt "
    "&& .venv/bin/python -m pytest"
)
TOOLS = {"pytest", "nbval", "ruff", "playwright", "torchmetrics", "sphinx", "myst-nb", "furo"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(path: Path) -> tuple[list[str], list[str]]:
    """(distribution names, `-r` includes) of a requirements file; `-e .` is segtutor."""
    names, includes = [], []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r"):
            includes.append(line[2:].strip())
        elif line == "-e .":
            names.append("segtutor")
        else:
            names.append(canonical(re.split(r"[<>=~!\[; ]", line, maxsplit=1)[0]))
    return names, includes


@cache
def closure(names: tuple[str, ...]) -> frozenset[str]:
    """`names` and everything they require, as installed here (markers evaluated, no extras)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = canonical(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            spec, _, marker = requirement.partition(";")
            if "extra" in marker:
                continue  # an optional extra: not installed by asking for the package
            if marker.strip() and not _marker_holds(marker):
                continue
            todo.append(re.split(r"[<>=~!\[( ]", spec.strip(), maxsplit=1)[0])
    return frozenset(seen)


def _marker_holds(marker: str) -> bool:
    from packaging.markers import Marker  # packaging comes with pip, setuptools and pytest

    return Marker(marker.strip()).evaluate()


def third_party_imports(tree: ast.AST) -> set[str]:
    """The top-level modules an AST imports, the standard library and segtutor left out."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "segtutor"}


def notebook_code(path: Path) -> str:
    """A notebook's code cells as Python (IPython magics and shell lines dropped)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines = [
        line
        for cell in cells
        if cell["cell_type"] == "code"
        for line in "".join(cell["source"]).splitlines()
        if not line.lstrip().startswith(("%", "!"))
    ]
    return "\n".join(lines)


@cache
def learner_distributions() -> frozenset[str]:
    names, _ = requirement_names(LEARNER_FILE)
    return closure(tuple(names))


@cache
def _distributions_of_modules() -> dict[str, list[str]]:
    return metadata.packages_distributions()  # reads every installed distribution: once


def providers(module: str) -> set[str]:
    """The installed distributions that provide the top-level module `module`."""
    return {canonical(d) for d in _distributions_of_modules().get(module, [])}


def test_the_dev_file_is_the_learner_file_plus_tools():
    learner, learner_includes = requirement_names(LEARNER_FILE)
    dev, dev_includes = requirement_names(DEV_FILE)
    assert learner_includes == [] and dev_includes == ["requirements.txt"]
    assert {"torch", "torchvision", "jupyterlab", "ipykernel", "ipywidgets", "segtutor"} <= set(
        learner
    )
    assert not set(learner) & TOOLS, "test and development tools belong in requirements-dev.txt"
    assert set(dev) >= TOOLS, f"requirements-dev.txt lacks {TOOLS - set(dev)}"
    assert not set(learner) & set(dev), "a package listed in both files"


def test_torch_is_pinned_exactly_as_the_cpu_only_path_installs_it():
    text = LEARNER_FILE.read_text()
    torch = re.search(r"^torch==(\S+)$", text, re.M)
    vision = re.search(r"^torchvision==(\S+)$", text, re.M)
    assert torch and vision
    cpu_line = (
        "pip install --index-url https://download.pytorch.org/whl/cpu "
        f"torch=={torch[1]} torchvision=={vision[1]}"
    )
    assert cpu_line in (ROOT / "README.md").read_text(), "the README's CPU-only line"


def test_the_readme_ci_and_binder_use_the_two_files():
    readme = (ROOT / "README.md").read_text()
    assert TEST_COMMAND in readme
    ci_lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln.strip()]
    assert ci_lines[-1] == TEST_COMMAND, ".ci/run runs exactly the README's test command"
    environment = [
        line.strip() for line in (ROOT / "environment.yml").read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]  # fmt: skip
    assert "- -r requirements.txt" in environment
    assert not [line for line in environment if "requirements-dev" in line]


def test_the_closure_sees_dependencies_and_leaves_tools_out():
    # guards the tests below against passing because the closure is empty or everything
    learner = learner_distributions()
    assert {"torch", "numpy", "ipython", "nbformat", "segtutor"} <= learner
    assert not learner & {"pytest", "nbval", "ruff", "playwright", "torchmetrics", "sphinx"}
    assert providers("PIL") == {"pillow"}


PACKAGE_FILES = sorted((ROOT / "segtutor").rglob("*.py"))
NOTEBOOKS = sorted((ROOT / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("path", PACKAGE_FILES + NOTEBOOKS, ids=lambda p: p.name)
def test_what_a_learner_runs_imports_only_what_requirements_txt_installs(path):
    source = notebook_code(path) if path.suffix == ".ipynb" else path.read_text()
    learner = learner_distributions()
    missing = {}
    for module in sorted(third_party_imports(ast.parse(source))):
        found = providers(module)
        if not found & learner:
            missing[module] = sorted(found) or "not installed here"
    assert not missing, (
        f"{path.relative_to(ROOT)} imports {missing}, which requirements.txt does not install: "
        "add the package there, or keep the import out of what learners run"
    )
