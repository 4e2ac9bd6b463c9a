"""Side-by-side benchmark: segtutor's defaults, the source tutorial's pipeline, and smp's U-Net.

    .venv/bin/pip install -r benchmarks/requirements.txt       # once: segmentation_models_pytorch
    .venv/bin/python benchmarks/compare.py                      # everything
    .venv/bin/python benchmarks/compare.py --render-only        # re-draw the doc from the JSON
    .venv/bin/python benchmarks/compare.py --quick --datasets scenes   # smoke test

Three pipelines (`pipelines.py`: segtutor's recipe and `fit`, the source tutorial's code in
`tutorial.py`, smp's U-Net) train on the same train/val file lists (segtutor's `load_splits`),
for the same wall-clock budget, and are scored the same way (`measure.py`): one confusion matrix
over the whole validation set, at the masks' own resolution.

Every (pipeline, dataset, budget) run, and every throughput measurement, is a fresh child process,
so that peak memory (`ru_maxrss` from `os.wait4`) is per run and no run inherits another's caches.
Results go to `benchmarks/results/compare.json`, rewritten after each measurement;
`docs/benchmarks.md` (between its RESULTS markers) and `docs/images/benchmarks.png` are rendered
from that file (`report.py`). Run it on an otherwise idle machine: another busy process makes
every number here smaller.

This file is the command line and the orchestration; its siblings are imported as top-level
modules (`python benchmarks/compare.py` puts this folder first on `sys.path`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from pipelines import BUNDLED, PIPELINES, THROUGHPUT, child_run, child_throughput
from report import fmt, render

from segtutor.jsonio import json_ready

__all__ = [
    "build_parser",
    "child_main",
    "choose_datasets",
    "machine_facts",
    "main",
    "measure_throughput",
    "run_benchmark",
    "run_child",
]

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve()
RESULTS_JSON = ROOT / "benchmarks" / "results" / "compare.json"
DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "images" / "benchmarks.png"
DEFAULT_NUCLEI = "../shared/data/nuclei"  # relative to the repository root


def build_parser() -> argparse.ArgumentParser:
    """The command line; `--child` and `--result` (hidden) are how a child process is started."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets",
        default="scenes,cells,nuclei",
        help="comma-separated: scenes, cells (bundled), nuclei (see --nuclei)",
    )
    parser.add_argument("--budgets", default=None, help="seconds, comma-separated (60,300)")
    parser.add_argument(
        "--pipelines", default=",".join(PIPELINES), help="comma-separated: segtutor, tutorial, smp"
    )
    parser.add_argument(
        "--nuclei",
        default=DEFAULT_NUCLEI,
        help="the nuclei folder (train/ + val/); skipped, with a note, if absent",
    )
    parser.add_argument(
        "--no-throughput",
        action="store_true",
        help="skip the throughput and hardware-efficiency measurements",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny budgets and few steps, written to a temporary folder (a "
        "smoke test; never to docs/)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="re-draw the doc and the plot from the JSON, no training",
    )
    parser.add_argument("--json", type=Path, default=None, help=f"default {RESULTS_JSON}")
    parser.add_argument("--doc", type=Path, default=None, help=f"default {DOC}")
    parser.add_argument("--plot", type=Path, default=None, help=f"default {PLOT}")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    return parser


def main() -> None:
    """Parse the command line; measure (or, in a child, run one spec), then render."""
    args = build_parser().parse_args()

    if args.child is not None:
        child_main(json.loads(args.child), args.result)
        return

    if args.quick:
        quick_dir = Path(tempfile.gettempdir()) / "segtutor-compare-quick"
        json_path = args.json or quick_dir / "compare.json"
        doc_path = args.doc or quick_dir / "benchmarks.md"
        plot_path = args.plot or quick_dir / "images" / "benchmarks.png"
    else:
        json_path, doc_path, plot_path = (
            args.json or RESULTS_JSON,
            args.doc or DOC,
            args.plot or PLOT,
        )

    if not args.render_only:
        run_benchmark(args, json_path)
        print(f"wrote {_rel(json_path)}")
    if not json_path.is_file():
        raise SystemExit(
            f"{_rel(json_path)} is not there: run the benchmark first (without --render-only)"
        )
    results = json.loads(json_path.read_text())
    render(results, doc_path, plot_path)
    print(f"wrote {_rel(doc_path)} and {_rel(plot_path)}")


def run_benchmark(args: argparse.Namespace, json_path: Path) -> dict[str, Any]:
    """Run every measurement; `json_path` is rewritten after each one, so that an interrupted
    benchmark keeps what it measured (re-render it with --render-only)."""
    budgets = [float(b) for b in (args.budgets or ("4,8" if args.quick else "60,300")).split(",")]
    pipelines = [p.strip() for p in args.pipelines.split(",") if p.strip()]
    unknown = set(pipelines) - set(PIPELINES)
    if unknown:
        raise SystemExit(f"unknown pipelines {sorted(unknown)}; choose from {PIPELINES}")
    datasets, skipped = choose_datasets(args)
    results: dict[str, Any] = {
        "machine": machine_facts(),
        "settings": {
            "budgets_s": budgets,
            "pipelines": pipelines,
            "datasets": datasets,
            "quick": args.quick,
        },
        "skipped": skipped,
        "runs": [],
        "throughput": [],
    }
    # Throughput first: a few minutes, and the numbers the speed targets are about.
    if not args.no_throughput:
        measure_throughput(results, args.quick, json_path)
    total = len(datasets) * len(budgets) * len(pipelines)
    print(
        f"{total} runs, {sum(budgets) * len(datasets) * len(pipelines) / 60:.0f} min of "
        "budgets plus start-up and evaluation"
    )
    for dataset, data in datasets.items():
        for budget in budgets:
            for pipeline in pipelines:
                spec = {
                    "kind": "run",
                    "pipeline": pipeline,
                    "dataset": dataset,
                    "data": data,
                    "budget_s": budget,
                }
                run = run_child(spec)
                results["runs"].append(run)
                _save(results, json_path)
                print(
                    f"{dataset:7s} {budget:5.0f} s  {pipeline:8s}  mIoU {fmt(run['miou'])}  "
                    f"{run['images_per_s']:6.1f} img/s  {run['epochs']:3d} epochs  "
                    f"peak {run['peak_rss_mib']:5.0f} MiB  ({run['wall_s']:.0f} s wall)",
                    flush=True,
                )
    return results


def choose_datasets(args: argparse.Namespace) -> tuple[dict[str, str], list[str]]:
    """`({name: folder relative to the repository root}, [notes on skipped datasets])`."""
    datasets: dict[str, str] = {}
    skipped = []
    for name in (d.strip() for d in args.datasets.split(",") if d.strip()):
        if name in BUNDLED:
            datasets[name] = BUNDLED[name]
        elif name == "nuclei":
            # the default is relative to the repository root, a path given to the current folder
            path = ROOT / DEFAULT_NUCLEI if args.nuclei == DEFAULT_NUCLEI else Path(args.nuclei)
            if path.resolve().is_dir():
                datasets[name] = os.path.relpath(path.resolve(), ROOT)  # children run in ROOT
            else:
                note = f"nuclei skipped: {args.nuclei} is not there (pass --nuclei PATH)"
                print(note)
                skipped.append(note)
        else:
            raise SystemExit(f"unknown dataset {name!r}; choose scenes, cells or nuclei")
    return datasets, skipped


def measure_throughput(results: dict[str, Any], quick: bool, json_path: Path) -> None:
    """Append one row per loop and model of `THROUGHPUT` to `results`, saving after each."""
    warmup, timed, matmul_n = (1, 2, 1024) if quick else (2, 6, 4096)
    for name in THROUGHPUT:
        spec = {
            "kind": "throughput",
            "name": name,
            "warmup": warmup,
            "timed": timed,
            "matmul_n": matmul_n,
        }
        row = run_child(spec)
        results["throughput"].append(row)
        _save(results, json_path)
        print(
            f"{name:32s} {row['images_per_s']:6.2f} img/s  "
            f"{row['train_flops_per_s'] / 1e9:6.1f} GFLOP/s = "
            f"{100 * row['efficiency']:4.1f}% of matmul "
            f"({row['matmul_flops_per_s'] / 1e9:.0f} GFLOP/s)",
            flush=True,
        )


def _save(results: dict[str, Any], json_path: Path) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(json_ready(results), indent=1) + "\n")


def _rel(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(ROOT))
    return str(path)


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run `spec` in a fresh process; its result plus wall time and peak RSS (MiB).

    The peak is `ru_maxrss` from `os.wait4`: the largest resident set of the child or of any
    process it waited for (DataLoader workers), not their sum.
    """
    with tempfile.TemporaryDirectory() as tmp:
        result, log = Path(tmp) / "result.json", Path(tmp) / "log.txt"
        command = [sys.executable, str(THIS), "--child", json.dumps(spec), "--result", str(result)]
        env = {**os.environ, "SEGTUTOR_QUICK": ""}  # the real defaults, never quick mode
        start = time.monotonic()
        with open(log, "w") as log_file:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
            )
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - start
        if process.returncode != 0 or not result.is_file():
            tail = "".join(log.read_text().splitlines(keepends=True)[-30:])
            raise RuntimeError(f"run {spec} failed (exit {process.returncode}):\n{tail}")
        out = json.loads(result.read_text())
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    peak = usage.ru_maxrss * scale / 2**20
    return {**spec, **out, "wall_s": wall, "peak_rss_mib": peak}


def child_main(spec: dict[str, Any], result: Path) -> None:
    """In the child process: run `spec`, write its numbers to `result` as JSON."""
    start = time.monotonic()
    out = child_throughput(spec) if spec["kind"] == "throughput" else child_run(spec)
    out["wall_in_child_s"] = time.monotonic() - start
    result.write_text(json.dumps(out))


def machine_facts() -> dict[str, Any]:
    """The CPU, library versions, commit, load and date the numbers were measured with."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    try:
        from importlib.metadata import version

        smp_version = version("segmentation_models_pytorch")
    except Exception:  # not installed
        smp_version = None
    import torchvision

    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "segmentation_models_pytorch": smp_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "segtutor_commit": commit,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


if __name__ == "__main__":
    main()
