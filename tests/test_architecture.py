"""The layers of the package, read from its imports (DEVELOPERS.md, "The layers").

Every `import` in every module counts, those inside functions included: a lazy import is still a
dependency a reader has to follow. The rules:

- the data side (files -> tensors) knows nothing of training, plotting or the command line;
- the model knows no files;
- the training loop knows no plotting or widgets (a notebook plots through callbacks);
- nothing but the command line itself imports the command line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "segtutor"

DATA_SIDE = {
    "data",
    "formats",
    "layouts",
    "checks",
    "transforms",
    "sizing",
    "convert",
    "torchvision_data",
    "synth",
    "synth_images",
}
# `distributed`, `jsonio`, `settings` and `errors` are plain helpers any layer may use.
LEARN = {
    "losses",
    "metrics",
    "config",
    "train",
    "fit_state",
    "checkpoint",
    "runtime",
    "tuning",
    "inference",
    "recipe",
    "export",
}
SHOW = {"viz", "widgets"}
FACE = {"commands", "cli", "__main__"}
PLOTTING = {"matplotlib", "ipywidgets", "IPython"}
FILES = {"os", "pathlib", "PIL", "json", "shutil", "tempfile", "glob"}


def module_name(path: Path) -> str:
    """`segtutor/commands/train.py` -> `commands.train`."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, as written (`segtutor.train`, `matplotlib.pyplot`, ...)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # the package uses absolute imports only: a reader (and this test) sees where they go
            assert node.level == 0, f"{path.name}: relative import, write `from segtutor...`"
            names.add(node.module)
            if node.module == "segtutor":  # `from segtutor import train` imports segtutor.train
                names.update(f"segtutor.{alias.name}" for alias in node.names)
    return names


def segtutor_layer(name: str) -> str | None:
    """The first part after `segtutor.` (`segtutor.commands.train` -> `commands`), else None."""
    parts = name.split(".")
    return parts[1] if parts[0] == "segtutor" and len(parts) > 1 else None


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def offenders(modules: set[str], forbidden_layers: set[str], forbidden_top: set[str] = frozenset()):
    """(module, import) pairs where a module in `modules` imports something forbidden."""
    found = []
    for name in sorted(modules):
        for imported in sorted(GRAPH.get(name, ())):
            if (
                segtutor_layer(imported) in forbidden_layers
                or imported.split(".")[0] in forbidden_top
            ):
                found.append((name, imported))
    return found


def test_the_package_is_read():
    # guards the tests below against passing because nothing was found
    assert {"data", "model", "train", "viz", "cli"} <= set(MODULES)
    assert "segtutor.model" in GRAPH["train"] or any(segtutor_layer(i) for i in GRAPH["train"]), (
        "train.py imports nothing of segtutor: the import reader is broken"
    )


def test_the_data_side_knows_nothing_of_training_plotting_or_the_command_line():
    present = DATA_SIDE & set(MODULES)
    assert present >= {"data", "transforms"}
    assert offenders(present, LEARN | SHOW | FACE | {"doctor"}, PLOTTING) == []


MODEL = {"model", "architectures", "pretrained"}


def test_the_model_knows_no_files():
    # `pretrained` alone names a file: where torchvision caches the ImageNet weights
    assert (
        offenders({"model", "architectures"}, DATA_SIDE | LEARN | SHOW | FACE, FILES | PLOTTING)
        == []
    )
    assert offenders({"pretrained"}, DATA_SIDE | LEARN | SHOW | FACE, PLOTTING) == []


def test_the_data_side_knows_nothing_of_the_models():
    assert offenders(DATA_SIDE & set(MODULES), MODEL) == []


@pytest.mark.parametrize(
    "module",
    ["config", "train", "fit_state", "checkpoint", "runtime", "inference", "losses", "metrics"],
)
def test_learning_knows_no_plotting_widgets_or_command_line(module):
    if module not in MODULES:
        pytest.fail(f"segtutor/{module}.py is missing")
    assert offenders({module}, SHOW | FACE, PLOTTING) == []


def test_the_deployed_predictor_needs_neither_torch_nor_segtutor():
    # segtutor/deploy.py ships alone beside an exported .onnx file
    assert "deploy" in GRAPH
    needs = {name.split(".")[0] for name in GRAPH["deploy"]}
    assert needs.isdisjoint({"torch", "torchvision", "segtutor"}), sorted(needs)


def test_nothing_imports_the_command_line():
    outside = {name for name in MODULES if segtutor_layer(f"segtutor.{name}") not in FACE}
    assert offenders(outside, FACE) == []


def test_the_reader_sees_lazy_and_relative_imports(tmp_path):
    # the rules above are only as good as this reader: show it catches what a shortcut would miss
    source = tmp_path / "probe.py"
    source.write_text(
        "def f():\n    import matplotlib.pyplot as plt\n    from segtutor.viz import colorize\n"
        "from segtutor import widgets\n"
    )
    found = imports_of(source)
    assert {"matplotlib.pyplot", "segtutor.viz", "segtutor.widgets"} <= found
