"""Rerunnable check of the training targets: wall time and validation mIoU of `segtutor train`.

    python benchmarks/train_targets.py                      # defaults on the bundled scenes
    python benchmarks/train_targets.py --seeds 0 1 2        # the same with other seeds too
    python benchmarks/train_targets.py --nuclei ../shared/data/nuclei --budget 300

Each run is the real command line in a fresh process (start-up included), timed from outside,
and its numbers are read back from the run folder's metrics.json. Run it on an otherwise idle
machine: the timings are only meaningful when nothing else competes for the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_train(extra: list[str]) -> dict:
    """`python -m segtutor train --quiet ... *extra` in a fresh process, timed from outside;
    its metrics.json plus the command and the wall time (start-up included, as a user waits)."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "segtutor", "train", "--quiet", "--out", out, *extra]
        start = time.perf_counter()
        subprocess.run(command, check=True, env={**os.environ, "SEGTUTOR_QUICK": ""})
        seconds = time.perf_counter() - start
        metrics = json.loads((Path(out) / "metrics.json").read_text())
    return {"command": " ".join(["python -m segtutor train", *extra]), "wall_s": seconds, **metrics}


def main() -> None:
    """Parse the command line, train once per seed (and on --nuclei), print each result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--nuclei",
        type=Path,
        default=None,
        help="also train on this folder (the 2018 Data Science Bowl nuclei)",
    )
    parser.add_argument("--budget", type=float, default=300, help="time budget for --nuclei")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="train on the scenes once per seed (default: the command's seed, 0)",
    )
    args = parser.parse_args()

    results = [run_train([] if seed == 0 else ["--seed", str(seed)]) for seed in args.seeds]
    if args.nuclei is not None:
        results.append(run_train(["--data", str(args.nuclei), "--time-budget", str(args.budget)]))
    for r in results:
        per_class = ", ".join(
            f"{c['class']} {c['iou']:.3f}" for c in r["per_class"] if c["iou"] is not None
        )
        print(
            f"{r['command']}\n  wall {r['wall_s']:.0f} s, {r['epochs_run']} epochs, "
            f"val mIoU {r['miou']:.3f} ({per_class})"
        )


if __name__ == "__main__":
    main()
