"""Tests for segtutor.synth, the make-samples command and the bundled data_samples/ it wrote."""

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segtutor import synth
from segtutor.commands import make_samples
from segtutor.settings import IGNORE_INDEX

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Each kind written twice, small, into two folders."""
    roots = []
    for name in ("a", "b"):
        root = tmp_path_factory.mktemp(name)
        for kind in synth.GENERATORS:
            synth.write_dataset(root / kind, kind, n_train=4, n_val=2, size=(64, 64), seed=3)
        roots.append(root)
    return roots


def test_generation_is_byte_for_byte_deterministic(tiny):
    first, second = tiny
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 2 * (2 * 6 + 2)  # per kind: 6 images, 6 masks, dataset.json, README.md
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_another_seed_gives_other_images(tmp_path):
    a = synth.make_scene(np.random.default_rng(0), (64, 64))[0]
    b = synth.make_scene(np.random.default_rng(1), (64, 64))[0]
    assert not np.array_equal(a, b)


def test_a_small_set_is_a_prefix_of_a_larger_one(tmp_path, tiny):
    synth.write_dataset(tmp_path, "cells", n_train=2, n_val=1, size=(64, 64), seed=3)
    for split, stem in (("train", "cell_0000"), ("train", "cell_0001")):
        for folder in ("images", "masks"):
            path = Path(split) / folder / f"{stem}.png"
            assert (tmp_path / path).read_bytes() == (tiny[0] / "cells" / path).read_bytes()
    # and the old, longer run's files are replaced, not left behind as extra samples
    synth.write_dataset(tmp_path, "cells", n_train=1, n_val=1, size=(64, 64), seed=3)
    assert len(list((tmp_path / "train" / "images").iterdir())) == 1


def test_a_split_may_be_empty(tmp_path):
    """A held-out set is a val split alone; its README gives 0% for the empty train split."""
    summary = synth.write_dataset(tmp_path, "scenes", n_train=0, n_val=2, size=(64, 64), seed=5)
    assert summary["counts"] == {"train": 0, "val": 2}
    assert len(list((tmp_path / "val" / "masks").iterdir())) == 2
    assert "| 0 | background | #000000 | 0.0% |" in (tmp_path / "README.md").read_text()


@pytest.mark.parametrize("kind", ["scenes", "cells"])
def test_generators_return_rgb_uint8_and_valid_masks(kind):
    image, mask = synth.GENERATORS[kind](np.random.default_rng(0), (48, 80))
    assert image.shape == (48, 80, 3) and image.dtype == np.uint8
    assert mask.shape == (48, 80) and mask.dtype == np.uint8
    num_classes = len(synth.DATASETS[kind]["class_names"])
    assert set(np.unique(mask).tolist()) <= set(range(num_classes)) | {IGNORE_INDEX}


def test_scene_ignore_band_is_thin():
    # 255 marks the pixels an edge cuts through: a 1-pixel line, never a blob.
    for seed in range(5):
        _, mask = synth.make_scene(np.random.default_rng(seed), (96, 96))
        ignored = mask == IGNORE_INDEX
        # A blob: a 3x3 block all ignored. (Where two edges cross, an X of five can occur.)
        blocks = np.ones_like(ignored[1:-1, 1:-1])
        for dy in range(3):
            for dx in range(3):
                blocks &= ignored[dy : dy + ignored.shape[0] - 2, dx : dx + ignored.shape[1] - 2]
        assert not blocks.any()
        assert 0 < ignored.mean() < 0.08


def read_split(root: Path, split: str):
    paths = sorted((root / split / "images").glob("*.png"))
    images = np.stack([np.asarray(Image.open(p)) for p in paths])
    masks = np.stack([np.asarray(Image.open(root / split / "masks" / p.name)) for p in paths])
    return images, masks


@pytest.mark.parametrize("kind", ["scenes", "cells"])
def test_bundled_samples_match_their_metadata_and_readme(kind):
    root = SAMPLES / kind
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["name"] == kind and meta["ignore_index"] == IGNORE_INDEX
    assert len(meta["class_names"]) == len(meta["palette"]) >= 2
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in meta["palette"])
    readme = (root / "README.md").read_text()
    assert "python -m segtutor make-samples" in readme
    spec = synth.SAMPLE_SETS[kind]
    for split in ("train", "val"):
        images = sorted((root / split / "images").glob("*.png"))
        masks = sorted((root / split / "masks").glob("*.png"))
        assert [p.name for p in images] == [p.name for p in masks]
        assert len(images) == spec[f"n_{split}"]
    with Image.open(images[0]) as image, Image.open(masks[0]) as mask:
        assert image.mode == "RGB" and mask.mode == "L"
        assert image.size == mask.size == tuple(spec["size"][::-1])


def test_bundled_scenes_are_imbalanced_with_a_rare_class():
    _, masks = read_split(SAMPLES / "scenes", "train")
    labelled = masks[masks != IGNORE_INDEX]
    share = np.bincount(labelled, minlength=4) / labelled.size
    assert share[0] > 0.7  # background is the majority
    assert share[1:].min() < 0.02  # the ring is rare ...
    assert share[1:].min() > 0.002  # ... but there is something to learn


def test_bundled_samples_are_small():
    # the generated sets (the real nuclei subset has its own limit, tests/test_bundled_nuclei.py)
    generated = [SAMPLES / "scenes", SAMPLES / "cells"]
    total = sum(p.stat().st_size for d in generated for p in d.rglob("*") if p.is_file())
    assert total < 10_500_000


def test_colour_alone_does_not_segment_scenes():
    # Nearest mean colour, with the class means measured on the validation pixels themselves (an
    # optimistic baseline). Colour families tell background, warm and cool objects apart, but a
    # ring shares its colours with discs and triangles: only shape finds it.
    images, masks = read_split(SAMPLES / "scenes", "val")
    pixels, labels = images.reshape(-1, 3).astype(np.float32), masks.ravel()
    keep = labels != IGNORE_INDEX
    pixels, labels = pixels[keep], labels[keep]
    means = np.stack([pixels[labels == c].mean(0) for c in range(4)])  # (C, 3)
    preds = np.argmin(((pixels[:, None] - means[None]) ** 2).sum(-1), axis=1)
    ious = [
        np.sum((preds == c) & (labels == c)) / np.sum((preds == c) | (labels == c))
        for c in range(4)
    ]
    assert ious[3] < 0.3  # ring
    assert np.mean(ious) < 0.7  # far below what a model that learns shape reaches


def test_make_samples_command_writes_both_datasets(tmp_path, monkeypatch, capsys):
    # The real sets, shrunk: the command is the same code path as `python -m segtutor make-samples`.
    monkeypatch.setattr(
        synth,
        "SAMPLE_SETS",
        {k: {"n_train": 2, "n_val": 1, "size": (32, 32)} for k in synth.GENERATORS},
    )
    parser = argparse.ArgumentParser()
    make_samples.add_arguments(parser)
    assert make_samples.run(parser.parse_args(["--out", str(tmp_path), "--seed", "1"])) == 0
    for kind in synth.GENERATORS:
        assert len(list((tmp_path / kind / "val" / "masks").glob("*.png"))) == 1
        assert (tmp_path / kind / "dataset.json").is_file()
    assert "scenes" in capsys.readouterr().out


def test_bundled_samples_load_through_the_data_layer():
    data = pytest.importorskip("segtutor.data")
    from segtutor.transforms import eval_transforms, train_transforms

    train_ds, val_ds = data.load_splits(
        SAMPLES / "scenes",
        train_transform=train_transforms((64, 64)),
        val_transform=eval_transforms(),
    )
    assert (len(train_ds), len(val_ds)) == (200, 50)
    assert train_ds.num_classes == 4 and train_ds.class_names[3] == "ring"
    image, mask = train_ds[0]
    assert image.shape == (3, 64, 64) and mask.shape == (64, 64) and mask.dtype == torch.int64
    image, mask = val_ds[0]
    assert image.shape == (3, 128, 128) and set(mask.unique().tolist()) <= {
        0,
        1,
        2,
        3,
        IGNORE_INDEX,
    }
