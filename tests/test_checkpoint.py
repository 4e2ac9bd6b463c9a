"""Tests for segtutor.checkpoint: atomic writes, weights_only loading, clear errors, random states.

(What `fit` writes into checkpoints, and resuming from them, is tested in test_train.py.)"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from segtutor.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    cpu_state,
    load_checkpoint,
    load_matching,
    model_from_checkpoint,
    random_state,
    restore_random_state,
    run_metadata,
    save_checkpoint,
)
from segtutor.errors import CheckpointError


def test_save_and_load_round_trip(tmp_path):
    path = tmp_path / "runs" / "best.pt"
    weights = nn.Conv2d(3, 2, 1).state_dict()
    assert save_checkpoint(path, model_state=weights, epoch=3, names=["a", "b"]) == path
    checkpoint = load_checkpoint(path)
    assert (checkpoint["format"], checkpoint["version"]) == (CHECKPOINT_FORMAT, CHECKPOINT_VERSION)
    assert checkpoint["epoch"] == 3 and checkpoint["names"] == ["a", "b"]
    torch.testing.assert_close(checkpoint["model_state"]["weight"], weights["weight"])
    assert [p.name for p in path.parent.iterdir()] == ["best.pt"]  # no temporary files left


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "best.pt"
    save_checkpoint(path, epoch=1)

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, epoch=2)
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1


def test_save_checkpoint_refuses_what_weights_only_cannot_load(tmp_path):
    with pytest.raises(TypeError, match=r"checkpoint\['score'\] is a numpy.float64"):
        save_checkpoint(tmp_path / "x.pt", score=np.float64(0.5))
    with pytest.raises(TypeError, match=r"checkpoint\['where'\] is a pathlib"):
        save_checkpoint(tmp_path / "x.pt", where=tmp_path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.parametrize("damage", ["truncate", "empty", "text"])
def test_corrupt_checkpoint(tmp_path, damage):
    path = tmp_path / "best.pt"
    save_checkpoint(path, model_state=nn.Linear(20, 20).state_dict(), epoch=3)
    data = path.read_bytes()
    path.write_bytes(
        {"truncate": data[: len(data) // 2], "empty": b"", "text": b"hello, not a checkpoint"}[
            damage
        ]
    )
    with pytest.raises(CheckpointError, match="damaged or incomplete") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_foreign_checkpoints_are_named(tmp_path):
    state_dict_path = tmp_path / "weights.pth"
    torch.save(nn.Conv2d(3, 2, 1).state_dict(), state_dict_path)
    with pytest.raises(CheckpointError, match=r"plain state_dict \(2 tensors, e.g. 'weight'\)"):
        load_checkpoint(state_dict_path)

    pickled_model = tmp_path / "model.pt"
    torch.save(nn.Conv2d(3, 2, 1), pickled_model)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(pickled_model)

    other_dict = tmp_path / "other.pt"
    torch.save({"net": 1, "epoch": 2}, other_dict)
    with pytest.raises(CheckpointError, match="a dict with keys 'net', 'epoch'"):
        load_checkpoint(other_dict)

    a_list = tmp_path / "list.pt"
    torch.save([1, 2], a_list)
    with pytest.raises(CheckpointError, match="holds a list"):
        load_checkpoint(a_list)


def test_newer_version_is_refused(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION + 1}, path)
    with pytest.raises(CheckpointError, match="newer than this segtutor reads"):
        load_checkpoint(path)


def test_model_from_checkpoint_needs_a_model_config():
    with pytest.raises(CheckpointError, match="does not say how to build its model"):
        model_from_checkpoint({"model_config": None, "model_state": {}})


def test_cpu_state_is_a_detached_contiguous_copy():
    model = nn.Conv2d(3, 2, 3).to(memory_format=torch.channels_last)
    state = cpu_state(model)
    assert all(t.is_contiguous() and not t.requires_grad for t in state.values())
    with torch.no_grad():
        model.weight.add_(1)  # the copy does not follow the model
    assert not torch.equal(state["weight"], model.weight)


def test_random_state_round_trips_through_a_checkpoint(tmp_path):
    loader = DataLoader(
        TensorDataset(torch.arange(10)),
        batch_size=2,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )

    def draws():
        order = [int(x) for (batch,) in loader for x in batch]
        return random.random(), float(np.random.rand()), float(torch.rand(())), order

    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    save_checkpoint(tmp_path / "rng.pt", rng_state=random_state(loader))
    expected = draws()
    assert draws() != expected  # the states moved on
    restore_random_state(load_checkpoint(tmp_path / "rng.pt")["rng_state"], loader)
    assert draws() == expected


@dataclass
class _Config:
    lr: float = 0.1


class _Named(TensorDataset):
    class_names = ["background", "disc"]
    palette = [(0, 0, 0), (230, 159, 0)]


def test_run_metadata_is_plain_and_looks_through_subsets():
    from segtutor.model import UNet

    dataset = torch.utils.data.Subset(_Named(torch.zeros(4, 1)), [0, 1])
    meta = run_metadata(UNet(num_classes=2, base_width=4, depth=2), DataLoader(dataset), _Config())
    assert meta["config"] == {"lr": 0.1}
    assert meta["model_config"]["num_classes"] == 2 and meta["model_config"]["depth"] == 2
    assert meta["model_config"]["name"] == "unet"
    assert meta["class_names"] == ["background", "disc"]
    assert meta["palette"] == [[0, 0, 0], [230, 159, 0]]
    assert (
        run_metadata(nn.Conv2d(3, 2, 1), DataLoader(TensorDataset(torch.zeros(2))), _Config())[
            "model_config"
        ]
        is None
    )  # not a UNet: nothing to rebuild


def test_model_from_checkpoint_rebuilds_any_architecture(tmp_path):
    from segtutor.architectures import TorchvisionSegmenter, build_model, model_config

    torch.manual_seed(0)
    model = build_model("lraspp-mobilenetv3", num_classes=3).eval()
    path = save_checkpoint(
        tmp_path / "lraspp.pt", model_state=model.state_dict(), model_config=model_config(model)
    )
    assert load_checkpoint(path)["model_config"] == {
        "name": "lraspp-mobilenetv3",
        "num_classes": 3,
        "deep_supervision": False,
    }
    rebuilt = model_from_checkpoint(path)
    assert isinstance(rebuilt, TorchvisionSegmenter) and not rebuilt.training
    images = torch.randn(1, 3, 40, 56)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(images), model(images))


def test_a_model_config_this_segtutor_cannot_build_is_a_checkpoint_error():
    with pytest.raises(CheckpointError, match="cannot rebuild.*unet-vgg"):
        model_from_checkpoint({"model_config": {"name": "unet-vgg", "num_classes": 2},
                               "model_state": {}})  # fmt: skip


def test_load_matching_keeps_what_fits_and_names_the_new_head():
    from segtutor.model import UNet

    torch.manual_seed(0)
    four = UNet(num_classes=4, base_width=4, depth=2)
    two = UNet(num_classes=2, base_width=4, depth=2)
    reused, fresh = load_matching(two, four.state_dict())
    assert fresh == ["outc.conv.weight", "outc.conv.bias"]
    assert len(reused) == len(four.state_dict()) - 2
    torch.testing.assert_close(two.inc.double_conv[0].weight, four.inc.double_conv[0].weight)
    torch.testing.assert_close(two.ups[-1].conv.double_conv[3].weight,
                               four.ups[-1].conv.double_conv[3].weight)  # fmt: skip
    assert not torch.equal(two.outc.conv.weight[:2], four.outc.conv.weight[:2])
