"""What the commands share: the options that say how to read a dataset folder."""

from __future__ import annotations

import argparse

__all__ = ["add_data_arguments"]


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say how to read a dataset folder (the same for every command).

    Introduced in `04_training.ipynb`.
    """
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
