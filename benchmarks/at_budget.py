"""The default `segtutor train --time-budget B` against another checkout, scored on the
validation set and on a held-out set that neither run chose its best epoch on.

    git worktree add ../segtutor-old 3ce82f9                  # the default to compare with
    python benchmarks/at_budget.py --baseline ../segtutor-old --budget 300 --seeds 0,1,2

The issue's target: no dataset gets worse than the old default at 300 s. A run keeps the epoch
with the best validation mIoU, so the score it reports is the largest of many noisy
measurements on the same images (50 for the bundled sets), and a run that validates after every
epoch takes the largest of more of them than one that validates within 5% of its budget. A
held-out set scores both runs' kept weights on images neither has seen: for the bundled
synthetic sets it is generated (`segtutor.synth.write_dataset` with another seed: other images
of the same kind, `--heldout-images` of them); for another dataset give `--heldout FOLDER`.

Each run is the real command line in a fresh process, started in the checkout it measures (so
that `segtutor` is imported from there): `python -m segtutor train --data DATA --time-budget B
--seed S --out TMP --quiet`, then that checkout's `python -m segtutor evaluate --checkpoint
TMP/best.pt --json` on the validation split and on the held-out set. Runs go in turns (baseline,
this checkout, for each seed), after one 1-epoch run of each to fill the speed cache, so that
both see the same machine. Run it on an otherwise idle machine: a budgeted run fits fewer
epochs on a busy one. About 2 x (B + 20) seconds per seed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))  # `segtutor.synth` of this checkout, whatever is installed

from segtutor import synth  # noqa: E402


def heldout_set(data: Path, folder: Path, images: int, seed: int) -> Path:
    """A held-out set for `data`, written to `folder`: new images of a bundled synthetic kind.

    The kind is `data/dataset.json`'s name, the size that of its first validation image.
    """
    metadata = data / "dataset.json"
    name = json.loads(metadata.read_text()).get("name") if metadata.is_file() else None
    if name not in synth.GENERATORS:
        raise SystemExit(
            f"{data} is not one of the bundled synthetic sets ({', '.join(synth.GENERATORS)}): "
            "give --heldout FOLDER, a dataset the runs do not train or validate on"
        )
    first = min((data / "val" / "images").iterdir())
    with Image.open(first) as image:
        size = (image.height, image.width)
    synth.write_dataset(folder, name, n_train=0, n_val=images, size=size, seed=seed)
    shutil.rmtree(folder / "train")  # empty: `evaluate` scores val/ of a train/ + val/ folder
    return folder


def _command(checkout: Path, *args: str) -> str:
    """Run `python -m segtutor ARGS` in `checkout`; its standard output.

    Each checkout keeps its own speed cache (`SEGTUTOR_CACHE_DIR`, a folder in the temporary
    directory named after the checkout's path), so that neither reads what the other measured.
    """
    name = hashlib.sha1(str(checkout).encode()).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / f"segtutor-at-budget-cache-{name}"
    env = {**os.environ, "PYTHONPATH": str(checkout), "SEGTUTOR_QUICK": "",
           "SEGTUTOR_CACHE_DIR": str(cache)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "segtutor", *args], cwd=checkout, env=env, capture_output=True,
        text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"python -m segtutor {' '.join(args)} (in {checkout}) failed:\n"
                         f"{done.stderr[-2000:]}")  # fmt: skip
    return done.stdout


def run_once(checkout: Path, data: Path, heldout: Path, seed: int, budget: float) -> dict:
    """Train in `checkout` under `budget`, then score its best.pt on val and on `heldout`."""
    with tempfile.TemporaryDirectory() as out:
        _command(checkout, "train", "--data", str(data), "--time-budget", str(budget),
                 "--seed", str(seed), "--out", out, "--quiet")  # fmt: skip
        history = json.loads((Path(out) / "history.json").read_text())
        scores = {}
        for name, folder in (("val", data), ("heldout", heldout)):
            text = _command(checkout, "evaluate", "--checkpoint", str(Path(out) / "best.pt"),
                            "--data", str(folder), "--json")  # fmt: skip
            scores[name] = json.loads(text)["miou"]
    return {"epochs": len(history["epoch"]), "best_epoch": history["best_epoch"], **scores}


def table(runs: list[dict]) -> list[str]:
    """Markdown rows: per seed each checkout's epochs, val and held-out mIoU; then the means."""
    seeds = sorted({run["seed"] for run in runs})
    by = {(run["checkout"], run["seed"]): run for run in runs}
    lines = [
        "| seed | baseline: epochs | val | held-out | this: epochs | val | held-out "
        "| held-out difference |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for seed in seeds:
        old, new = by[("baseline", seed)], by[("this", seed)]
        lines.append(
            f"| {seed} | {old['epochs']} | {old['val']:.4f} | {old['heldout']:.4f} "
            f"| {new['epochs']} | {new['val']:.4f} | {new['heldout']:.4f} "
            f"| {new['heldout'] - old['heldout']:+.4f} |"
        )

    def mean(checkout: str, key: str) -> float:
        return statistics.mean(by[(checkout, seed)][key] for seed in seeds)

    lines.append(
        f"| mean | {mean('baseline', 'epochs'):.0f} | {mean('baseline', 'val'):.4f} "
        f"| {mean('baseline', 'heldout'):.4f} | {mean('this', 'epochs'):.0f} "
        f"| {mean('this', 'val'):.4f} | {mean('this', 'heldout'):.4f} "
        f"| {mean('this', 'heldout') - mean('baseline', 'heldout'):+.4f} |"
    )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="checkout to compare with")
    parser.add_argument("--data", type=Path, default=HERE / "data_samples" / "scenes")
    parser.add_argument("--budget", type=float, default=300, help="seconds (default 300)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--heldout", type=Path, help="held-out dataset (default: generated)")
    parser.add_argument("--heldout-images", type=int, default=1000)
    parser.add_argument("--heldout-seed", type=int, default=7, help="the bundled sets use 0")
    parser.add_argument("--json", type=Path, help="also write the runs to this file")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    data = args.data.resolve()
    checkouts = {"baseline": args.baseline.resolve(), "this": HERE}
    with tempfile.TemporaryDirectory() as scratch:
        heldout = args.heldout or heldout_set(
            data, Path(scratch) / "heldout", args.heldout_images, args.heldout_seed
        )
        for checkout in checkouts.values():  # fill the speed cache, so no run pays for timing
            with tempfile.TemporaryDirectory() as out:
                _command(checkout, "train", "--data", str(data), "--epochs", "1", "--out", out,
                         "--quiet")  # fmt: skip
        runs = []
        for seed in seeds:
            for name, checkout in checkouts.items():
                run = {"checkout": name, "seed": seed}
                run.update(run_once(checkout, data, heldout.resolve(), seed, args.budget))
                runs.append(run)
                print(f"{name} seed {seed}: {run['epochs']} epochs, val {run['val']:.4f}, "
                      f"held-out {run['heldout']:.4f}", flush=True)  # fmt: skip
    print(f"\n{data.name} at {args.budget:g} s; baseline {args.baseline}\n")
    print("\n".join(table(runs)))
    if args.json:
        args.json.write_text(json.dumps({"budget_s": args.budget, "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
