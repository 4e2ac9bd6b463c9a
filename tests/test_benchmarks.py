"""The tutorial baseline of benchmarks/compare.py: its mask fix, its model, its evaluation.

The benchmark's modules import each other as siblings (`python benchmarks/compare.py` puts
benchmarks/ first on `sys.path`); the fixtures do the same for the test process.

The benchmark's claims rest on these: the baseline trains on real labels (not the source's
all-zero masks), runs the same network segtutor runs in the throughput comparison, and scores
predictions exactly as `segtutor.train.evaluate` does. segmentation_models_pytorch is not needed.
"""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

from segtutor.data import load_splits
from segtutor.model import UNet as SegtutorUNet
from segtutor.model import build_unet, count_parameters
from segtutor.train import evaluate

ROOT = Path(__file__).resolve().parents[1]


def _import_benchmark(name: str):
    """benchmarks/<name>.py as the scripts import it, without leaving benchmarks/ on the path."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def tutorial():
    return _import_benchmark("tutorial")


@pytest.fixture(scope="module")
def measure():
    return _import_benchmark("measure")


def test_compare_runs_as_a_script_from_the_repository_root():
    result = subprocess.run(
        [sys.executable, "benchmarks/compare.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--render-only" in result.stdout and "--pipelines" in result.stdout


def test_fixed_masks_keep_their_labels_where_to_tensor_zeroes_them(tutorial):
    train_ds, _ = load_splits(ROOT / "data_samples" / "cells")
    paths = train_ds.image_paths[:4], train_ds.mask_paths[:4]
    fixed = tutorial.TutorialDataset(
        *paths, tutorial.tutorial_image_transform(), tutorial.tutorial_mask_transform()
    )
    masks = torch.stack([fixed[i][1] for i in range(4)])  # (4, 128, 128)
    assert masks.dtype == torch.int64 and masks.shape == (4, 128, 128)
    assert (masks == 1).sum() > 0  # cells are class 1

    # The source's mask transform: ToTensor divides by 255, so every label 1 becomes 0.
    source = transforms.Compose([tutorial.tutorial_mask_transform(), transforms.ToTensor()])
    for path in paths[1]:
        assert (source(Image.open(path).convert("L")).squeeze(0).long() == 0).all()


def test_tutorial_unet_is_segtutors_bilinear_unet(tutorial):
    theirs = tutorial.UNet(n_channels=3, n_classes=4)
    ours = SegtutorUNet(3, 4, base_width=64, depth=4, bilinear=True)
    assert count_parameters(theirs) == count_parameters(ours)
    shapes = sorted(tuple(p.shape) for p in theirs.parameters())
    assert shapes == sorted(tuple(p.shape) for p in ours.parameters())


def test_evaluation_matches_segtutor_evaluate(tutorial, measure):
    _, val_ds = load_splits(ROOT / "data_samples" / "scenes")
    # predicted at 64x64, scored against the 128x128 masks: exercises the resize back
    val_set = tutorial.TutorialDataset(
        val_ds.image_paths[:6], val_ds.mask_paths[:6], tutorial.tutorial_image_transform(64)
    )
    torch.manual_seed(0)
    model = build_unet("tiny", num_classes=4)
    with torch.no_grad():  # a random model predicts one class; nudge it to predict several
        model.outc.conv.bias.copy_(torch.tensor([0.0, 0.05, -0.05, 0.02]))
    ours = measure.evaluate_tutorial(model, val_set, num_classes=4, batch_size=3)
    reference = evaluate(model, DataLoader(val_set, batch_size=2), num_classes=4)
    torch.testing.assert_close(ours.matrix, reference.matrix)
    labelled = sum(int((val_set[i][1] != 255).sum()) for i in range(6))
    assert int(ours.matrix.sum()) == labelled  # every labelled pixel at the masks' 128x128
    assert ours.miou() == reference.miou()
