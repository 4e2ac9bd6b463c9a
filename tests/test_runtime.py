"""Tests for segtutor.runtime: seeds, devices, the mixed-precision type."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn

import segtutor.runtime
from segtutor.runtime import autocast_dtype, choose_device, model_device, seed_everything


def test_seed_everything_repeats_python_numpy_and_torch():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    seed_everything(3)
    first = draw()
    seed_everything(3)
    assert draw() == first
    seed_everything(4)
    assert draw() != first


def test_autocast_only_where_it_pays(monkeypatch):
    assert autocast_dtype(torch.device("cuda")) == torch.float16
    monkeypatch.setattr(segtutor.runtime, "cpu_has_native_bf16", lambda: False)
    assert autocast_dtype(torch.device("cpu")) is None  # emulated bf16: slower than float32
    monkeypatch.setattr(segtutor.runtime, "cpu_has_native_bf16", lambda: True)
    assert autocast_dtype(torch.device("cpu")) == torch.bfloat16
    assert autocast_dtype(torch.device("mps")) is None


def test_choose_device():
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device().type in {"cuda", "mps", "cpu"}


def test_model_device():
    assert model_device(nn.Conv2d(3, 2, 1)) == torch.device("cpu")
    assert model_device(nn.ReLU()) == torch.device("cpu")  # no parameters: the CPU
