"""Merge partial runs of benchmarks/compare.py into one results file, then render it.

    .venv/bin/python benchmarks/merge_results.py benchmarks/results/compare.json part1.json ...

A full run of compare.py (every dataset, budget, pipeline and learning rate) takes hours; this
puts runs made in several sittings into one table, honestly:

- a later run of the same (dataset, pipeline, budget, lr) replaces an earlier one, and every
  run keeps the date of its part (`measured`, a column of the table): segtutor's rows may come
  from different commits, and the notes say which part ran at which commit;
- each peer's learning rate is picked again over every rate any part tried at the pick budget
  (the best val mIoU), and a peer's run at another budget made with a rate that is no longer the
  pick is kept in the JSON as `superseded` and left out of the tables and targets;
- the machine line is the newest part's; each part's date, commit and load average at its
  start are listed under it, so that a reader sees which numbers were measured when.

The first file is the output (read too, if it exists); the results section of
docs/benchmarks.md and the plot are rendered from it, as `compare.py --render-only` would.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from compare import ROOT, _save
from peers import PEERS
from report import render

__all__ = ["merge"]


def _key(run: dict[str, Any]) -> tuple:
    lr = None if run.get("lr") is None else round(float(run["lr"]), 12)
    return (run["dataset"], run["pipeline"], float(run["budget_s"]), lr)


def merge(parts: list[dict[str, Any]], pick_budget: float = 120.0) -> dict[str, Any]:
    """One results dict from `parts` (oldest first)."""
    parts = sorted(parts, key=lambda p: p["machine"]["date"])
    newest = parts[-1]
    runs: dict[tuple, dict[str, Any]] = {}
    for part in parts:
        for run in part["runs"]:
            run = {**run, "measured": run.get("measured") or part["machine"]["date"]}
            runs[_key(run)] = run
    merged = list(runs.values())
    lr_picks = _pick_rates(merged, pick_budget)
    settings = _settings(parts, merged, pick_budget)
    notes = [
        f"part measured {p['machine']['date']}, segtutor at `{p['machine']['segtutor_commit']}`, "
        f"load average at its start {p['machine']['load_average_at_start']}: "
        f"{len(p['runs'])} runs"
        for p in parts
    ]
    return {
        "machine": newest["machine"],
        "settings": settings,
        "skipped": sorted({s for p in parts for s in p.get("skipped", [])}),
        "notes": notes,
        "lr_picks": lr_picks,
        "runs": merged,
        "throughput": next((p["throughput"] for p in reversed(parts) if p.get("throughput")), []),
    }


def _pick_rates(runs: list[dict[str, Any]], pick_budget: float) -> dict[str, Any]:
    """Re-pick each (dataset, peer)'s rate at `pick_budget`; mark the runs accordingly."""
    picks: dict[str, Any] = {}
    for run in runs:
        if run["pipeline"] not in PEERS:
            continue
        at_pick = float(run["budget_s"]) == pick_budget
        run["lr_sweep"] = at_pick
        by_lr = picks.setdefault(run["dataset"], {}).setdefault(run["pipeline"], {})
        if at_pick:
            by_lr[f"{run['lr']:g}"] = (run["lr"], run.get("miou"))
    out: dict[str, Any] = {}
    for dataset, by_peer in picks.items():
        for peer, by_lr in by_peer.items():
            scored = {k: v for k, v in by_lr.items() if v[1] is not None and not math.isnan(v[1])}
            best = max(scored.values(), key=lambda v: v[1])[0] if scored else None
            out.setdefault(dataset, {})[peer] = {
                "lr": best,
                "budget_s": pick_budget,
                "miou_by_lr": {k: v[1] for k, v in sorted(by_lr.items(), key=lambda kv: kv[1][0])},
            }
    for run in runs:
        if run["pipeline"] not in PEERS:
            continue
        best = out.get(run["dataset"], {}).get(run["pipeline"], {}).get("lr")
        same = best is not None and math.isclose(run["lr"], best)
        run["picked"] = same
        run["superseded"] = not run["lr_sweep"] and not same
    return out


def _settings(parts: list[dict[str, Any]], runs: list[dict[str, Any]], pick: float) -> dict:
    settings = dict(parts[-1]["settings"])
    datasets: dict[str, str] = {}
    real: set[str] = set()
    for p in parts:
        datasets |= p["settings"]["datasets"]
        real |= set(p["settings"].get("real_datasets", []))
    lrs = sorted(
        {float(r["lr"]) for r in runs if r.get("lr") is not None and r["pipeline"] != "tutorial"}
    )
    settings.update(
        budgets_s=sorted({float(r["budget_s"]) for r in runs}),
        pick_budget_s=pick,
        peer_lrs=lrs,
        pipelines=list(dict.fromkeys(r["pipeline"] for r in runs)),
        datasets=datasets,
        real_datasets=sorted(real),
    )
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("parts", type=Path, nargs="+")
    parser.add_argument("--pick-budget", type=float, default=120.0)
    parser.add_argument("--doc", type=Path, default=ROOT / "docs/benchmarks.md")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs/images/benchmarks.png")
    args = parser.parse_args()
    files = ([args.out] if args.out.is_file() else []) + args.parts
    results = merge([json.loads(f.read_text()) for f in files], args.pick_budget)
    _save(results, args.out)
    render(results, args.doc, args.plot)
    print(f"wrote {args.out}, {args.doc} and {args.plot}")


if __name__ == "__main__":
    main()
