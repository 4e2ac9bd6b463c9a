"""What the tutorial leaves out, at a fixed number of epochs: augmentation, the optimizer and its
schedule, early stopping and the best epoch kept (issue 16, the source's defect 5).

    nice -n 19 .venv/bin/python benchmarks/fixed_epochs.py              # 5 runs of 20 epochs
    .venv/bin/python benchmarks/fixed_epochs.py --epochs 2 --variants recipe adam-1e-4

Every run is the recipe of `python -m segtutor train` on the bundled scenes (course U-Net, deep
supervision, sqrt-median weighted CE + Dice, batches of 8, seed 0, float32) for the same number
of epochs, with one thing changed:
- `recipe`: random 96 px crops with flips, rotation and colour jitter; AdamW, peak lr 5e-3,
  one-cycle;
- `no-augmentation`: the same random 96 px crops, nothing else random (no flip, rotation, colour);
- `no-crops-either`: the whole 128x128 images, always the same (the tutorial's input);
- `constant-5e-3`: AdamW at a constant 5e-3 (no warm-up, no annealing);
- `adam-1e-4`: the tutorial's optimizer, Adam at a constant 1e-4.
Epochs, not seconds: the comparison holds on a busy machine. For each run the table gives the
best val mIoU and its epoch (what `fit` keeps), the last epoch's, and where early stopping with
patience 3 would have ended the run and what it would have kept. Writes the table (markdown) and
every epoch's numbers (JSON) to `--out` (a folder); notebook 04 shows them.
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from segtutor.jsonio import write_json
from segtutor.recipe import prepare
from segtutor.train import fit, should_stop
from segtutor.transforms import eval_transforms, train_transforms

__all__ = ["VARIANTS", "early_stop", "main", "markdown_table", "run_variant"]

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "recipe": "augmented crops, AdamW 5e-3 one-cycle (segtutor's recipe)",
    "no-augmentation": "plain random crops, AdamW 5e-3 one-cycle",
    "no-crops-either": "whole images, nothing random, AdamW 5e-3 one-cycle",
    "constant-5e-3": "augmented crops, AdamW at a constant 5e-3",
    "adam-1e-4": "augmented crops, Adam at a constant 1e-4 (the tutorial's)",
}
PATIENCE = 3


def early_stop(val_miou: list[float], patience: int = PATIENCE) -> tuple[int | None, int]:
    """(epoch after which `should_stop` fires or None, epoch `fit` would then have kept)."""
    for epoch in range(1, len(val_miou) + 1):
        if should_stop(val_miou[:epoch], patience):
            seen = val_miou[:epoch]
            return epoch, seen.index(max(seen)) + 1
    return None, val_miou.index(max(val_miou)) + 1


def run_variant(name: str, data: Path, num_epochs: int, max_train_images: int | None) -> dict:
    """Train one variant for `num_epochs`; its per-epoch numbers and the table's summary."""
    run = prepare(data, num_epochs=num_epochs, progress=False, max_train_images=max_train_images)
    config = replace(run.config, amp=False, channels_last=True)  # the same steps on any CPU
    if name in ("no-augmentation", "no-crops-either"):  # the recipe's BatchAugment: rotation
        run.train_loader.collate_fn.rotation = 0  # and jitter off, normalisation kept
        run.train_loader.collate_fn.color_jitter = 0
    if name == "no-augmentation":
        run.train_ds.transform = train_transforms(
            run.options.input_size,
            crop=True,
            hflip=False,
            rotation=0,
            color_jitter=0,
            mean=None,
            std=None,
        )
    elif name == "no-crops-either":
        run.train_ds.transform = eval_transforms(mean=None, std=None)
    elif name == "constant-5e-3":
        config = replace(config, scheduler="none")
    elif name == "adam-1e-4":
        config = replace(config, optimizer="adam", lr=1e-4, weight_decay=0.0, scheduler="none")
    elif name != "recipe":
        raise ValueError(f"unknown variant {name!r}; one of {', '.join(VARIANTS)}")
    start = time.monotonic()
    history = fit(run.model, run.train_loader, run.val_loader, config)
    seconds = time.monotonic() - start
    stop_epoch, kept_epoch = early_stop(history.val_miou)
    best = history.best_epoch
    return {
        "variant": name,
        "what": VARIANTS[name],
        "val_miou": history.val_miou,
        "val_loss": history.val_loss,
        "train_main_loss": history.train_main_loss,
        "best_epoch": best,
        "best_miou": history.best_miou,
        "last_miou": history.val_miou[-1],
        "early_stop_epoch": stop_epoch,
        "early_stop_kept_epoch": kept_epoch,
        "early_stop_kept_miou": history.val_miou[kept_epoch - 1],
        "seconds": round(seconds, 1),
        "speed": history.speed,
    }


def markdown_table(rows: list[dict], num_epochs: int) -> str:
    """One line per variant: best (epoch), last, early stopping (patience 3), main-head losses."""
    lines = [
        f"| variant ({num_epochs} epochs) | best val mIoU (epoch) | last epoch's | "
        f"early stopping, patience {PATIENCE}: stops after, keeps | train / val loss, last |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        stop = (
            f"epoch {r['early_stop_epoch']}, keeps {r['early_stop_kept_miou']:.3f} "
            f"(epoch {r['early_stop_kept_epoch']})"
            if r["early_stop_epoch"] is not None
            else "never fires"
        )
        lines.append(
            f"| {r['variant']}: {r['what']} | {r['best_miou']:.3f} ({r['best_epoch']}) | "
            f"{r['last_miou']:.3f} | {stop} | "
            f"{r['train_main_loss'][-1]:.3f} / {r['val_loss'][-1]:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Parse the options, train each variant in turn, write the JSON and the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data_samples" / "scenes")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--max-train-images", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    command = "python benchmarks/fixed_epochs.py" + "".join(
        f" --{flag} {value}"
        for flag, value, default in (
            ("epochs", args.epochs, 20),
            ("max-train-images", args.max_train_images, None),
            ("variants", " ".join(args.variants), " ".join(VARIANTS)),
        )
        if value != default
    )
    machine = f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    data = args.data.resolve()
    shown = data.relative_to(ROOT) if data.is_relative_to(ROOT) else data.name  # no machine paths
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.variants:
        rows.append(run_variant(name, args.data, args.epochs, args.max_train_images))
        print(f"{name}: best {rows[-1]['best_miou']:.3f} at epoch {rows[-1]['best_epoch']}, "
              f"{rows[-1]['seconds']:.0f} s", flush=True)  # fmt: skip
        table = markdown_table(rows, args.epochs)
        results = {"command": command, "machine": machine, "data": str(shown),
                   "num_epochs": args.epochs, "max_train_images": args.max_train_images,
                   "patience": PATIENCE, "runs": rows}  # fmt: skip
        write_json(args.out / "fixed_epochs.json", results)  # after every run: partial results
        (args.out / "fixed_epochs.md").write_text(f"`{command}` ({machine})\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
