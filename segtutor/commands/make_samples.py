"""Regenerate the bundled sample datasets, byte for byte the same from the same seed.

`python -m segtutor make-samples [--out data_samples] [--seed 0]` writes every set of
`segtutor.synth.SAMPLE_SETS` with `segtutor.synth.write_dataset`. Introduced in `01_data.ipynb`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from segtutor import synth

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `make-samples` arguments to `parser`. Introduced in `01_data.ipynb`."""
    parser.add_argument(
        "--out", default="data_samples", help="output folder (default: data_samples)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def run(args: argparse.Namespace) -> int:
    """Write each sample set under `args.out`; print what was written. Returns 0.

    Introduced in `01_data.ipynb`.
    """
    for kind, spec in synth.SAMPLE_SETS.items():
        start = time.perf_counter()
        summary = synth.write_dataset(Path(args.out) / kind, kind, seed=args.seed, **spec)
        counts = ", ".join(f"{n} {split}" for split, n in summary["counts"].items())
        print(f"{Path(args.out) / kind}: {counts} in {time.perf_counter() - start:.1f} s")
    return 0
