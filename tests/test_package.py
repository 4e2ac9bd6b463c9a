"""segtutor/__init__.py: the re-exports are imported lazily (PEP 562), all of them reachable.

`import segtutor` must not import PyTorch (a deploy machine has none, see tests/test_deploy.py),
yet `st.UNet`, `from segtutor import fit`, `dir(segtutor)` and type checkers see every name.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import segtutor

INIT = Path(segtutor.__file__)


def _fresh_python(code: str) -> str:
    """Run `code` in a new interpreter (nothing imported yet); return what it printed."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _type_checking_imports() -> dict[str, str]:
    """name -> module, from the `if TYPE_CHECKING:` block of __init__.py."""
    tree = ast.parse(INIT.read_text())
    block = next(
        node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )  # fmt: skip
    return {alias.name: node.module for node in block.body for alias in node.names}


def test_importing_the_package_imports_no_torch():
    code = "import sys, segtutor; print(sorted(m for m in sys.modules if m.startswith(('torch', 'segtutor.'))))"
    assert _fresh_python(code) == "[]"


def test_a_name_is_imported_when_first_asked_for():
    code = (
        "import sys, segtutor as st\n"
        "before = 'segtutor.model' in sys.modules\n"
        "unet = st.UNet\n"
        "from segtutor import fit\n"
        "from segtutor.model import UNet\n"
        "print(before, unet is UNet, fit.__module__, 'UNet' in vars(st))"
    )
    assert _fresh_python(code) == "False True segtutor.train True"


def test_the_table_the_type_checking_block_and_all_agree():
    assert set(segtutor._SOURCES) == set(segtutor.__all__)
    assert len(segtutor.__all__) == len(set(segtutor.__all__))
    assert _type_checking_imports() == segtutor._SOURCES


@pytest.mark.parametrize("name", segtutor.__all__)
def test_every_name_is_the_object_of_its_module(name):
    module = importlib.import_module(segtutor._SOURCES[name])
    assert getattr(segtutor, name) is getattr(module, name)


def test_dir_lists_every_name_and_an_unknown_one_is_an_attribute_error():
    assert set(segtutor.__all__) <= set(dir(segtutor))
    assert "__version__" in dir(segtutor)
    with pytest.raises(AttributeError, match="has no attribute 'Unet'"):
        segtutor.Unet  # noqa: B018  (the spelling a learner gets wrong)
    with pytest.raises(ImportError, match="Unet"):
        from segtutor import Unet  # noqa: F401


def test_submodules_still_import_as_before():
    from segtutor import viz

    assert viz.__name__ == "segtutor.viz"
    assert segtutor.viz is viz  # the import system binds a submodule on its package
