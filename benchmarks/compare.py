"""Side-by-side benchmark: segtutor's defaults, the source tutorial's pipeline, library peers.

    .venv/bin/pip install -r benchmarks/requirements.txt       # once: segmentation_models_pytorch
    .venv/bin/python benchmarks/compare.py                      # everything
    .venv/bin/python benchmarks/compare.py --render-only        # re-draw the doc from the JSON
    .venv/bin/python benchmarks/compare.py --quick --datasets scenes --peer-lrs 1e-3  # smoke test

The pipelines (`pipelines.py`: segtutor's recipe and `fit`, the source tutorial's code in
`tutorial.py`; `peers.py`: smp's U-Net and torchvision's LR-ASPP and DeepLabV3, fed from memory
at their own best settings, their learning rate picked per dataset) train on the same train/val
files (segtutor's `load_splits`), for the same wall-clock budgets, and are scored the same way
(`measure.py`): one confusion matrix over the whole validation set, at the masks' own
resolution. `plan.py` decides which runs happen; `report.py`, `verdicts.py` and `plot.py` turn
the JSON into the doc's section, the targets and the plot.

Every (pipeline, dataset, budget, lr) run, and every throughput measurement, is a fresh child
process, so that peak memory (`ru_maxrss` from `os.wait4`) is per run and no run inherits
another's caches. Results go to `benchmarks/results/compare.json`, rewritten after each run;
`docs/benchmarks.md` (between its RESULTS markers) and `docs/images/benchmarks.png` are rendered
from that file. Run it on an otherwise idle machine: another busy process makes every number
here smaller.

This file is the command line and the orchestration; its siblings are imported as top-level
modules (`python benchmarks/compare.py` puts this folder first on `sys.path`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from measure import machine_facts
from peers import PEER_LRS, PEERS
from pipelines import BUNDLED, PIPELINES, THROUGHPUT, child_run, child_throughput
from plan import (
    DEFAULT_BUDGETS,
    QUICK_BUDGETS,
    parse_floats,
    parse_named_data,
    pick_budget,
    run_order,
    segtutor_budgets,
    sweep_lr,
)
from report import fmt, render

from segtutor.jsonio import json_ready

__all__ = [
    "build_parser",
    "child_main",
    "choose_datasets",
    "main",
    "measure_throughput",
    "run_benchmark",
    "run_child",
    "run_dataset",
]

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve()
RESULTS_JSON = ROOT / "benchmarks" / "results" / "compare.json"
DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "images" / "benchmarks.png"
# The real datasets the benchmark looks for, relative to the repository root.
DEFAULT_REAL = {"nuclei": "../shared/data/nuclei", "ccp9": "../shared/data/ccp9"}


def build_parser() -> argparse.ArgumentParser:
    """The command line; `--child` and `--result` (hidden) are how a child process is started."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets",
        default="scenes,cells,nuclei,ccp9",
        help="comma-separated: scenes, cells (bundled), nuclei, ccp9 (real; see --nuclei, "
        "--ccp9); every --data folder is added to these",
    )
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another real dataset: any folder segtutor can load (repeatable)",
    )
    parser.add_argument(
        "--budgets", default=None, help=f"seconds, comma-separated (default {DEFAULT_BUDGETS})"
    )
    parser.add_argument(
        "--segtutor-extra-budgets",
        default="75",
        help="more budgets for segtutor alone on real datasets (the issue's 'within 75 s' "
        "target); '' for none",
    )
    parser.add_argument(
        "--pipelines", default=",".join(PIPELINES), help=f"comma-separated: {', '.join(PIPELINES)}"
    )
    parser.add_argument(
        "--peer-lrs",
        default=",".join(f"{lr:g}" for lr in PEER_LRS),
        help="the learning rates each peer's rate is picked from, per dataset (fewer: quicker)",
    )
    parser.add_argument(
        "--pick-budget",
        type=float,
        default=None,
        help="the budget (s) the peers' learning rate is picked at (default 120 if among the "
        "budgets, else the smallest)",
    )
    parser.add_argument(
        "--curve-every",
        type=float,
        default=None,
        help="seconds of training between the peers' curve points (default 30; 2 with --quick)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="where every pipeline trains and is scored (auto: a GPU when there is one)",
    )
    for name, path in DEFAULT_REAL.items():
        parser.add_argument(
            f"--{name}",
            default=path,
            help=f"the {name} folder (train/ + val/); skipped, with a note, if absent",
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
    budgets = parse_floats(
        args.budgets or (QUICK_BUDGETS if args.quick else DEFAULT_BUDGETS), "--budgets"
    )
    pipelines = [p.strip() for p in args.pipelines.split(",") if p.strip()]
    unknown = set(pipelines) - set(PIPELINES)
    if unknown:
        raise SystemExit(f"unknown pipelines {sorted(unknown)}; choose from {PIPELINES}")
    if not budgets or not pipelines:
        raise SystemExit("--budgets and --pipelines must each name at least one")
    datasets, skipped = choose_datasets(args)
    curve_every = args.curve_every if args.curve_every is not None else (2 if args.quick else 30)
    settings = {
        "budgets_s": budgets,
        "segtutor_extra_budgets_s": parse_floats(
            args.segtutor_extra_budgets, "--segtutor-extra-budgets"
        ),
        "pick_budget_s": pick_budget(budgets, args.pick_budget),
        "peer_lrs": parse_floats(args.peer_lrs, "--peer-lrs"),
        "curve_every_s": curve_every,
        "device": args.device,
        "pipelines": pipelines,
        "datasets": {name: d["path"] for name, d in datasets.items()},
        "real_datasets": [name for name, d in datasets.items() if d["real"]],
        "quick": args.quick,
    }
    results: dict[str, Any] = {
        "machine": machine_facts(ROOT),
        "settings": settings,
        "skipped": skipped,
        "lr_picks": {},
        "runs": [],
        "throughput": [],
    }
    # Throughput first: a few minutes, and the numbers the speed targets are about.
    if not args.no_throughput:
        measure_throughput(results, args.quick, json_path)
    for name in datasets:
        run_dataset(results, name, json_path)
    return results


def run_dataset(results: dict[str, Any], name: str, json_path: Path) -> None:
    """Every run on one dataset: each peer's lr sweep at the pick budget first, then each
    budget's runs with the picked rates. Appends to `results` and saves after every run."""
    settings = results["settings"]
    real = name in settings["real_datasets"]
    budgets, pick_at = settings["budgets_s"], settings["pick_budget_s"]
    seg_budgets = segtutor_budgets(budgets, real, settings["segtutor_extra_budgets_s"])
    base = {
        "kind": "run",
        "dataset": name,
        "data": settings["datasets"][name],
        "real": real,
        "device": settings["device"],
        "curve_every": settings["curve_every_s"],
    }

    def record(spec: dict[str, Any]) -> dict[str, Any]:
        run = run_child({**base, **spec})
        results["runs"].append(run)
        _save(results, json_path)
        _print_run(run)
        return run

    peers = [p for p in settings["pipelines"] if p in PEERS]
    picked: dict[str, float | None] = {}
    for peer in peers:
        lr, runs = sweep_lr(
            lambda lr, peer=peer: record(
                {"pipeline": peer, "budget_s": pick_at, "lr": lr, "lr_sweep": True}
            ),
            settings["peer_lrs"],
        )
        picked[peer] = lr
        results["lr_picks"].setdefault(name, {})[peer] = {
            "lr": lr,
            "budget_s": pick_at,
            "miou_by_lr": {f"{r['lr']:g}": r["miou"] for r in runs},
        }
        _save(results, json_path)
        print(f"{name}: {peer} learning rate picked at {pick_at:.0f} s: {lr}", flush=True)
    for pipeline, budget in run_order(settings["pipelines"], budgets, seg_budgets, peers, pick_at):
        spec: dict[str, Any] = {"pipeline": pipeline, "budget_s": budget}
        if pipeline in peers:
            if picked[pipeline] is None:
                continue  # no rate scored at all: nothing to run it with
            spec.update(lr=picked[pipeline], lr_sweep=False)
        record(spec)


def _print_run(run: dict[str, Any]) -> None:
    lr = f" lr {run['lr']:g}" if run.get("lr") is not None else ""
    if run.get("error"):
        print(f"{run['dataset']:7s} {run['budget_s']:5.0f} s  {run['pipeline']:9s}{lr}  FAILED")
        return
    print(
        f"{run['dataset']:7s} {run['budget_s']:5.0f} s  {run['pipeline']:9s}{lr}  "
        f"mIoU {fmt(run['miou'])}  {run['images_per_s']:6.1f} img/s  {run['epochs']:3d} epochs  "
        f"peak {run['peak_rss_mib']:5.0f} MiB  ({run['wall_s']:.0f} s wall)",
        flush=True,
    )


def choose_datasets(args: argparse.Namespace) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """`({name: {"path": folder relative to the repository root, "real": bool}}, [notes on
    skipped datasets])`: the bundled sets, the default real ones if there, the `--data` ones."""
    datasets: dict[str, dict[str, Any]] = {}
    skipped = []
    for name in (d.strip() for d in args.datasets.split(",") if d.strip()):
        if name in BUNDLED:
            datasets[name] = {"path": BUNDLED[name], "real": False}
        elif name in DEFAULT_REAL:
            given = getattr(args, name)
            # the default is relative to the repository root, a path given to the current folder
            path = ROOT / given if given == DEFAULT_REAL[name] else Path(given)
            if path.resolve().is_dir():
                datasets[name] = {"path": os.path.relpath(path.resolve(), ROOT), "real": True}
            else:
                note = f"{name} skipped: {given} is not there (pass --{name} PATH)"
                print(note)
                skipped.append(note)
        else:
            known = ", ".join([*BUNDLED, *DEFAULT_REAL])
            raise SystemExit(f"unknown dataset {name!r}; choose from {known} or use --data")
    for name, given in parse_named_data(args.data, [*BUNDLED, *DEFAULT_REAL]).items():
        path = Path(given).resolve()
        if not path.is_dir():
            raise SystemExit(f"--data {name}={given}: no such folder")
        datasets[name] = {"path": os.path.relpath(path, ROOT), "real": True}  # children run in ROOT
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
            "device": results["settings"]["device"],
        }
        row = run_child(spec)
        if row.get("error"):
            print(f"{name:32s} FAILED", flush=True)
            continue
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
    process it waited for (DataLoader workers), not their sum. A run that fails is recorded,
    not raised (`"error"`: the end of its log, `"miou"` None), so that one pipeline that cannot
    read a dataset does not end a benchmark of hours; the report prints it as failed.
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
            print(f"run {spec} failed (exit {process.returncode}):\n{tail}", file=sys.stderr)
            out = {"error": tail, "miou": None}
        else:
            out = json.loads(result.read_text())
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    peak = usage.ru_maxrss * scale / 2**20
    return {**spec, **out, "wall_s": wall, "peak_rss_mib": peak}


def child_main(spec: dict[str, Any], result: Path) -> None:
    """In the child process: run `spec`, write its numbers to `result` as JSON."""
    start = time.monotonic()
    out = child_throughput(spec) if spec["kind"] == "throughput" else child_run(spec)
    out["wall_in_child_s"] = time.monotonic() - start
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    result.write_text(json.dumps(json_ready(out)))


if __name__ == "__main__":
    main()
