"""The pipelines benchmarks/compare.py runs, each in its own child process, and what they return.

1. `segtutor`: what `python -m segtutor train --data D --time-budget S` runs, its defaults,
   whatever they are today: `segtutor.recipe.prepare`, then `fit` watched by a `FitRecorder`
   callback, then `evaluate`, as the command does.
2. `tutorial`: the source tutorial's code as it writes it (`tutorial.py`), masks fixed.
3. `smp`, `lraspp`, `deeplabv3`: library models at their own best settings (`peers.py`: decoded
   once, fed from memory, a learning rate picked per dataset).

`child_run` trains one of them on a dataset for a time budget and scores it; `child_throughput`
times a few training steps of one loop and model on the bundled scenes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import torch
from measure import FitRecorder, evaluate_tutorial, mask_sizes, matmul_flops_per_s, step_rate
from peers import PEERS, run_fast_peer
from torch import nn
from tutorial import (
    TUTORIAL_BATCH,
    TUTORIAL_LR,
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
from segtutor.runtime import choose_device, seed_everything
from segtutor.train import evaluate

__all__ = [
    "BUNDLED",
    "PIPELINES",
    "RUN_FACTS",
    "THROUGHPUT",
    "child_run",
    "child_throughput",
    "run_segtutor",
    "run_tutorial",
    "segtutor_command",
    "segtutor_loop_steps",
    "tutorial_loop_steps",
]

PIPELINES = ("segtutor", "tutorial", *PEERS)
BUNDLED = {"scenes": "data_samples/scenes", "cells": "data_samples/cells"}
THROUGHPUT = {
    # name: (loop, model); the data is the bundled scenes (128x128 images), batches of 8
    "tutorial loop, tutorial U-Net": ("tutorial", "tutorial-unet"),
    "segtutor loop, tutorial U-Net": ("segtutor", "tutorial-unet"),
    "segtutor loop, 'full' preset": ("segtutor", "full"),
    "segtutor defaults": ("segtutor", "default"),
}


# What segtutor's recipe chose, recorded when the `Run` (or else its `TrainConfig`) has it:
# getattr with a default, because the recipe decides what exists; the benchmark writes it down.
RUN_FACTS = ("working_scale", "val_share", "amp", "channels_last", "crop_size", "precision")


def segtutor_command(data: str, extra: Sequence[str] = ()) -> str:
    """The train command that runs what `prepare(data, ...)` with the same choices prepares."""
    return " ".join(["python -m segtutor train --data", data, "--quiet --out TMP", *extra])


def child_run(spec: dict[str, Any]) -> dict[str, Any]:
    """One (pipeline, dataset, budget) run; returns its numbers."""
    pipeline, data, budget = spec["pipeline"], spec["data"], float(spec["budget_s"])
    device, seed = spec.get("device", "auto"), int(spec.get("seed", 0))
    if pipeline == "segtutor":
        return run_segtutor(data, budget, device, model=spec.get("model", "unet"), seed=seed)
    if pipeline == "tutorial":
        return run_tutorial(data, budget, device)
    if pipeline in PEERS:
        return run_fast_peer(
            pipeline,
            data,
            budget,
            lr=float(spec["lr"]),
            device=device,
            curve_every=spec.get("curve_every"),
            seed=seed,
        )
    raise ValueError(f"unknown pipeline {pipeline!r}; choose from {PIPELINES}")


def run_segtutor(
    data: str, budget: float, device: str = "auto", model: str = "unet", seed: int = 0
) -> dict[str, Any]:
    """Pipeline 1: the train command's recipe and `fit`, for `budget` seconds, then `evaluate`.

    What the recipe chose is recorded: `describe()`, the input size and mode, any of
    `RUN_FACTS` the `Run` or its config has, and how `fit` validated and why it stopped.
    `model` is a name of `segtutor.architectures.MODELS` (`--model`; benchmarks/relatives.py
    runs each), the recipe's other choices unchanged; `seed` its `--seed` (benchmarks/seeds.py).
    """
    recorder = FitRecorder()
    choices = {} if model == "unet" else {"model": model}
    with tempfile.TemporaryDirectory() as out:  # the command writes its checkpoints too
        run = prepare(
            data,
            time_budget_s=budget,
            progress=False,
            run_dir=out,
            device=device,
            seed=seed,
            **choices,
        )
        history = recorder.fit(run)
        cm = evaluate(
            run.model, run.val_loader, run.num_classes, ignore_index=run.config.ignore_index
        )
    metrics = cm.to_dict(run.class_names)
    steps, images, train_s = recorder.training()
    extra = ["--time-budget", str(budget)] + ([] if device == "auto" else ["--device", device])
    extra += ([] if model == "unet" else ["--model", model]) + (
        ["--seed", str(seed)] if seed else []
    )
    size = run.config.input_size
    return {
        "command": segtutor_command(data, extra),
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
        "flops_per_image": count_flops(run.model.cpu(), (1, 3, size, size)),
        "input_size": run.config.input_size,
        "input_mode": run.config.input_mode,
        "batch_size": run.train_loader.batch_size,
        # without the "; run folder: ..." part: a temporary folder, and no path belongs in the docs
        "describe": run.describe().split("; run folder:")[0],
        **{name: _plain(getattr(run, name, getattr(run.config, name, None))) for name in RUN_FACTS},
        "stop_reason": getattr(history, "stop_reason", None),
        "validation": getattr(history, "validation", None),
        "speed": _plain(getattr(history, "speed", None)),  # what the timed choice picked
    }


def _plain(value: Any) -> Any:
    """`value` as JSON can hold it: dataclasses as dicts, anything else unknown as its str."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    try:
        json.dumps(json_ready(value))
        return json_ready(value)
    except (TypeError, ValueError):
        return str(value)


def run_tutorial(data: str, budget: float, device: str = "auto") -> dict[str, Any]:
    """Pipeline 2: the tutorial's data and loop for `budget` seconds, then scored.

    The tutorial moves its model to CUDA when there is one; `device` ("auto": the same) decides.
    """
    train_set, val_set, num_classes = tutorial_datasets(data)
    seed_everything(0)
    model = UNet(n_channels=3, n_classes=num_classes)  # as the tutorial instantiates it
    model.to(choose_device(device))
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
        "lr": TUTORIAL_LR,
        "final_loss": stats["final_loss"],
    }


def child_throughput(spec: dict[str, Any]) -> dict[str, Any]:
    """Training images/s of one loop and model, and its share of the matmul FLOP/s."""
    loop, model_name = THROUGHPUT[spec["name"]]
    warmup, timed = int(spec["warmup"]), int(spec["timed"])
    device = choose_device(spec.get("device", "auto"))
    matmul = matmul_flops_per_s(int(spec["matmul_n"]), device=device)
    steps = warmup + timed + 1
    if loop == "tutorial":
        model, step_ends, batch, size, command = tutorial_loop_steps(steps, device)
    else:
        model, step_ends, batch, size, command = segtutor_loop_steps(model_name, steps, device)
    rate = step_rate(step_ends, batch, warmup)
    flops = count_flops(model.cpu(), (1, 3, size, size))  # counted, not timed: any device
    train_flops = 3 * flops * rate["images_per_s"]  # backward costs about twice the forward
    return {
        "name": spec["name"],
        "device": str(device),
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


def tutorial_loop_steps(
    steps: int, device: torch.device | None = None
) -> tuple[nn.Module, list, int, int, str]:
    """`steps` steps of the tutorial's loop and U-Net on the scenes.

    Returns:
        `(model, step_ends, batch_size, input_size, command)`.
    """
    train_set, _, num_classes = tutorial_datasets(BUNDLED["scenes"])
    seed_everything(0)
    model = UNet(n_channels=3, n_classes=num_classes).to(device or "cpu")
    stats = train_tutorial(model, tutorial_train_loader(train_set), max_steps=steps)
    command = "TutorialDataset + UNet(3, K) + Adam(1e-4), batch 8, 128x128, 4 workers"
    return model, stats["step_ends"], TUTORIAL_BATCH, TUTORIAL_SIZE, command


def segtutor_loop_steps(
    model_name: str, steps: int, device: torch.device | None = None
) -> tuple[nn.Module, list, int, int, str]:
    """`steps` steps of segtutor's `fit` on the scenes: its defaults (`model_name` "default"),
    or the tutorial's size and batch with the "full" preset or the tutorial's network.

    Returns:
        `(model, step_ends, batch_size, input_size, command)`.
    """
    data = BUNDLED["scenes"]
    extra: list[str] = ["--epochs", "1000"]  # stopped after the timed steps
    choices: dict[str, Any] = {"num_epochs": 1000, "device": str(device or "auto")}
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
