"""The U-Net among its relatives: every `--model` through the same recipe, budget and scoring.

    .venv/bin/python benchmarks/relatives.py                          # all models, all datasets
    .venv/bin/python benchmarks/relatives.py --datasets scenes --models unet,lraspp-mobilenetv3
    .venv/bin/python benchmarks/relatives.py --render-only            # re-draw the doc's table

Each (dataset, model, budget) is one run of what `python -m segtutor train --data D --model M
--time-budget S` runs (`pipelines.run_segtutor`, in a fresh child process through
`compare.run_child`: peak memory per run), scored like every row of benchmarks/compare.py (one
confusion matrix over the validation set at the masks' resolution). Everything but the model is
the recipe's default: input size and mode, working scale, loss, schedule, deep supervision (the
auxiliary heads of FCN and DeepLabV3; LR-ASPP has none), random initial weights (nothing is
downloaded). Results go to `benchmarks/results/relatives.json`, rewritten after each run, and
the table to `docs/benchmarks.md` between its RELATIVES markers. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from compare import ROOT, _save, run_child
from measure import machine_facts
from pipelines import BUNDLED
from report import fmt

from segtutor.architectures import MODELS

BEGIN = "<!-- BEGIN RELATIVES: written by benchmarks/relatives.py from benchmarks/results/relatives.json; do not edit by hand -->"
END = "<!-- END RELATIVES -->"
REAL = {"nuclei": "../shared/data/nuclei", "ccp9": "../shared/data/ccp9"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="scenes,cells,nuclei,ccp9")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--budgets", default="120", help="seconds, comma-separated")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/relatives.json")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs/benchmarks.md")
    parser.add_argument("--render-only", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not args.render_only:
        run_all(args)
    results = json.loads(args.json.read_text())
    render(results, args.doc)
    print(f"wrote {args.doc}")


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every (dataset, model, budget) in turn; the JSON is rewritten after each run."""
    paths = {**BUNDLED, **REAL}
    datasets = args.datasets.split(",")
    unknown = [d for d in datasets if d not in paths] + [
        m for m in args.models.split(",") if m not in MODELS
    ]
    if unknown:
        sys.exit(
            f"unknown datasets or models {unknown}; datasets: {sorted(paths)}, models: {list(MODELS)}"
        )
    results: dict[str, Any] = {"machine": machine_facts(ROOT), "runs": []}
    for name in datasets:
        if not (ROOT / paths[name]).is_dir():
            print(f"{name}: {paths[name]} is not there; skipped")
            continue
        for budget in [float(b) for b in args.budgets.split(",")]:
            for model in args.models.split(","):
                spec = {
                    "kind": "run",
                    "pipeline": "segtutor",
                    "model": model,
                    "dataset": name,
                    "data": paths[name],
                    "budget_s": budget,
                    "device": "auto",
                }
                run = run_child(spec)
                results["runs"].append(run)
                _save(results, args.json)
                print(
                    f"{name:7} {budget:4.0f} s  {model:22} mIoU {fmt(run.get('miou'))}  "
                    f"{run.get('epochs')} epochs  {run.get('images_per_s', float('nan')):.1f} img/s"
                )
    return results


def render(results: dict[str, Any], doc: Path) -> None:
    """Put the table between the doc's RELATIVES markers (appended at the end the first time)."""
    machine = results["machine"]
    lines = [
        BEGIN,
        "",
        f"Measured on {machine['cpu']} ({machine['logical_cpus']} logical CPUs, "
        f"{machine.get('cpu_capability', '?')}), torch {machine['torch']}, {machine['date']}, "
        f"commit {machine.get('segtutor_commit', '?')}; `python benchmarks/relatives.py`. "
        "Random initial weights for every model; mIoU on the validation split, one confusion "
        "matrix at the masks' resolution; GFLOPs per image at the training input size.",
        "",
        "Rows re-measured later (`measured`) were merged into the JSON by hand; a row's `note`"
        " says what it was measured with when that differs from today's code.",
        "",
        "| dataset | budget | model | parameters | GFLOPs/image | images/s | epochs | mIoU "
        "| peak memory | measured |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        if r.get("miou") is None:
            lines.append(
                f"| {r['dataset']} | {r['budget_s']:.0f} s | {r['model']} | failed: see the JSON | | | | | |"
            )
            continue
        note = f" ({r['note']})" if r.get("note") else ""
        measured = r.get("measured", machine["date"])[5:16]
        lines.append(
            f"| {r['dataset']} | {r['budget_s']:.0f} s | `{r['model']}`{note} "
            f"| {r['params'] / 1e6:.2f} M | {r['flops_per_image'] / 1e9:.2f} "
            f"| {r['images_per_s']:.1f} | {r['epochs']} | {fmt(r['miou'])} "
            f"| {r['peak_rss_mib']:.0f} MiB | {measured} |"
        )
    lines += ["", END]
    text = doc.read_text() if doc.exists() else ""
    block = "\n".join(lines)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## The U-Net among its relatives\n\n" + block + "\n"
    doc.write_text(text)


if __name__ == "__main__":
    main()
