"""Check a dataset folder and explain every problem with its fix (the mask doctor).

`python -m segtutor check-data DIR [--num-classes K] [--binary-255] [--format NAME]` scans every
split with `segtutor.checks.scan_splits` (or, for a famous dataset as it ships, recognised by
`segtutor.layouts.find_layout`, with `scan_layout`) and prints `segtutor.doctor.report_text`.
Exit code 0 when the dataset can be used, 2 when it cannot. Introduced in `01_data.ipynb`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segtutor.checks import scan_layout, scan_splits
from segtutor.doctor import report_text
from segtutor.errors import DataError
from segtutor.layouts import find_layout, layout_names

__all__ = ["EXIT_OK", "EXIT_UNUSABLE", "add_arguments", "run"]

EXIT_OK = 0
EXIT_UNUSABLE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `check-data` arguments to `parser`. Introduced in `01_data.ipynb`."""
    parser.add_argument("dir", metavar="DIR", help="dataset folder (holding images/ + masks/ "
                        "or labels/ or annotations/, or train/ and val/ that each hold them, or "
                        "a famous dataset as it ships: see --format)")  # fmt: skip
    parser.add_argument("--num-classes", type=int, default=None, metavar="K",
                        help="number of classes, background included (default: from "
                        "dataset.json, else the largest mask value + 1)")  # fmt: skip
    parser.add_argument("--binary-255", action="store_true",
                        help="read mask value 255 as class 1 (0/255 binary masks), not as ignore")  # fmt: skip
    parser.add_argument("--format", choices=layout_names(), default=None,
                        help="the dataset's layout (default: recognised from its folders)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Check `args.dir`, print the report; return 0 when usable, 2 when not. Never raises.

    Introduced in `01_data.ipynb`.
    """
    root = Path(args.dir).expanduser()
    try:
        found = find_layout(root, args.format)
        # decode every image too: the doctor is run once, so thoroughness beats speed
        if found is None:
            reports = scan_splits(root, args.num_classes, args.binary_255, decode_images=True)
        else:
            layout, base = found
            reports = scan_layout(base, layout, num_classes=args.num_classes, decode_images=True)
    except DataError as error:  # scan collects problems itself; this is a safety net
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    except OSError as error:  # e.g. a folder we may not list
        print(
            f"error: cannot read {error.filename or root}: {error.strerror or error}",
            file=sys.stderr,
        )
        return EXIT_UNUSABLE
    text = report_text(root, reports)
    if found is not None:  # under the first line, which names the folder checked
        first, rest = text.split("\n", 1)
        text = f"{first}\nformat: {layout.name}, {layout.title}, root {base}\n{rest}"
    print(text)
    return EXIT_OK if all(r.ok for r in reports.values()) else EXIT_UNUSABLE
