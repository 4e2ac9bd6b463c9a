"""The report of benchmarks/compare.py: its JSON as a markdown section, with the plot.

`render` writes the section between the BEGIN and END markers of `docs/benchmarks.md` (or a
new file, for a quick run) and the plot next to it (`plot.py`); the targets and the time to
reach each peer's score come from `verdicts.py`. Nothing here trains or measures.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from plot import draw
from verdicts import main_runs, reach_markdown, targets_markdown

__all__ = [
    "BEGIN",
    "END",
    "PIPELINE_LABELS",
    "fmt",
    "lr_sweep_markdown",
    "recipe_markdown",
    "render",
    "results_markdown",
    "runs_markdown",
    "throughput_markdown",
]

BEGIN = "<!-- BEGIN RESULTS: written by benchmarks/compare.py from benchmarks/results/compare.json; do not edit by hand -->"
END = "<!-- END RESULTS -->"
PIPELINE_LABELS = {
    "segtutor": "segtutor (defaults)",
    "tutorial": "tutorial (as written, mask fix)",
    "smp": "smp Unet-resnet18",
    "lraspp": "torchvision LR-ASPP MobileNetV3-L",
    "deeplabv3": "torchvision DeepLabV3 MobileNetV3-L",
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
    draw(results, plot_path, PIPELINE_LABELS)
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
    """The results section: the machine, the plot, the runs, the lr sweep, the time to reach
    each peer's score, what segtutor's recipe chose, the throughput, the targets."""
    m = results["machine"]
    settings = results["settings"]
    lines = []
    if settings.get("quick"):
        lines += ["**Quick run (smoke test): budgets of seconds, the numbers mean nothing.**", ""]
    lines += [
        f"Measured {m['date']} on {m['cpu']} ({m['logical_cpus']} logical CPUs, "
        f"{m['torch_threads']} torch threads, CPU capability {m['cpu_capability']}), "
        f"device {settings.get('device', 'auto')}{_gpu(m)}, "
        f"torch {m['torch']}, torchvision {m['torchvision']}, "
        f"segmentation_models_pytorch {m['segmentation_models_pytorch']}, "
        f"Python {m['python']}, segtutor at `{m['segtutor_commit']}`; "
        f"load average at the start {m['load_average_at_start']}.",
        "",
        f"![validation mIoU against training seconds, per dataset; training "
        f"throughput]({plot_link})",
        "",
    ]
    for note in results.get("skipped", []) + results.get("notes", []):
        lines += [f"*{note}.*", ""]
    if results["runs"]:
        lines += runs_markdown(results["runs"], settings.get("real_datasets", []))
        lines += lr_sweep_markdown(results)
        lines += reach_markdown(results)
        lines += recipe_markdown(results["runs"])
    rows = results.get("throughput", [])
    if rows:
        lines += throughput_markdown(rows)
    lines += ["", *targets_markdown(results)]
    return "\n".join(lines)


def _gpu(machine: dict[str, Any]) -> str:
    return f" ({machine['gpu']})" if machine.get("gpu") else ""


def _memory(run: dict[str, Any]) -> str:
    text = f"{run['peak_rss_mib']:.0f} MiB"
    if run.get("peak_cuda_mib") is not None:
        text += f" (GPU {run['peak_cuda_mib']:.0f} MiB)"
    return text


def runs_markdown(runs: list[dict[str, Any]], real: list[str]) -> list[str]:
    """One row per (dataset, budget, pipeline) run the pipeline is judged by (peers at their
    picked learning rate), by dataset and budget; then the IoU per class, folded."""
    order = list(PIPELINE_LABELS)
    datasets = list(dict.fromkeys(r["dataset"] for r in runs))
    shown = sorted(
        main_runs(runs),
        key=lambda r: (datasets.index(r["dataset"]), r["budget_s"], order.index(r["pipeline"])),
    )
    lines = [
        "| dataset | budget | pipeline | lr | val mIoU | mIoU, last epoch | train images/s | "
        "train images | epochs | training share of budget | peak memory | measured |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in shown:
        kind = "real" if r["dataset"] in real else "bundled"
        head = (
            f"| {r['dataset']} ({kind}) | {r['budget_s']:.0f} s | {PIPELINE_LABELS[r['pipeline']]}"
        )
        lr = f"{r['lr']:g}" if r.get("lr") is not None else "recipe"
        when = r.get("measured", "")[5:16]  # "MM-DD HH:MM" of its part (merge_results.py)
        if r.get("error"):
            lines.append(f"{head} | {lr} | failed | | | | | | {_memory(r)} | {when} |")
            continue
        share = 100 * r["train_s"] / r["budget_s"] if r.get("train_s") else None
        lines.append(
            f"{head} | {lr} | {fmt(r['miou'])} | {fmt(r['miou_last_epoch'])} "
            f"| {fmt(r['images_per_s'], 1)} | {r['train_images']} | {r['epochs']} "
            f"| {fmt(share, 0)}% | {_memory(r)} | {when} |"
        )
    lines.append("")
    per_class = [r for r in shown if r.get("per_class_iou")]
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


def lr_sweep_markdown(results: dict[str, Any]) -> list[str]:
    """The peers' learning-rate picks, folded: every rate's mIoU at the pick budget."""
    picks = results.get("lr_picks", {})
    if not picks:
        return []
    lines = [
        "Learning rates picked per dataset (Adam, constant; the rate with the best val mIoU at "
        "the pick budget is used at every budget):",
        "",
        "| dataset | peer | picked lr | at | val mIoU per lr |",
        "|---|---|---:|---:|---|",
    ]
    for dataset, by_peer in picks.items():
        for peer, pick in by_peer.items():
            scores = ", ".join(f"{lr}: {fmt(m)}" for lr, m in pick["miou_by_lr"].items())
            picked = "none scored" if pick["lr"] is None else f"{pick['lr']:g}"
            lines.append(f"| {dataset} | {peer} | {picked} | {pick['budget_s']:.0f} s | {scores} |")
    sweep = [r for r in results["runs"] if r.get("lr_sweep")]
    lines += [
        "",
        "<details><summary>The lr sweep's runs</summary>",
        "",
        "| dataset | peer | lr | budget | val mIoU | train images/s | epochs | picked |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in sweep:
        ips = "failed" if r.get("error") else fmt(r.get("images_per_s"), 1)
        lines.append(
            f"| {r['dataset']} | {r['pipeline']} | {r['lr']:g} | {r['budget_s']:.0f} s "
            f"| {fmt(r.get('miou'))} | {ips} | {r.get('epochs', '')} "
            f"| {'yes' if r.get('picked') else ''} |"
        )
    return lines + ["", "</details>", ""]


def recipe_markdown(runs: list[dict[str, Any]]) -> list[str]:
    """What segtutor's recipe chose on each dataset (its `describe()` and recorded facts)."""
    seen: dict[str, dict[str, Any]] = {}
    for r in runs:
        if r["pipeline"] == "segtutor" and r.get("describe") and r["dataset"] not in seen:
            seen[r["dataset"]] = r
    if not seen:
        return []
    lines = ["<details><summary>What segtutor's recipe chose</summary>", ""]
    for dataset, r in seen.items():
        names = ("input_size", "input_mode", "batch_size", "working_scale", "val_share", "amp")
        facts = ", ".join(f"{k} {r[k]}" for k in names if r.get(k) is not None)
        text = r["describe"] + (f"\nvalidation: {r['validation']}" if r.get("validation") else "")
        text += f"\nspeed: {r['speed']}" if r.get("speed") else ""
        lines += [f"**{dataset}** ({facts}):", "", "    " + text.replace("\n", "\n    "), ""]
    return lines + ["</details>", ""]


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
