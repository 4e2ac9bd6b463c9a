"""What the commands share: the options that say how to read a dataset folder, and JSON out."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_data_arguments", "json_ready", "write_json"]


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say how to read a dataset folder (the same for every command)."""
    parser.add_argument(
        "--num-classes", type=int, default=None,
        help="classes, background included (default: from dataset.json or the masks)",
    )
    parser.add_argument(
        "--binary-255", action="store_true",
        help="read 255 in masks as class 1 (0/255 binary masks) instead of 'ignore'",
    )
    parser.add_argument(
        "--no-cache", action="store_true",
        help="decode images from disk every epoch instead of keeping them in memory",
    )


def write_json(path: Path, data: Any) -> None:
    """Write JSON with NaN as null (JSON has no NaN)."""
    path.write_text(json.dumps(json_ready(data), indent=2) + "\n")


def json_ready(value: Any) -> Any:
    """`value` with NaN and infinities as None, tuples as lists, keys as str (for json)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [json_ready(v) for v in value]
    return value
