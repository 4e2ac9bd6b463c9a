"""The pipelines benchmarks/compare.py runs, each in its own child process, and what they return.

1. `segtutor`: what `python -m segtutor train --data D --time-budget S` runs, its defaults,
   whatever they are today: `segtutor.recipe.prepare`, then `fit` watched by a `FitRecorder`
   callback, then `evaluate`, as the command does.
2. `tutorial`: the source tutorial's code as it writes it (`tutorial.py`), masks fixed.
3. `smp`: `segmentation_models_pytorch.Unet("resnet18", encoder_weights=None)`, fed, trained and
   scored exactly as 2 (only the model differs).

`child_run` trains one of them on a dataset for a time budget and scores it; `child_throughput`
times a few training steps of one loop and model on the bundled scenes.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import torch
from measure import FitRecorder, evaluate_tutorial, mask_sizes, matmul_flops_per_s, step_rate
from torch import nn
from tutorial import (
    TUTORIAL_BATCH,
    TUTORIAL_SIZE,
    UNet,
    train_tutorial,
    tutorial_datasets,
    tutorial_train_loader,
)

from segtutor.formats import read_metadata
from segtutor.jsonio import json_ready
from segtutor.model import UNet as SegtutorUNet
from segtutor.model import count_flops, count_parameters
from segtutor.recipe import prepare
from segtutor.runtime import seed_everything
from segtutor.train import evaluate

__all__ = [
    "BUNDLED",
    "PIPELINES",
    "THROUGHPUT",
    "build_model",
    "child_run",
    "child_throughput",
    "run_peer",
    "run_segtutor",
    "segtutor_command",
    "segtutor_loop_steps",
    "tutorial_loop_steps",
]

PIPELINES = ("segtutor", "tutorial", "smp")
BUNDLED = {"scenes": "data_samples/scenes", "cells": "data_samples/cells"}
THROUGHPUT = {
    # name: (loop, model); the data is the bundled scenes (128x128 images), batches of 8
    "tutorial loop, tutorial U-Net": ("tutorial", "tutorial-unet"),
    "segtutor loop, tutorial U-Net": ("segtutor", "tutorial-unet"),
    "segtutor loop, 'full' preset": ("segtutor", "full"),
    "segtutor defaults": ("segtutor", "default"),
}


def build_model(pipeline: str, num_classes: int) -> nn.Module:
    """The model of pipeline 2 ("tutorial") or 3 ("smp"); smp is imported only here."""
    if pipeline == "tutorial":
        return UNet(n_channels=3, n_classes=num_classes)  # as the tutorial instantiates it
    if pipeline == "smp":
        try:
            import segmentation_models_pytorch as smp
        except ImportError as error:
            raise SystemExit(
                "the smp pipeline needs segmentation_models_pytorch: "
                ".venv/bin/pip install -r benchmarks/requirements.txt "
                "(or leave it out: --pipelines segtutor,tutorial)"
            ) from error
        return smp.Unet("resnet18", encoder_weights=None, in_channels=3, classes=num_classes)
    raise ValueError(f"unknown pipeline {pipeline!r}")


def segtutor_command(data: str, extra: Sequence[str] = ()) -> str:
    """The train command that runs what `prepare(data, ...)` with the same choices prepares."""
    return " ".join(["python -m segtutor train --data", data, "--quiet --out TMP", *extra])


def child_run(spec: dict[str, Any]) -> dict[str, Any]:
    """One (pipeline, dataset, budget) run; returns its numbers."""
    pipeline, data, budget = spec["pipeline"], spec["data"], float(spec["budget_s"])
    if pipeline == "segtutor":
        return run_segtutor(data, budget)
    return run_peer(pipeline, data, budget)


def run_segtutor(data: str, budget: float) -> dict[str, Any]:
    """Pipeline 1: the train command's recipe and `fit`, for `budget` seconds, then `evaluate`."""
    recorder = FitRecorder()
    with tempfile.TemporaryDirectory() as out:  # the command writes its checkpoints too
        run = prepare(data, time_budget_s=budget, progress=False, run_dir=out)
        history = recorder.fit(run)
        cm = evaluate(
            run.model, run.val_loader, run.num_classes, ignore_index=run.config.ignore_index
        )
    metrics = cm.to_dict(run.class_names)
    steps, images, train_s = recorder.training()
    return {
        "command": segtutor_command(data, ["--time-budget", str(budget)]),
        "miou": metrics["miou"],
        "miou_last_epoch": json_ready(history.val_miou[-1]),
        "per_class_iou": {c["class"]: c["iou"] for c in metrics["per_class"]},
        "pixel_accuracy": metrics["pixel_accuracy"],
        "epochs": len(history),
        "best_epoch": history.best_epoch,
        "steps": steps,
        "train_images": images,
        "train_s": train_s,
        "fit_s": recorder.fit_end - recorder.fit_start,
        "images_per_s": images / train_s if train_s > 0 else math.nan,
        "params": count_parameters(run.model),
        "input_size": run.config.input_size,
        "input_mode": run.config.input_mode,
        "batch_size": run.train_loader.batch_size,
    }


def run_peer(pipeline: str, data: str, budget: float) -> dict[str, Any]:
    """Pipeline 2 or 3: the tutorial's data and loop for `budget` seconds, then scored."""
    train_set, val_set, num_classes = tutorial_datasets(data)
    seed_everything(0)
    model = build_model(pipeline, num_classes)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # as the tutorial does
    model.to(device)
    stats = train_tutorial(model, tutorial_train_loader(train_set), budget_s=budget)
    eval_start = time.monotonic()
    batch = 1 if len(mask_sizes(val_set)) > 1 else TUTORIAL_BATCH
    cm = evaluate_tutorial(model, val_set, num_classes, batch_size=batch)
    names = read_metadata(data).class_names or [f"class_{k}" for k in range(num_classes)]
    miou = cm.miou()
    return {
        "miou": None if math.isnan(miou) else miou,
        "miou_last_epoch": None if math.isnan(miou) else miou,
        "per_class_iou": {
            n: (None if math.isnan(v) else v) for n, v in zip(names, cm.iou().tolist(), strict=True)
        },
        "pixel_accuracy": cm.pixel_accuracy(),
        "epochs": stats["epochs"],
        "steps": stats["steps"],
        "train_images": stats["images"],
        "train_s": stats["train_s"],
        "fit_s": stats["train_s"],
        "eval_s": time.monotonic() - eval_start,
        "images_per_s": stats["images"] / stats["train_s"],
        "params": count_parameters(model),
        "input_size": TUTORIAL_SIZE,
        "input_mode": "resize",
        "batch_size": TUTORIAL_BATCH,
        "final_loss": stats["final_loss"],
    }


def child_throughput(spec: dict[str, Any]) -> dict[str, Any]:
    """Training images/s of one loop and model, and its share of the matmul FLOP/s."""
    loop, model_name = THROUGHPUT[spec["name"]]
    warmup, timed = int(spec["warmup"]), int(spec["timed"])
    matmul = matmul_flops_per_s(int(spec["matmul_n"]))
    steps = warmup + timed + 1
    if loop == "tutorial":
        model, step_ends, batch, size, command = tutorial_loop_steps(steps)
    else:
        model, step_ends, batch, size, command = segtutor_loop_steps(model_name, steps)
    rate = step_rate(step_ends, batch, warmup)
    flops = count_flops(model, (1, 3, size, size))
    train_flops = 3 * flops * rate["images_per_s"]  # backward costs about twice the forward
    return {
        "name": spec["name"],
        "loop": loop,
        "model": model_name,
        "command": command,
        "params": count_parameters(model),
        "input_size": size,
        "batch_size": batch,
        "forward_flops_per_image": flops,
        **rate,
        "train_flops_per_s": train_flops,
        "matmul_n": int(spec["matmul_n"]),
        "matmul_flops_per_s": matmul,
        "efficiency": train_flops / matmul,
    }


def tutorial_loop_steps(steps: int) -> tuple[nn.Module, list, int, int, str]:
    """`steps` steps of the tutorial's loop and U-Net on the scenes.

    Returns:
        `(model, step_ends, batch_size, input_size, command)`.
    """
    train_set, _, num_classes = tutorial_datasets(BUNDLED["scenes"])
    seed_everything(0)
    model = build_model("tutorial", num_classes)
    stats = train_tutorial(model, tutorial_train_loader(train_set), max_steps=steps)
    command = "TutorialDataset + UNet(3, K) + Adam(1e-4), batch 8, 128x128, 4 workers"
    return model, stats["step_ends"], TUTORIAL_BATCH, TUTORIAL_SIZE, command


def segtutor_loop_steps(model_name: str, steps: int) -> tuple[nn.Module, list, int, int, str]:
    """`steps` steps of segtutor's `fit` on the scenes: its defaults (`model_name` "default"),
    or the tutorial's size and batch with the "full" preset or the tutorial's network.

    Returns:
        `(model, step_ends, batch_size, input_size, command)`.
    """
    data = BUNDLED["scenes"]
    extra: list[str] = ["--epochs", "1000"]  # stopped after the timed steps
    choices: dict[str, Any] = {"num_epochs": 1000}
    if model_name != "default":
        extra += ["--size", str(TUTORIAL_SIZE), "--batch-size", str(TUTORIAL_BATCH)]
        choices.update(input_size=TUTORIAL_SIZE, batch_size=TUTORIAL_BATCH)
    if model_name == "full":
        extra += ["--preset", "full"]
        choices.update(preset="full")
    recorder = FitRecorder(stop_after=steps)
    with tempfile.TemporaryDirectory() as out:
        run = prepare(data, progress=False, run_dir=out, **choices)
        model = run.model
        command = segtutor_command(data, extra)
        if model_name == "tutorial-unet":  # the tutorial's network in segtutor's loop
            seed_everything(0)
            model = SegtutorUNet(3, run.num_classes, base_width=64, depth=4, bilinear=True)
            command += "  (model: segtutor UNet(base_width=64, depth=4, bilinear=True))"
        with contextlib.suppress(FitRecorder.Done):
            recorder.fit(run, model)
    return model, recorder.step_ends, run.train_loader.batch_size, run.config.input_size, command
