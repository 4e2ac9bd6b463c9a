"""Write a recognised dataset out as segtutor's own folders: index-PNG masks and dataset.json.

`python -m segtutor convert SRC DST [--format NAME] [--num-classes K] [--binary-255]` reads SRC
as `--data` would (a famous dataset as it ships, or a folder under other common names), checks
all of it, and writes `DST/train|val/images` + `masks/` and `DST/dataset.json` with
`segtutor.convert.convert`. Run it again after an interruption: finished files are kept.
Exit code 0 when done, 2 when SRC has problems or DST is some other folder.
Introduced in `01_data.ipynb`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segtutor.convert import convert
from segtutor.layouts import layout_names

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `convert` arguments to `parser`. Introduced in `01_data.ipynb`."""
    parser.add_argument("src", metavar="SRC", type=Path,
                        help="the dataset, as --data takes it (e.g. VOCdevkit, a Cityscapes "
                        "root, a folder with images/ and labels/)")  # fmt: skip
    parser.add_argument("dst", metavar="DST", type=Path,
                        help="the new folder (absent, empty, or an earlier conversion of SRC)")  # fmt: skip
    parser.add_argument("--format", choices=layout_names(), default=None,
                        help="SRC's layout (default: recognised from its folders)")  # fmt: skip
    parser.add_argument("--num-classes", type=int, default=None, metavar="K",
                        help="classes of a plain folder (default: dataset.json or the masks)")  # fmt: skip
    parser.add_argument("--binary-255", action="store_true",
                        help="read mask value 255 as class 1 (0/255 binary masks), not as ignore")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Convert `args.src` into `args.dst`, printing a line per split; 0 when done.

    Introduced in `01_data.ipynb`. Problems raise `DataError` (exit 2, nothing written).
    """

    def progress(split: str, done: int, total: int) -> None:
        if sys.stdout.isatty():  # one line redrawn in a terminal; nothing in logs and notebooks
            print(f"\r{split}: {done}/{total}", end="", flush=True)

    src, dst = args.src.expanduser(), args.dst.expanduser()
    summary = convert(src, dst, args.format, num_classes=args.num_classes,
                      binary_255=args.binary_255, progress=progress)  # fmt: skip
    if sys.stdout.isatty():
        print()
    for split, (written, skipped) in summary.items():
        folder = dst if split == "all" else dst / split
        kept = f", {skipped} already there" if skipped else ""
        n = written + skipped
        print(f"{folder}: {n} pair{'s' if n != 1 else ''} ({written} written{kept})")
    print(f"metadata: {dst / 'dataset.json'}\nnext: python -m segtutor check-data {dst}")
    return 0
