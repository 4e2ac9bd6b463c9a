"""Evaluate a checkpoint on a dataset, at the masks' own resolution.

Prints the per-class table (IoU, Dice, pixels) and the mean IoU from one confusion matrix over the
whole dataset; `--json` prints the same as JSON. With a `train/` + `val/` folder it evaluates
`val/` (or the split named by `--split`); with a plain `images/` + `masks/` folder, all of it.
Introduced in `05_evaluation.ipynb`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from segtutor.checkpoint import load_checkpoint, model_from_checkpoint
from segtutor.commands.common import add_checkpoint_argument, add_data_arguments, positive_int
from segtutor.data import SegmentationDataset, load_layout_split
from segtutor.errors import DataError, Problem
from segtutor.jsonio import json_ready
from segtutor.layouts import find_layout
from segtutor.recipe import choose_input_mode, image_sizes, resolve_data, val_loader_for
from segtutor.runtime import choose_device
from segtutor.train import evaluate

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `evaluate` arguments to `parser`. Introduced in `05_evaluation.ipynb`."""
    add_checkpoint_argument(parser)
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="dataset folder (default: the bundled data_samples/scenes)",
    )
    parser.add_argument(
        "--split",
        default="val",
        help="which split of a train/ + val/ folder to evaluate (default: val)",
    )
    add_data_arguments(parser)
    parser.add_argument("--batch-size", type=positive_int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")


def evaluation_folder(data: Path, split: str) -> Path:
    """`data/split` when the folder is split, else `data` itself.

    Introduced in `05_evaluation.ipynb`.
    """
    if (data / split / "images").is_dir():
        return data / split
    if (data / "images").is_dir() or not (data / "train").is_dir():
        return data
    raise DataError(Problem(data / split, f"no '{split}' split here", "pass --split train"))


def run(args: argparse.Namespace) -> int:
    """Evaluate `args.checkpoint` fed the way it was trained; print the table or JSON.

    Introduced in `05_evaluation.ipynb`.
    """
    checkpoint = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(checkpoint)
    saved = checkpoint.get("config") or {}
    data = resolve_data(args.data)
    found = find_layout(data, args.format)
    if found is None:
        folder = evaluation_folder(data, args.split)
        dataset = SegmentationDataset(
            folder,
            num_classes=args.num_classes or model.num_classes,
            binary_255=args.binary_255,
            class_names=checkpoint.get("class_names"),
            palette=checkpoint.get("palette"),
        )
    else:  # a famous dataset as it ships: its own split, names and mask values
        dataset = load_layout_split(*found, args.split, num_classes=model.num_classes)
        folder = dataset.root
    size = int(saved.get("input_size") or 128)
    mode = saved.get("input_mode") or choose_input_mode(image_sizes(dataset), size)
    scale = saved.get("working_scale", 1.0)
    loader = val_loader_for(dataset, mode, size, args.batch_size, scale=scale)
    model.to(choose_device(args.device))
    cm = evaluate(model, loader, model.num_classes, ignore_index=saved.get("ignore_index", 255))
    names = checkpoint.get("class_names") or dataset.class_names
    if args.json:
        print(json.dumps(json_ready({"data": str(folder), **cm.to_dict(names)}), indent=2))
    else:
        print(f"{folder}: {len(dataset)} images, input mode '{mode}'")
        print(cm.table(names))
    return 0
