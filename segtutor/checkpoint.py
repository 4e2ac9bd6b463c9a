"""Checkpoints: a plain dict of weights, config and class names, written atomically.

Introduced in `04_training.ipynb`. A checkpoint holds the model's weights, the optimizer's state,
the `TrainConfig` as a dict, how to rebuild the model, the class names and palette, the history
and every random state, so that `fit(..., resume_from=path)` continues a run exactly.

It is written with `save_checkpoint` (a temporary file, then a rename: a crash never leaves half
a file) and read with `load_checkpoint`, which uses `torch.load(weights_only=True)`: loading a
checkpoint never runs code from the file. That is why a checkpoint holds only plain data.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from segtutor.architectures import model_config, model_from_config
from segtutor.errors import CheckpointError

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "cpu_state",
    "load_checkpoint",
    "load_matching",
    "model_from_checkpoint",
    "random_state",
    "restore_random_state",
    "restore_training_state",
    "run_metadata",
    "save_checkpoint",
    "training_state",
]

CHECKPOINT_FORMAT = "segtutor-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, **fields: Any) -> Path:
    """Write a segtutor checkpoint atomically: a temporary file in the same folder, then a rename.

    A crash or Ctrl-C while writing leaves the previous checkpoint intact, never half a file.
    Fields must be plain data (tensors, dicts, lists, str, int, float, bool, None) so that
    `load_checkpoint` can read them with `weights_only=True`.

    Introduced in `04_training.ipynb`.

    Returns:
        The path written.
    """
    path = Path(path)
    checkpoint = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **fields}
    _check_plain(checkpoint, "checkpoint")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _check_plain(value: Any, where: str) -> None:
    """Raise TypeError naming the field that `torch.load(weights_only=True)` would refuse."""
    if isinstance(value, np.generic):  # np.float64 is a float, but does not load weights_only
        raise TypeError(f"{where} is a numpy.{type(value).__name__}; convert it with .item()")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, (torch.Tensor, str, int, float, bool, type(None))):
        raise TypeError(
            f"{where} is a {type(value).__module__}.{type(value).__name__}; a checkpoint holds "
            "only tensors, dicts, lists, str, int, float, bool and None (convert it first, "
            "e.g. float(x), x.tolist(), dataclasses.asdict(x))"
        )


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by `save_checkpoint`/`fit`, with `torch.load(weights_only=True)`.

    Introduced in `04_training.ipynb`.

    Raises:
        CheckpointError: the file is missing, damaged (e.g. truncated), or not a segtutor
            checkpoint (a plain state_dict, a pickled model, ...); the message says what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no such checkpoint file. Check the path, or train one first "
            "(python -m segtutor train, or fit with TrainConfig(checkpoint_path=...))."
        )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for damaged files
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if "weights only load failed" in str(error).lower():
            raise CheckpointError(
                f"{path}: not a segtutor checkpoint: it holds pickled Python objects (such as a "
                "whole model) that segtutor refuses to load, because unpickling can run code. "
                "segtutor expects a plain dict written by segtutor.checkpoint.save_checkpoint. "
                "If you trust the file, load it yourself and save its state_dict() instead."
            ) from error
        raise CheckpointError(
            f"{path}: cannot read this checkpoint: the file is damaged or incomplete (was "
            "training or a copy interrupted while it was written?). Use another checkpoint or "
            f"train again. ({type(error).__name__}: {first_line})"
        ) from error
    _check_format(path, checkpoint)
    return checkpoint


def _check_format(path: Path, checkpoint: Any) -> None:
    expected = (
        "segtutor expects a dict with format='segtutor-checkpoint' written by "
        "segtutor.checkpoint.save_checkpoint (fit writes one when TrainConfig.checkpoint_path "
        "is set)."
    )
    if not isinstance(checkpoint, dict):
        raise CheckpointError(
            f"{path}: not a segtutor checkpoint: it holds a {type(checkpoint).__name__}. {expected}"
        )
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        if checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
            first = next(iter(checkpoint))
            raise CheckpointError(
                f"{path}: not a segtutor checkpoint: it is a plain state_dict ({len(checkpoint)} "
                f"tensors, e.g. {first!r}), weights without the config and class names. "
                f"{expected} To use these weights, build the model and call "
                "model.load_state_dict(torch.load(path, weights_only=True))."
            )
        keys = ", ".join(repr(k) for k in list(checkpoint)[:6])
        raise CheckpointError(
            f"{path}: not a segtutor checkpoint: a dict with keys {keys}. {expected}"
        )
    version = checkpoint.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {version!r} is newer than this segtutor reads "
            f"({CHECKPOINT_VERSION}); upgrade segtutor."
        )


def model_from_checkpoint(checkpoint: str | os.PathLike | Mapping[str, Any]) -> nn.Module:
    """Rebuild the model a checkpoint was trained with, weights loaded, in eval mode.

    Introduced in `04_training.ipynb`. Any model of `segtutor.architectures.MODELS`: the
    checkpoint's `model_config` names it (a checkpoint without a name holds a `UNet`). Never
    downloads anything: the weights, pretrained ones included, are in the checkpoint.
    """
    if not isinstance(checkpoint, Mapping):
        checkpoint = load_checkpoint(checkpoint)
    if checkpoint.get("model_config") is None:
        raise CheckpointError(
            "this checkpoint does not say how to build its model (model_config is None: it was "
            "trained with a model segtutor did not build). Build that model yourself and "
            "call model.load_state_dict(checkpoint['model_state'])."
        )
    try:
        model = model_from_config(checkpoint["model_config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"cannot rebuild this checkpoint's model ({checkpoint['model_config']}): {error}. "
            "Was it written by a newer segtutor? Upgrade segtutor."
        ) from error
    model.load_state_dict(checkpoint["model_state"])
    return model.eval()


def load_matching(
    model: nn.Module, state: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str]]:
    """Copy every tensor of `state` whose name and shape fit `model`: `(reused, fresh)` names.

    Introduced in `08_relatives.ipynb` (starting a run from another run's checkpoint,
    `RecipeOptions.init_from`). A model with another class count keeps its own new head (the
    `fresh` names, e.g. `outc.conv.weight`); everything else starts where the other run ended.
    """
    own = model.state_dict()
    fitting = {
        name: value
        for name, value in state.items()
        if name in own and tuple(own[name].shape) == tuple(value.shape)
    }
    model.load_state_dict(fitting, strict=False)
    return list(fitting), [name for name in own if name not in fitting]


# --- what fit stores besides the weights ------------------------------------------------------


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the weights (contiguous, so it loads into any memory layout).

    Introduced in `04_training.ipynb`: `fit` keeps the best epoch's weights this way.
    """
    return {
        name: value.detach().to("cpu", memory_format=torch.contiguous_format, copy=True)
        for name, value in model.state_dict().items()
    }


def run_metadata(model: nn.Module, loader: DataLoader, config: Any) -> dict[str, Any]:
    """The checkpoint fields that describe a run: config, how to rebuild the model, classes.

    `model_config` is `segtutor.architectures.model_config(model)`: the architecture's name and
    arguments (None for a model segtutor did not build).

    `config` is a dataclass (a `TrainConfig`); the class names and palette are looked up on the
    loader's dataset (through `Subset`s).

    Introduced in `04_training.ipynb`.
    """
    dataset = loader.dataset
    while not hasattr(dataset, "class_names") and hasattr(dataset, "dataset"):
        dataset = dataset.dataset  # look through torch.utils.data.Subset
    palette = getattr(dataset, "palette", None)
    class_names = getattr(dataset, "class_names", None)
    return {
        "config": asdict(config),
        "model_config": model_config(model),
        "class_names": [str(n) for n in class_names] if class_names is not None else None,
        "palette": [[int(c) for c in color] for color in palette] if palette is not None else None,
    }


def random_state(loader: DataLoader) -> dict[str, Any]:
    """Every random state a resumed run needs to repeat the uninterrupted run exactly.

    Python's, numpy's, torch's (CPU and CUDA) and the shuffling generator of `loader`, as plain
    data for a checkpoint; `restore_random_state` puts them back.

    Introduced in `04_training.ipynb`.
    """
    version, python_state, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": {"version": version, "state": list(python_state), "gauss": gauss},
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": loader.generator.get_state() if loader.generator is not None else None,
    }


def restore_random_state(state: Mapping[str, Any], loader: DataLoader) -> None:
    """Put back what `random_state` captured (the parts present; older checkpoints lack some).

    Introduced in `04_training.ipynb`.
    """
    if "python" in state:
        py = state["python"]
        random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    if "numpy" in state:
        npy = state["numpy"]
        np.random.set_state(
            (
                "MT19937",
                npy["keys"].numpy().astype(np.uint32),
                npy["pos"],
                npy["has_gauss"],
                npy["cached"],
            )
        )
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if state.get("loader") is not None and loader.generator is not None:
        loader.generator.set_state(state["loader"])


def training_state(
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    loader: DataLoader,
    *,
    step: int,
    elapsed_s: float,
) -> dict[str, Any]:
    """What a resumed run needs besides the weights and the history, as checkpoint fields.

    The optimizer's state, the position in the lr schedule (`step`, and `elapsed_s` for a time
    budget), the gradient scaler's state and every random state.

    Introduced in `04_training.ipynb`.
    """
    return {
        "optimizer_state": optimizer.state_dict(),
        "scheduler_state": {"step": step, "elapsed_s": elapsed_s},
        "scaler_state": scaler.state_dict() if scaler.is_enabled() else None,
        "rng_state": random_state(loader),
    }


def restore_training_state(
    checkpoint: Mapping[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    loader: DataLoader,
) -> tuple[int, float]:
    """Put a checkpoint's weights, optimizer, scaler and random states back: `(step, elapsed_s)`.

    Introduced in `04_training.ipynb`.

    Raises:
        CheckpointError: the weights or the optimizer state do not fit `model` / `optimizer`.
    """
    try:
        model.load_state_dict(checkpoint["model_state"])
        optimizer.load_state_dict(checkpoint["optimizer_state"])
    except (KeyError, RuntimeError, ValueError) as error:
        raise CheckpointError(
            f"cannot resume: the checkpoint's weights do not fit this model or optimizer "
            f"(model_config {checkpoint.get('model_config')}): {str(error).splitlines()[0]}"
        ) from error
    if checkpoint.get("scaler_state") and scaler.is_enabled():
        scaler.load_state_dict(checkpoint["scaler_state"])
    restore_random_state(checkpoint.get("rng_state") or {}, loader)
    schedule = checkpoint.get("scheduler_state") or {}
    return int(schedule.get("step", 0)), float(schedule.get("elapsed_s", 0.0))
