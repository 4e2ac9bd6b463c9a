"""Time for the default `segtutor train` to reach a validation mIoU, against another checkout.

    git worktree add ../segtutor-old 3ce82f9                  # the default to compare with
    python benchmarks/time_to_miou.py --baseline ../segtutor-old
    python benchmarks/time_to_miou.py --baseline ../segtutor-old --seeds 0,1,2 --target 0.90

The issue's target for the bundled scenes: the default `train` reaches val mIoU >= 0.90 in at
most 0.6x the wall time of the old default, both measured in one sitting on the same machine.

Each run is the real command line in a fresh process, `python -m segtutor train --data DATA
--seed S --out TMP`, started in the checkout it times (so that `segtutor` is imported from
there). Its epoch lines (`epoch 3/20 ... val mIoU 0.8123 ...`) are read as they are printed and
stamped with the seconds since the process was started: the time to the target is the stamp of
the first epoch line at or above it, start-up included, and without what the run does after
that epoch (more epochs, the final evaluation, the figures). The baseline's time is its whole
wall time. Runs go in turns (baseline, this checkout, for each seed), after one 1-epoch run
of each to fill the speed cache, so that both see the same machine. Run it on an otherwise
idle machine.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
EPOCH_LINE = re.compile(r"^epoch (\d+)/\d+ .*val mIoU ([0-9.]+|nan)")


def timed_train(checkout: Path, data: Path, seed: int, epochs: int | None = None) -> dict:
    """One `segtutor train` in `checkout`: wall time, and (epoch, mIoU, seconds) per epoch line."""
    extra = [] if epochs is None else ["--epochs", str(epochs)]
    env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONUNBUFFERED": "1", "SEGTUTOR_QUICK": ""}
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "segtutor", "train", "--data", str(data)]
        command += ["--seed", str(seed), "--out", out, *extra]
        start = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=checkout,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # progress bars
            text=True,
        )
        epochs_seen = []
        for line in process.stdout:
            match = EPOCH_LINE.match(line.strip())
            if match:
                miou = float(match.group(2))
                epochs_seen.append((int(match.group(1)), miou, time.perf_counter() - start))
        if process.wait() != 0:
            raise SystemExit(f"{' '.join(command)} (in {checkout}) failed")
        wall = time.perf_counter() - start
    return {"wall_s": wall, "epochs": epochs_seen}


def time_to(run: dict, target: float) -> tuple[int, float] | None:
    """(epoch, seconds since start) of the first epoch at or above `target`; None if none."""
    return next(((e, s) for e, miou, s in run["epochs"] if miou >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="checkout to compare with")
    parser.add_argument("--data", type=Path, default=HERE / "data_samples" / "scenes")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--target", type=float, default=0.90, help="val mIoU to reach")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    checkouts = {"baseline": args.baseline.resolve(), "this": HERE}
    for checkout in checkouts.values():  # fill the speed cache, so no run pays for timing
        timed_train(checkout, args.data.resolve(), seed=0, epochs=1)

    rows = []
    for seed in seeds:
        for name, checkout in checkouts.items():
            run = timed_train(checkout, args.data.resolve(), seed)
            best = max((miou for _, miou, _ in run["epochs"]), default=float("nan"))
            reached = time_to(run, args.target)
            rows.append((name, seed, run["wall_s"], best, reached))
            reached_text = "never" if reached is None else f"epoch {reached[0]}, {reached[1]:.1f} s"
            print(f"{name} seed {seed}: wall {run['wall_s']:.1f} s, best {best:.4f}, "
                  f">= {args.target}: {reached_text}", flush=True)  # fmt: skip

    baseline_walls = [wall for name, _, wall, _, _ in rows if name == "baseline"]
    mean_wall = statistics.mean(baseline_walls)
    print(f"\nbaseline {args.baseline}: wall {', '.join(f'{w:.1f}' for w in baseline_walls)} s "
          f"(mean {mean_wall:.1f}); 0.6x the mean: {0.6 * mean_wall:.1f} s\n")  # fmt: skip
    print(f"| seed | this checkout's best | time to {args.target} | its baseline's wall "
          "| ratio | ratio to the baseline mean |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    for index, seed in enumerate(seeds):
        (_, _, base_wall, _, _), (_, _, wall, best, reached) = rows[2 * index : 2 * index + 2]
        if reached is None:
            print(
                f"| {seed} | {best:.4f} | never (wall {wall:.1f} s) | {base_wall:.1f} s | - | - |"
            )
            continue
        seconds = reached[1]
        print(f"| {seed} | {best:.4f} | {seconds:.1f} s (epoch {reached[0]}) | {base_wall:.1f} s "
              f"| {seconds / base_wall:.2f}x | {seconds / mean_wall:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
