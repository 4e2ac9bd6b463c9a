"""Test-session settings: quick mode for every test and every notebook kernel nbval starts.

Notebooks run by nbval are marked `slow`, so `pytest -m "not slow"` runs the unit tests alone.
"""

import os

import matplotlib
import pytest

os.environ["SEGTUTOR_QUICK"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
matplotlib.use("Agg")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
