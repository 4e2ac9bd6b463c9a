"""What the commands share: the options that say how to read a dataset folder.

Introduced in `04_training.ipynb`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from segtutor.layouts import layout_names

__all__ = [
    "add_checkpoint_argument",
    "add_data_arguments",
    "count",
    "fraction",
    "non_negative_float",
    "positive_float",
    "positive_int",
    "scale_or_auto",
]


def add_checkpoint_argument(parser: argparse.ArgumentParser) -> None:
    """`--checkpoint CKPT`, the model `evaluate` and `predict` load.

    Introduced in `05_evaluation.ipynb`.
    """
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        metavar="CKPT",
        help="a best.pt written by `python -m segtutor train`",
    )


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say how to read a dataset folder (the same for every command).

    Introduced in `04_training.ipynb`.
    """
    parser.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="classes, background included (default: from dataset.json or the masks)",
    )
    parser.add_argument(
        "--format",
        choices=layout_names(),
        default=None,
        help="the dataset's layout (default: recognised from its folders): 'folder' is "
        "images/ + masks/, the others famous datasets as they ship",
    )
    parser.add_argument(
        "--binary-255",
        action="store_true",
        help="read 255 in masks as class 1 (0/255 binary masks) instead of 'ignore'",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="decode images from disk every epoch instead of keeping them in memory",
    )


# Argument types: argparse turns their ArgumentTypeError into "error: argument --x: ..." and
# exit code 2, so an impossible number is a usage message before any work starts.


def positive_int(text: str) -> int:
    """An integer of at least 1 (epochs, batch size, pixels). Introduced in `04_training.ipynb`."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number of at least 1")
    return value


def count(text: str) -> int:
    """A whole number of 0 or more (worker processes). Introduced in `04_training.ipynb`."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number of 0 or more")
    return value


def positive_float(text: str) -> float:
    """A number above 0 (seconds, a learning rate). Introduced in `04_training.ipynb`."""
    value = _number(text, float)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number above 0")
    return value


def non_negative_float(text: str) -> float:
    """A number of 0 or more (`--prior-adjustment`). Introduced in `04_training.ipynb`."""
    value = _number(text, float)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number of 0 or more")
    return value


def fraction(text: str) -> float:
    """A share strictly between 0 and 1: training needs images on both sides of a split.

    Introduced in `04_training.ipynb`.
    """
    value = _number(text, float)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1 (e.g. 0.2)")
    return value


def scale_or_auto(text: str) -> float | str:
    """ "auto", or a resize factor above 0 and at most 1 (`--scale`).

    Introduced in `04_training.ipynb`.
    """
    if text == "auto":
        return text
    value = _number(text, float)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not 'auto' or a factor in (0, 1] (e.g. 0.5)")
    return value


def _number(text: str, kind: type) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
