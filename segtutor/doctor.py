"""The mask doctor: check a dataset folder and explain every problem with its fix.

`python -m segtutor check-data DIR [--num-classes K] [--binary-255]` prints, for each split
(`DIR` itself, or `DIR/train`, `DIR/val`, ...): the pairs, image sizes, image and mask modes,
the values found in the masks, class pixel frequencies and suggested class weights, then every
problem with what to do about it. Exit code 0 when the dataset can be used, 2 when it cannot.

Introduced in the data notebook; it prints what `segtutor.data.scan` finds.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from segtutor.data import DatasetReport, scan_splits
from segtutor.errors import DataError
from segtutor.settings import IGNORE_INDEX

__all__ = ["add_arguments", "median_frequency_weights", "report_text", "run"]

EXIT_OK = 0
EXIT_UNUSABLE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `check-data` arguments to `parser`."""
    parser.add_argument("dir", metavar="DIR", help="dataset folder (holding images/ + masks/, "
                        "or train/ and val/ that each hold them)")  # fmt: skip
    parser.add_argument("--num-classes", type=int, default=None, metavar="K",
                        help="number of classes, background included (default: from "
                        "dataset.json, else the largest mask value + 1)")  # fmt: skip
    parser.add_argument("--binary-255", action="store_true",
                        help="read mask value 255 as class 1 (0/255 binary masks), not as ignore")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Check `args.dir`, print the report; return 0 when usable, 2 when not. Never raises."""
    root = Path(args.dir).expanduser()
    try:
        # decode every image too: the doctor is run once, so thoroughness beats speed
        reports = scan_splits(root, args.num_classes, args.binary_255, decode_images=True)
    except DataError as error:  # scan collects problems itself; this is a safety net
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    except OSError as error:  # e.g. a folder we may not list
        print(
            f"error: cannot read {error.filename or root}: {error.strerror or error}",
            file=sys.stderr,
        )
        return EXIT_UNUSABLE
    print(report_text(root, reports))
    return EXIT_OK if all(r.ok for r in reports.values()) else EXIT_UNUSABLE


def report_text(root: Path, reports: dict[str, DatasetReport]) -> str:
    """The whole check-data report as text: one section per split, then the verdict."""
    lines = [f"check-data {root}"]
    splits = [name for name in reports if name != "all"]
    if splits:
        lines.append(f"layout: splits {', '.join(n + '/' for n in splits)} (each is checked)")
    first = next(iter(reports.values()))
    if first.meta.path:
        lines.append(f"metadata: {first.meta.path}")
    for name, report in reports.items():
        lines += ["", f"== {name} ({report.root}) ==" if name != "all" else f"== {report.root} =="]
        lines += _section(report, with_weights=name in ("all", "train"))
    n = sum(len(r.problems) for r in reports.values())
    lines.append("")
    if n:
        lines.append(f"NOT USABLE: {n} problem{'s' if n != 1 else ''} (listed above with fixes).")
    else:
        lines.append("OK: the dataset is usable.")
    return "\n".join(lines)


def _section(report: DatasetReport, with_weights: bool) -> list[str]:
    lines = []
    if report.stems or report.image_sizes:
        lines.append(f"pairs: {len(report.stems)} (image and mask with the same file stem)")
        lines.append(f"image sizes (WxH): {_histogram(report.size_histogram)}")
        lines.append(f"image modes: {_histogram(Counter(report.image_modes))}")
        lines.append(f"mask modes: {_histogram(Counter(report.mask_modes))}")
        values = report.value_counts
        shown = [f"{v} (ignore)" if v == IGNORE_INDEX else str(v) for v in values]
        lines.append(f"mask values: {', '.join(shown) if shown else 'none decoded'}")
        if report.num_classes and values:
            lines += _frequencies(report, with_weights)
    for note in report.notes:
        lines.append(f"note: {note}")
    if report.problems:
        lines.append(f"problems ({len(report.problems)}):")
        lines += [f"  - {p}".replace("\n", "\n    ") for p in report.problems]
    else:
        lines.append("problems: none")
    return lines


def _frequencies(report: DatasetReport, with_weights: bool) -> list[str]:
    counts = report.pixel_counts()  # (num_classes,)
    total = int(counts.sum())
    ignored = report.value_counts.get(IGNORE_INDEX, 0)
    weights = median_frequency_weights(counts)
    head = "  class  name                 pixels      share"
    lines = ["class pixel frequencies" + (" and suggested class weights (median frequency):"
                                          if with_weights else ":"), head + ("   weight" if with_weights else "")]  # fmt: skip
    for k, n in enumerate(counts):
        row = f"  {k:>5}  {report.class_names[k][:18]:<18} {int(n):>11} {100 * n / max(total, 1):>9.2f}%"
        lines.append(row + (f" {weights[k]:>8.3f}" if with_weights else ""))
    if ignored:
        lines.append(f"  {'255':>5}  {'(ignore)':<18} {ignored:>11}  (not counted)")
    return lines


def median_frequency_weights(pixel_counts: np.ndarray) -> np.ndarray:
    """Class weights `median(freq) / freq[c]` (Eigen & Fergus 2015), `(num_classes,)` float.

    A class with no pixels gets weight 0 (nothing to weigh). `segtutor.losses.class_weights` is the
    library version; this copy keeps the doctor free of the training modules.
    """
    counts = np.asarray(pixel_counts, dtype=np.float64)
    freq = counts / max(counts.sum(), 1.0)
    present = freq > 0
    weights = np.zeros_like(freq)
    if present.any():
        weights[present] = np.median(freq[present]) / freq[present]
    return weights


def _histogram(counter: Counter[str]) -> str:
    return ", ".join(f"{key} x{n}" for key, n in counter.most_common())
