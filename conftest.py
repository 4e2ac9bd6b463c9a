"""Test-session settings: quick mode for every test and every notebook kernel nbval starts."""

import os

import matplotlib

os.environ["SEGTUTOR_QUICK"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
matplotlib.use("Agg")
