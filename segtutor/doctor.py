"""The mask doctor's report: what `segtutor.checks` found in a dataset folder, as text.

`python -m segtutor check-data DIR` (`segtutor.commands.check_data`) prints it: for each split
(`DIR` itself, or `DIR/train`, `DIR/val`, ...) the pairs, image sizes, image and mask modes, the
values found in the masks, class pixel frequencies and the class weights `train` would use
(`segtutor.losses.class_weights` with `RECOMMENDED_WEIGHTING`), then every problem with what to
do about it.

Introduced in `01_data.ipynb`. A report above the data side and the losses: it may use both.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from segtutor.checks import DatasetReport
from segtutor.layouts import FolderNames
from segtutor.losses import RECOMMENDED_WEIGHTING, class_weights
from segtutor.settings import IGNORE_INDEX

__all__ = ["recommended_weights", "report_text"]


def report_text(root: Path, reports: dict[str, DatasetReport]) -> str:
    """The whole check-data report as text: one section per split, then the verdict.

    Introduced in `01_data.ipynb`.

    Args:
        root: the folder that was checked (named in the first line).
        reports: `segtutor.checks.scan_splits(root, ...)`.
    """
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
    if report.layout is None and report.names != FolderNames():  # not images/ + masks/<stem>
        lines.append(f"files: {report.names}")
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
    weights = recommended_weights(counts)
    title = f"class pixel frequencies and class weights ({RECOMMENDED_WEIGHTING}, train's default):"
    head = "  class  name                 pixels      share"
    lines = [title if with_weights else "class pixel frequencies:",
             head + ("   weight" if with_weights else "")]  # fmt: skip
    for k, n in enumerate(counts):
        row = f"  {k:>5}  {report.class_names[k][:18]:<18} {int(n):>11} {100 * n / max(total, 1):>9.2f}%"
        lines.append(row + (f" {weights[k]:>8.3f}" if with_weights else ""))
    if ignored:
        lines.append(f"  {'255':>5}  {'(ignore)':<18} {ignored:>11}  (not counted)")
    return lines


def recommended_weights(pixel_counts: np.ndarray | Sequence[int]) -> list[float]:
    """The class weights `train` uses by default, one per class; 0 for a class with no pixels.

    `segtutor.losses.class_weights(pixel_counts, RECOMMENDED_WEIGHTING)`, so that `check-data`
    recommends what `train` does; all 0 when no class has a pixel. Introduced in `01_data.ipynb`.
    """
    if not any(int(n) > 0 for n in pixel_counts):
        return [0.0] * len(pixel_counts)
    with warnings.catch_warnings():  # a class with no pixels is already a note in the report
        warnings.simplefilter("ignore")
        return class_weights(pixel_counts, RECOMMENDED_WEIGHTING).tolist()


def _histogram(counter: Counter[str]) -> str:
    return ", ".join(f"{key} x{n}" for key, n in counter.most_common())
