"""Tests for segtutor.inference.class_map: the same classes as `argmax` over the class axis, the
first class on ties, for every layout of logits it is given."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segtutor.inference import class_map, predict


@pytest.mark.parametrize("shape", [(2, 5, 7, 9), (4, 6, 3), (1, 1, 4, 4), (3, 2, 1, 1)])
def test_class_map_equals_argmax_on_random_logits(shape) -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(shape, generator=g)
    preds = class_map(logits)
    assert preds.dtype == torch.int64 and preds.shape == shape[:-3] + shape[-2:]
    assert torch.equal(preds, logits.argmax(dim=-3))


def test_ties_go_to_the_first_class() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randint(0, 3, (3, 6, 16, 16), generator=g).float()  # many ties
    first = torch.from_numpy(np.argmax(logits.numpy(), axis=1))  # numpy: the first maximum
    assert torch.equal(class_map(logits), first)
    assert torch.equal(class_map(logits), logits.argmax(dim=1))
    equal = torch.zeros(1, 4, 2, 2)
    assert class_map(equal).eq(0).all()
    equal[:, 1:] = 5.0
    assert class_map(equal).eq(1).all()


def test_class_map_of_channels_last_and_half_precision_logits() -> None:
    g = torch.Generator().manual_seed(2)
    logits = torch.randint(0, 4, (2, 5, 8, 8), generator=g).float()
    expected = torch.from_numpy(np.argmax(logits.numpy(), axis=1))
    assert torch.equal(class_map(logits.contiguous(memory_format=torch.channels_last)), expected)
    assert torch.equal(class_map(logits.to(torch.bfloat16)), expected)  # small integers: exact
    assert torch.equal(class_map(logits[:, :, ::2, 1::2]), expected[:, ::2, 1::2])


def test_predict_uses_the_first_class_on_ties() -> None:
    model = torch.nn.Conv2d(3, 3, kernel_size=1, bias=False)
    torch.nn.init.zeros_(model.weight)  # every logit 0: every pixel a tie
    preds = predict(model.eval(), torch.randn(2, 3, 8, 8))
    assert preds.shape == (2, 8, 8) and preds.eq(0).all()
