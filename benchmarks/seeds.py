"""segtutor and its peers over several seeds at one budget: the spread the one-run table hides.

    .venv/bin/python benchmarks/seeds.py ../shared/data/ccp9 120 --pipelines segtutor,lraspp,smp
    .venv/bin/python benchmarks/seeds.py DATA 75 --pipelines segtutor --seeds 0,1,2,3

`compare.py` runs every pipeline once, with seed 0; on ccp9 the same settings move by 0.03-0.05
mIoU from one seed to the next (docs/benchmarks.md), as large as the margins the targets ask
for. This script runs each pipeline once per seed (the initial weights, the shuffling, and
segtutor's crops; the dataset must have its own train/ + val/ split, which no seed
changes), each run a fresh process as in `compare.py` (`run_child`), the
peers at the learning rate `compare.py` picked for the dataset (`--lr NAME=LR` to give
another), one after another in the order seed by seed, so that a machine that slows down
slows every pipeline alike. Prints one line per run and a table of each pipeline's seeds and
mean; `--json` keeps the runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from compare import ROOT, run_child
from peers import PEERS

__all__ = ["main", "summary"]

RESULTS = ROOT / "benchmarks" / "results" / "compare.json"


def picked_rates(dataset: str) -> dict[str, float]:
    """The learning rate `compare.py` picked for each peer on `dataset` (by folder name)."""
    if not RESULTS.is_file():
        return {}
    picks = json.loads(RESULTS.read_text()).get("lr_picks", {}).get(dataset, {})
    return {peer: float(pick["lr"]) for peer, pick in picks.items()}


def summary(runs: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: pipeline, each seed's mIoU, the mean, the lowest and the highest."""
    seeds = sorted({run["seed"] for run in runs})
    lines = [
        "| pipeline | lr | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | min-max |",
        "|---|---|" + "---:|" * (len(seeds) + 2),
    ]
    for pipeline in dict.fromkeys(run["pipeline"] for run in runs):
        mine = {run["seed"]: run for run in runs if run["pipeline"] == pipeline}
        scores = [mine[s]["miou"] for s in seeds if mine.get(s, {}).get("miou") is not None]
        cells = [
            f"{mine[s]['miou']:.3f}" if mine.get(s, {}).get("miou") is not None else "failed"
            for s in seeds
        ]
        lr = next(iter(mine.values())).get("lr", "recipe")
        spread = f"{min(scores):.3f}-{max(scores):.3f}" if scores else ""
        mean = f"**{statistics.mean(scores):.3f}**" if scores else ""
        lines.append(f"| {pipeline} | {lr} | " + " | ".join(cells) + f" | {mean} | {spread} |")
    return lines


def main(argv: list[str]) -> None:
    """Parse, run every (seed, pipeline) in turn, print the lines and the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("budget", type=float, help="seconds of training for every run")
    parser.add_argument("--pipelines", default="segtutor", help="segtutor and names of peers")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--lr", action="append", default=[], metavar="NAME=LR")
    parser.add_argument("--json", type=Path, help="write the runs here")
    args = parser.parse_args(argv)
    if not ((args.data / "train").is_dir() and (args.data / "val").is_dir()):
        raise SystemExit(
            f"{args.data} has no train/ + val/ folders: segtutor's seed also draws the split of a "
            "single folder, so its seeds would be scored on other images than the peers'"
        )
    pipelines = args.pipelines.split(",")
    unknown = [p for p in pipelines if p != "segtutor" and p not in PEERS]
    if unknown:
        raise SystemExit(f"unknown pipelines {unknown}; choose segtutor or from {list(PEERS)}")
    rates = picked_rates(args.data.name) | {
        name: float(lr) for name, lr in (item.split("=", 1) for item in args.lr)
    }
    missing = [p for p in pipelines if p in PEERS and p not in rates]
    if missing:
        raise SystemExit(f"no learning rate for {missing}: give --lr NAME=LR")
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for pipeline in pipelines:
            spec = {
                "kind": "run", "pipeline": pipeline, "dataset": args.data.name,
                "data": str(args.data), "budget_s": args.budget, "seed": seed,
            }  # fmt: skip
            if pipeline in PEERS:
                spec |= {"lr": rates[pipeline], "curve_every": None}
            run = run_child(spec)
            runs.append(run)
            print(
                json.dumps({k: run.get(k) for k in ("pipeline", "seed", "miou", "epochs", "fit_s")})
            )
            if args.json:
                args.json.write_text(json.dumps(runs, indent=1))
    print("\n".join(summary(runs)))


if __name__ == "__main__":
    main(sys.argv[1:])
