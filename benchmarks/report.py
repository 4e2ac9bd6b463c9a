"""The report of benchmarks/compare.py: its JSON as a markdown section, a plot, the targets.

`render` writes the section between the BEGIN and END markers of `docs/benchmarks.md` (or a
new file, for a quick run) and the plot next to it; `targets_markdown` checks the issue's three
targets against the numbers, met or missed. Nothing here trains or measures.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

__all__ = [
    "BEGIN",
    "END",
    "PIPELINE_LABELS",
    "draw",
    "fmt",
    "render",
    "results_markdown",
    "runs_markdown",
    "targets_markdown",
    "throughput_markdown",
]

BEGIN = "<!-- BEGIN RESULTS: written by benchmarks/compare.py from benchmarks/results/compare.json; do not edit by hand -->"
END = "<!-- END RESULTS -->"
PIPELINE_LABELS = {
    "segtutor": "segtutor (defaults)",
    "tutorial": "tutorial (as written, mask fix)",
    "smp": "smp Unet-resnet18",
}


def fmt(value: float | None, digits: int = 3) -> str:
    """`value` with `digits` decimals, or "n/a" for None and NaN."""
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def render(results: dict[str, Any], doc_path: Path, plot_path: Path) -> None:
    """Write the results section of `doc_path` (between BEGIN and END) and the plot."""
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    draw(results, plot_path)
    section = results_markdown(results, os.path.relpath(plot_path, doc_path.parent))
    if doc_path.is_file():
        text = doc_path.read_text()
        if BEGIN not in text or END not in text:
            raise SystemExit(
                f"{doc_path} has no results markers; put these two lines where the "
                f"numbers go:\n{BEGIN}\n{END}"
            )
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
    else:
        doc_path.parent.mkdir(parents=True, exist_ok=True)
        head, tail = "# Benchmarks (quick run)\n\n", "\n"
    doc_path.write_text(f"{head}{BEGIN}\n{section}\n{END}{tail}")


def results_markdown(results: dict[str, Any], plot_link: str) -> str:
    """The results section: the machine, the plot, the runs, the throughput, the targets."""
    m = results["machine"]
    lines = []
    if results["settings"].get("quick"):
        lines += ["**Quick run (smoke test): budgets of seconds, the numbers mean nothing.**", ""]
    lines += [
        f"Measured {m['date']} on {m['cpu']} ({m['logical_cpus']} logical CPUs, "
        f"{m['torch_threads']} torch threads, CPU capability {m['cpu_capability']}), "
        f"torch {m['torch']}, torchvision {m['torchvision']}, "
        f"segmentation_models_pytorch {m['segmentation_models_pytorch']}, "
        f"Python {m['python']}, segtutor at `{m['segtutor_commit']}`; "
        f"load average at the start {m['load_average_at_start']}.",
        "",
        f"![validation mIoU against the time budget, per pipeline and dataset; training "
        f"throughput]({plot_link})",
        "",
    ]
    for note in results.get("skipped", []) + results.get("notes", []):
        lines += [f"*{note}.*", ""]
    if results["runs"]:
        lines += runs_markdown(results["runs"])
    rows = results.get("throughput", [])
    if rows:
        lines += throughput_markdown(rows)
    lines += ["", *targets_markdown(results)]
    return "\n".join(lines)


def runs_markdown(runs: list[dict[str, Any]]) -> list[str]:
    """One table row per (dataset, budget, pipeline) run, then the IoU per class, folded."""
    lines = [
        "| dataset | budget | pipeline | val mIoU | mIoU, last epoch | train images/s | "
        "train images | epochs | training share of budget | peak RSS |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        share = 100 * r["train_s"] / r["budget_s"] if r.get("train_s") else None
        lines.append(
            f"| {r['dataset']} | {r['budget_s']:.0f} s | {PIPELINE_LABELS[r['pipeline']]} "
            f"| {fmt(r['miou'])} | {fmt(r['miou_last_epoch'])} | {fmt(r['images_per_s'], 1)} "
            f"| {r['train_images']} | {r['epochs']} | {fmt(share, 0)}% "
            f"| {r['peak_rss_mib']:.0f} MiB |"
        )
    lines.append("")
    per_class = [r for r in runs if r.get("per_class_iou")]
    if per_class:
        lines += [
            "<details><summary>IoU per class</summary>",
            "",
            "| dataset | budget | pipeline | IoU per class |",
            "|---|---:|---|---|",
        ]
        for r in per_class:
            ious = ", ".join(f"{k} {fmt(v)}" for k, v in r["per_class_iou"].items())
            lines.append(f"| {r['dataset']} | {r['budget_s']:.0f} s | {r['pipeline']} | {ious} |")
        lines += ["", "</details>", ""]
    return lines


def throughput_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """One table row per loop and model, the matmul reference, and segtutor's loop speed-up."""
    lines = [
        "Training throughput on the bundled scenes (one process each, "
        f"{rows[0]['timed_steps']} timed steps after warm-up):",
        "",
        "| loop, model | parameters | input | batch | images/s | GFLOPs per image (forward) "
        "| training GFLOP/s | share of matmul FLOP/s | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['params'] / 1e6:.2f} M | {r['input_size']}px "
            f"| {r['batch_size']} | {fmt(r['images_per_s'], 2)} "
            f"| {r['forward_flops_per_image'] / 1e9:.2f} "
            f"| {fmt(r['train_flops_per_s'] / 1e9, 1)} | {fmt(100 * r['efficiency'], 1)}% "
            f"| {r['peak_rss_mib']:.0f} MiB |"
        )
    by_name = {r["name"]: r for r in rows}
    a = by_name.get("tutorial loop, tutorial U-Net")
    b = by_name.get("segtutor loop, tutorial U-Net")
    matmul = rows[0]["matmul_flops_per_s"]
    lines += [
        "",
        f"Matmul reference: {rows[0]['matmul_n']}x{rows[0]['matmul_n']} float32, "
        f"{matmul / 1e9:.0f} GFLOP/s (best of 3, measured in each process; the "
        "first is shown).",
    ]
    if a and b:
        lines += [
            "",
            f"segtutor's loop runs the tutorial's U-Net "
            f"**{b['images_per_s'] / a['images_per_s']:.2f}x** as fast as the "
            "tutorial's loop does.",
        ]
    return lines


def targets_markdown(results: dict[str, Any]) -> list[str]:
    """The issue's three targets, each checked against the numbers above: met or missed."""
    lines = ["**Targets**, checked by the script against the numbers above:", ""]
    groups: dict[tuple[str, float], dict[str, float | None]] = {}
    for r in results["runs"]:
        groups.setdefault((r["dataset"], r["budget_s"]), {})[r["pipeline"]] = r["miou"]
    compared = {k: v for k, v in groups.items() if "segtutor" in v and len(v) > 1}
    if compared:
        misses = []
        for (dataset, budget), by in compared.items():
            ours = by["segtutor"]
            others = {k: v for k, v in by.items() if k != "segtutor" and v is not None}
            best = max(others, key=others.get) if others else None
            if ours is None or (best is not None and ours <= others[best]):
                misses.append(
                    f"{dataset} {budget:.0f} s: {fmt(ours)} against {best} {fmt(others[best])}"
                )
        verdict = "**met**" if not misses else "**missed** at " + "; ".join(misses)
        lines.append(
            f"- segtutor has the highest val mIoU at every dataset and budget "
            f"({len(compared)} compared): {verdict}."
        )
    by_name = {r["name"]: r for r in results.get("throughput", [])}
    a = by_name.get("tutorial loop, tutorial U-Net")
    b = by_name.get("segtutor loop, tutorial U-Net")
    if a and b:
        ratio = b["images_per_s"] / a["images_per_s"]
        verdict = "**met**" if ratio >= 2 else f"**missed** (by {2 - ratio:.2f}x)"
        lines.append(
            f"- At least 2x the tutorial pipeline's images/s on its own configuration: "
            f"{ratio:.2f}x, {verdict}."
        )
    default = by_name.get("segtutor defaults")
    if default:
        eff = default["efficiency"]
        verdict = "**met**" if eff >= 1 else f"**missed** (by {1 - eff:.2f})"
        lines.append(
            f"- Hardware efficiency of at least 1.0 at the course default: {eff:.2f}, {verdict}."
        )
    return lines


def draw(results: dict[str, Any], path: Path) -> None:
    """The plot: val mIoU against the budget, one panel per dataset, and the throughput bars."""
    from matplotlib import pyplot as plt  # savefig + close: no screen needed, no backend set
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    runs = results["runs"]
    datasets = list(dict.fromkeys(r["dataset"] for r in runs))
    panels = len(datasets) + (1 if results.get("throughput") else 0)
    fig, axes = plt.subplots(1, max(panels, 1), figsize=(3.3 * max(panels, 1), 3.2), squeeze=False)
    colors = {"segtutor": "#0072B2", "tutorial": "#D55E00", "smp": "#009E73"}  # Okabe-Ito
    for ax, dataset in zip(axes[0], datasets, strict=False):
        for pipeline in PIPELINE_LABELS:
            points = sorted(
                (r["budget_s"], r["miou"])
                for r in runs
                if r["dataset"] == dataset and r["pipeline"] == pipeline and r["miou"] is not None
            )
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, "o-", color=colors[pipeline], label=PIPELINE_LABELS[pipeline])
        ax.set(title=dataset, xlabel="time budget (s)", ylim=(0, 1))
        budgets = sorted({r["budget_s"] for r in runs})
        ax.set_xticks(budgets)
        ax.grid(alpha=0.3)
    if datasets:
        axes[0][0].set_ylabel("validation mIoU")
        axes[0][0].legend(fontsize=7, loc="best")
    rows = results.get("throughput", [])
    if rows:
        ax = axes[0][-1]
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
        ax.set_xlim(min(v for v in values if v > 0) / 2, max(values) * 3)
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
