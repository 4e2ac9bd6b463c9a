"""The figure of benchmarks/compare.py's report: mIoU against seconds per dataset, throughput.

One panel per dataset: each constant-lr peer's curve (snapshots scored during its longest run,
at its picked learning rate) with its runs' final scores as markers; segtutor's and the
tutorial's runs as points joined by lines (segtutor's schedule follows its budget, so each
budget is a separate run). A last panel holds the throughput bars. Nothing here measures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from verdicts import main_runs

__all__ = ["COLORS", "draw"]

COLORS = {  # Okabe-Ito, colour-blind safe
    "segtutor": "#0072B2",
    "tutorial": "#D55E00",
    "smp": "#009E73",
    "lraspp": "#CC79A7",
    "deeplabv3": "#E69F00",
}


def _dataset_panel(ax: Any, runs: list[dict[str, Any]], dataset: str, labels: dict) -> None:
    """One dataset's mIoU against training seconds."""
    mine = [r for r in runs if r["dataset"] == dataset and r.get("miou") is not None]
    for pipeline in dict.fromkeys(r["pipeline"] for r in mine):
        done = sorted((r for r in mine if r["pipeline"] == pipeline), key=lambda r: r["budget_s"])
        color, label = COLORS.get(pipeline, "grey"), labels.get(pipeline, pipeline)
        xs, ys = [r["budget_s"] for r in done], [r["miou"] for r in done]
        curve = [(t, m) for t, m in done[-1].get("curve") or [] if m is not None]
        if curve:  # a constant-lr peer: its longest run's snapshots
            cx, cy = zip(*curve, strict=True)
            ax.plot(cx, cy, "-", color=color, label=label)
            ax.plot(xs, ys, "o", color=color, markersize=4)
        else:
            style = "o-" if pipeline == "segtutor" else "s--"
            ax.plot(xs, ys, style, color=color, label=label, markersize=4)
    ax.set(title=dataset, xlabel="seconds (budget; curves: training time)", ylim=(0, 1))
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)


def _throughput_panel(ax: Any, rows: list[dict[str, Any]]) -> None:
    """Training images/s per loop and model, log scale."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    names = [r["name"].replace(", ", ",\n") for r in rows]
    values = [r["images_per_s"] or 0 for r in rows]
    bars = ax.barh(
        names, values, color=["#D55E00" if r["loop"] == "tutorial" else "#0072B2" for r in rows]
    )
    ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=7, padding=2)
    ax.set(title="training throughput (scenes)", xlabel="images / s")
    ax.set_xscale("log")  # the course model is tens of times faster than the full ones
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    positive = [v for v in values if v > 0] or [1]
    ax.set_xlim(min(positive) / 2, max(positive) * 3)
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)


def draw(results: dict[str, Any], path: Path, labels: dict[str, str] | None = None) -> None:
    """Write the figure to `path`: one panel per dataset, then the throughput bars."""
    from matplotlib import pyplot as plt  # savefig + close: no screen needed, no backend set

    runs = main_runs(results["runs"])
    datasets = list(dict.fromkeys(r["dataset"] for r in runs))
    rows = results.get("throughput", [])
    panels = max(len(datasets) + (1 if rows else 0), 1)
    columns = min(panels, 3)
    grid_rows = -(-panels // columns)
    fig, axes = plt.subplots(
        grid_rows, columns, figsize=(3.4 * columns, 3.2 * grid_rows), squeeze=False
    )
    flat = list(axes.flat)
    for ax, dataset in zip(flat, datasets, strict=False):
        _dataset_panel(ax, runs, dataset, labels or {})
    if datasets:
        flat[0].set_ylabel("validation mIoU")
        flat[0].legend(fontsize=7, loc="best")
    if rows:
        _throughput_panel(flat[len(datasets)], rows)
    for ax in flat[len(datasets) + (1 if rows else 0) :]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
