"""Prediction speed and quality: eager PyTorch, TorchScript and ONNX Runtime; whole image, sliding
window and flip TTA, each with the mIoU it gives (issue 15).

    .venv/bin/python benchmarks/predict_speed.py                   # nuclei and ccp9, ~10 min
    .venv/bin/python benchmarks/predict_speed.py --data nuclei=../shared/data/nuclei \\
        --checkpoint nuclei=runs/nuclei/best.pt --out benchmarks/results/predict_speed.json
    .venv/bin/python benchmarks/predict_speed.py --quick           # a tiny made-up dataset

For each dataset: a checkpoint (`--checkpoint NAME=CKPT`, else the recipe's defaults trained for
`--train-seconds`, as `python -m segtutor train --time-budget` would), then on its validation
images at their own size, on the CPU:
- images per second of whole-image prediction (batch of one, at the working scale) for the eager
  model, its TorchScript export and its ONNX export run by onnxruntime (`segtutor.deploy`);
- seconds per image and mIoU (one confusion matrix over the whole split, masks' resolution) of
  `segtutor.inference.Predictor` whole, with a sliding window of the training crop size
  (overlap 0.25, Gaussian blend), with flip TTA, and with both.
Prints a markdown table and writes the numbers as JSON (`--out`). docs/benchmarks.md quotes
them with the command and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from segtutor.checkpoint import load_checkpoint
from segtutor.data import load_splits
from segtutor.export import export_model
from segtutor.inference import Predictor
from segtutor.jsonio import write_json
from segtutor.metrics import ConfusionMatrix
from segtutor.recipe import prepare
from segtutor.train import fit

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = {
    "nuclei": ROOT.parent / "shared/data/nuclei",
    "ccp9": ROOT.parent / "shared/data/ccp9",
}
VARIANTS = {  # name -> Predictor options on top of the checkpoint's
    "whole": {"window": None},
    "window": {"window": "crop"},
    "tta": {"window": None, "tta": "flip"},
    "window+tta": {"window": "crop", "tta": "flip"},
}


def train_checkpoint(data: Path, folder: Path, seconds: float, quick: bool) -> Path:
    """The recipe's defaults trained for `seconds` (quick: one epoch of the tiny preset)."""
    choices = {"num_epochs": 1, "preset": "tiny", "input_size": 32} if quick else {}
    budget = None if quick else seconds
    run = prepare(data, run_dir=folder, time_budget_s=budget, progress=False, device="cpu",
                  **choices)  # fmt: skip
    fit(run.model, run.train_loader, run.val_loader, run.config)
    return folder / "best.pt"


def val_samples(data: Path, limit: int | None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The validation images (RGB uint8) and masks (int64) at their own size."""
    _, val_ds = load_splits(data)
    images, masks = [], []
    for index in range(len(val_ds) if limit is None else min(limit, len(val_ds))):
        image, mask = val_ds.read_sample(index)
        images.append(image.permute(1, 2, 0).numpy())
        masks.append(mask.numpy().astype(np.int64))
    return images, masks


def images_per_second(predict, images: list[np.ndarray], repeats: int) -> float:
    """Best of `repeats` passes over `images` (one warm-up image first)."""
    predict(images[0])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for image in images:
            predict(image)
        best = min(best, time.perf_counter() - start)
    return len(images) / best


def engines(checkpoint: Path, folder: Path) -> dict:
    """`(H, W, 3) uint8 -> logits` for eager, TorchScript and ONNX Runtime, fed the same way."""
    predictor = Predictor.from_checkpoint(checkpoint, window=None)
    result = {"eager": predictor.logits}
    scripted = torch.jit.load(str(export_model(checkpoint, "torchscript", folder / "m.pt")))
    result["torchscript"] = Predictor(scripted, predictor.num_classes, scale=predictor.scale,
                                      input_size=predictor.input_size, window=None).logits  # fmt: skip
    try:
        from segtutor.deploy import OnnxSegmenter

        result["onnxruntime"] = OnnxSegmenter(
            export_model(checkpoint, "onnx", folder / "m.onnx")
        ).logits
    except ImportError as error:  # the export extras are missing: say so in the table
        print(f"onnxruntime skipped: {error}")
    return result


def variant_scores(checkpoint: Path, images, masks, crop: int) -> dict:
    """Seconds per image and mIoU of each `VARIANTS` entry."""
    rows = {}
    for name, options in VARIANTS.items():
        options = {k: (crop if v == "crop" else v) for k, v in options.items()}
        predictor = Predictor.from_checkpoint(checkpoint, **options)
        cm = ConfusionMatrix(predictor.num_classes)
        start = time.perf_counter()
        for image, mask in zip(images, masks, strict=True):
            cm.update(predictor.predict(image)[None], torch.from_numpy(mask)[None])
        seconds = (time.perf_counter() - start) / len(images)
        rows[name] = {"s_per_image": round(seconds, 4), "miou": round(cm.miou(), 4), **options}
    return rows


def _shown(path: Path) -> str:
    """`path` relative to the repository (`../shared/data/nuclei`), else its name alone."""
    try:
        return Path(os.path.relpath(Path(path).resolve(), ROOT)).as_posix()
    except ValueError:
        return Path(path).name


def benchmark(name: str, data: Path, checkpoint: Path | None, args, folder: Path) -> dict:
    """Every number for one dataset."""
    trained = checkpoint is None
    if trained:
        checkpoint = train_checkpoint(data, folder / name, args.train_seconds, args.quick)
    saved = load_checkpoint(checkpoint).get("config") or {}
    images, masks = val_samples(data, args.max_images)
    speed = {
        engine: round(images_per_second(fn, images, args.repeats), 2)
        for engine, fn in engines(checkpoint, folder / name).items()
    }
    crop = int(saved.get("input_size") or 96)
    return {
        "data": _shown(data),  # no machine path in the results
        "checkpoint": f"trained {args.train_seconds:g} s here" if trained else _shown(checkpoint),
        "val_images": len(images),
        "image_sizes": sorted({tuple(int(s) for s in i.shape[:2]) for i in images}),
        "working_scale": saved.get("working_scale"),
        "images_per_second": speed,
        "variants": variant_scores(checkpoint, images, masks, crop),
    }


def table(results: dict) -> str:
    """The markdown rows docs/benchmarks.md quotes."""
    lines = ["| data | engine / variant | images/s | s/image | mIoU |", "|---|---|---|---|---|"]
    for name, result in results["datasets"].items():
        for engine, speed in result["images_per_second"].items():
            lines.append(f"| {name} | {engine} (whole image) | {speed} | | |")
        for variant, row in result["variants"].items():
            lines.append(f"| {name} | {variant} | | {row['s_per_image']} | {row['miou']} |")
    return "\n".join(lines)


def _named(text: str) -> tuple[str, Path]:
    name, _, path = text.partition("=")
    if not path:
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=PATH")
    return name, Path(path)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print the table; write `--out`; return the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=_named, action="append", help="NAME=FOLDER (repeat)")
    parser.add_argument("--checkpoint", type=_named, action="append", default=[],
                        help="NAME=CKPT: a trained checkpoint for dataset NAME")  # fmt: skip
    parser.add_argument("--train-seconds", type=float, default=120)
    parser.add_argument("--max-images", type=int, default=None, help="validation images used")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a tiny made-up dataset, seconds")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    checkpoints = dict(args.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.quick:
            from segtutor.synth import write_dataset

            write_dataset(folder / "fake", "scenes", n_train=6, n_val=3, size=(48, 64), seed=0)
            datasets = {"fake": folder / "fake"}
            args.repeats, args.max_images = 1, args.max_images or 3
        else:
            datasets = dict(args.data) if args.data else DEFAULT_DATA
        results = {
            "machine": {
                "cpu": platform.processor() or platform.machine(),
                "torch_threads": torch.get_num_threads(),
                "torch": torch.__version__,
            },  # fmt: skip
            "datasets": {
                name: benchmark(name, path, checkpoints.get(name), args, folder)
                for name, path in datasets.items()
            },
        }
    print(table(results))
    if args.out:
        write_json(args.out, results)
    return results


if __name__ == "__main__":
    main()
    print(json.dumps({"done": True}))
