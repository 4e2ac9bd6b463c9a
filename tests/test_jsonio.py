"""Tests for segtutor.jsonio: NaN becomes null, numpy and torch become python, atomic writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from segtutor.jsonio import json_ready, write_json


def test_json_ready_nan_and_infinities_become_none():
    data = {"a": math.nan, "b": [1.0, math.inf, -math.inf], "c": (0.5, None), 3: "x"}
    assert json_ready(data) == {"a": None, "b": [1.0, None, None], "c": [0.5, None], "3": "x"}


def test_json_ready_numpy_torch_and_paths():
    data = {
        "f": np.float32(0.5),
        "n": np.float64("nan"),
        "i": np.int64(7),
        "b": np.bool_(True),
        "arr": np.array([[1.0, np.nan]]),
        "t": torch.tensor([2.0, float("nan")]),
        "s": torch.tensor(3),
        "p": Path("runs") / "best.pt",
    }
    out = json_ready(data)
    assert out == {
        "f": 0.5,
        "n": None,
        "i": 7,
        "b": True,
        "arr": [[1.0, None]],
        "t": [2.0, None],
        "s": 3,
        "p": str(Path("runs") / "best.pt"),
    }
    assert type(out["i"]) is int and type(out["f"]) is float
    json.dumps(out, allow_nan=False)  # plain JSON: would raise on NaN or numpy values


def test_write_json_is_atomic_and_plain(tmp_path):
    path = tmp_path / "out" / "metrics.json"
    assert write_json(path, {"miou": math.nan, "iou": np.array([0.5, 1.0])}) == path
    assert json.loads(path.read_text()) == {"miou": None, "iou": [0.5, 1.0]}
    assert path.read_text().endswith("\n")
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temporary file left


def test_write_json_failure_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_json(path, {"epoch": 1})

    def broken_replace(*args):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_json(path, {"epoch": 2})
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    assert json.loads(path.read_text()) == {"epoch": 1}
