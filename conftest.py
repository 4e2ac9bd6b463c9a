"""Test-session settings: quick mode for every test and every notebook kernel nbval starts,
and a cache folder of the session's own.

Notebooks run by nbval are marked `slow`, so `pytest -m "not slow"` runs the unit tests alone.
"""

import os
import tempfile

import matplotlib
import pytest

os.environ["SEGTUTOR_QUICK"] = "1"
# What fit times (segtutor.tuning) is cached here, not in the user's ~/.cache, and is measured
# afresh in every test session.
os.environ["SEGTUTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="segtutor-cache-")
os.environ.setdefault("MPLBACKEND", "Agg")
matplotlib.use("Agg")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
