"""Project-wide constants and the one quick-mode switch.

Introduced in `01_data.ipynb`.

`SEGTUTOR_QUICK=1` makes every notebook, test and command shrink its epochs and data so that the
whole course runs in seconds on a CPU. It is read here and nowhere else.
"""

import os

__all__ = ["IGNORE_INDEX", "IMAGENET_MEAN", "IMAGENET_STD", "quick_mode"]

IGNORE_INDEX = 255
"""Mask value that loss, metrics and viewers skip (object borders, unlabelled pixels)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def quick_mode() -> bool:
    """True when the environment variable `SEGTUTOR_QUICK` is set to a true value.

    Introduced in `01_data.ipynb`.

    Read at call time (not import time) so a notebook can switch it in its Setup cell.
    """
    return os.environ.get("SEGTUTOR_QUICK", "").strip().lower() in {"1", "true", "yes", "on"}
