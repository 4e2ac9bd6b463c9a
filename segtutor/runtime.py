"""Where and how training runs: seeds, the device, and the mixed-precision type.

Introduced in `04_training.ipynb`. `fit` calls these at its start; notebooks and commands call
them too, so that a run is repeatable (same seed, same numbers on a CPU) and no device is
hard-coded (a laptop without a GPU runs the same code).
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn

from segtutor.distributed import is_distributed

__all__ = [
    "autocast_dtype",
    "choose_device",
    "cpu_has_native_bf16",
    "model_device",
    "seed_everything",
]


def seed_everything(seed: int) -> None:
    """Seed python's `random`, numpy and torch (all devices), so a CPU run repeats exactly.

    Introduced in `04_training.ipynb`.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def choose_device(preferred: str = "auto") -> torch.device:
    """The device to train on: `preferred` if named, else CUDA, then Apple's MPS, then the CPU.

    Under torchrun, "auto" is this process's own GPU (`cuda:LOCAL_RANK`, made current by
    `segtutor.distributed.init_distributed`), or the CPU: gloo cannot exchange MPS tensors.

    Introduced in `04_training.ipynb`.
    """
    if preferred != "auto":
        return torch.device(preferred)
    if torch.cuda.is_available():
        if is_distributed():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cuda")
    if torch.backends.mps.is_available() and not is_distributed():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision type `fit` uses on `device` with `TrainConfig.amp`, or None for none.

    float16 on CUDA; bfloat16 on a CPU that computes it natively (AVX512-BF16 or AMX, e.g. Intel
    Xeon since Cooper Lake, AMD Zen 4); None on other CPUs, where bf16 is emulated and slower
    than float32, and on MPS.

    Introduced in `04_training.ipynb`.
    """
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def cpu_has_native_bf16() -> bool:
    """True on a CPU with AVX512-BF16 or AMX instructions (torch's own probes).

    Introduced in `04_training.ipynb`.
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private torch.cpu probes
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without parameters).

    Introduced in `04_training.ipynb`: `train_one_epoch` and `predict` send each batch there.
    """
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
