"""The recipe: the defaults chosen from the data, and the same seed giving the same run."""

from __future__ import annotations

import shutil

import pytest
import torch

from segtutor.errors import DataError
from segtutor.losses import RECOMMENDED_WEIGHTING, class_weights
from segtutor.recipe import RecipeOptions, choose_input_mode, default_epochs, prepare
from segtutor.synth import write_dataset
from segtutor.train import TrainConfig, fit


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    write_dataset(root, "scenes", n_train=10, n_val=3, size=(64, 64), seed=0)
    return root


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Validation images of two sizes: 64x64 and 48x80 (height x width)."""
    root = tmp_path_factory.mktemp("mixed")
    write_dataset(root, "scenes", n_train=4, n_val=2, size=(64, 64), seed=0)
    other = tmp_path_factory.mktemp("other")
    write_dataset(other, "scenes", n_train=1, n_val=2, size=(48, 80), seed=1)
    for folder in ("images", "masks"):
        for path in (other / "val" / folder).iterdir():
            shutil.copy(path, root / "val" / folder / f"wide_{path.name}")
    return root


def test_auto_input_mode_crops_unless_the_images_are_smaller():
    assert choose_input_mode({(128, 128)}, 96) == "crop"
    assert choose_input_mode({(96, 96)}, 96) == "crop"
    assert choose_input_mode({(256, 320), (1040, 1388)}, 96) == "crop"  # varied sizes
    assert choose_input_mode({(64, 64)}, 96) == "resize"  # a crop would be mostly padding
    assert choose_input_mode({(64, 200), (300, 300)}, 96) == "resize"


def test_crop_unless_the_images_are_smaller_than_the_input_size(scenes):
    assert prepare(scenes, input_size=48, preset="tiny").input_mode == "crop"
    assert prepare(scenes, input_size=64, preset="tiny").input_mode == "crop"
    run = prepare(scenes, input_size=96, preset="tiny")  # 64x64 images: crops would be padding
    assert run.input_mode == "resize" and run.config.input_mode == "resize"
    images, masks = next(iter(run.train_loader))
    assert images.shape == (8, 3, 96, 96) and masks.shape == (8, 96, 96)
    images, masks = next(iter(run.val_loader))
    assert images.shape == (3, 3, 96, 96)  # resized for the model...
    assert masks.shape == (3, 64, 64)  # ...scored at the masks' own resolution
    assert prepare(scenes, input_size=96, input_mode="crop", preset="tiny").input_mode == "crop"


def test_crop_mode_trains_on_crops_and_validates_whole_images(scenes):
    run = prepare(scenes, input_size=32, batch_size=4, preset="tiny")
    images, masks = next(iter(run.train_loader))
    assert images.shape == (4, 3, 32, 32) and masks.shape == (4, 32, 32)
    images, masks = next(iter(run.val_loader))
    assert images.shape == (3, 3, 64, 64) and masks.shape == (3, 64, 64)
    assert run.train_loader.drop_last  # 10 images > one batch of 4


def test_class_weights_come_from_the_training_masks(scenes):
    run = prepare(scenes, preset="tiny")
    expected = class_weights(run.train_ds.pixel_counts, method=RECOMMENDED_WEIGHTING)
    assert run.config.class_weights == pytest.approx(expected.tolist())
    assert len(run.config.class_weights) == run.num_classes == 4
    assert prepare(scenes, preset="tiny", class_weights=None).config.class_weights is None
    median = prepare(scenes, preset="tiny", class_weights="median").config.class_weights
    assert median != run.config.class_weights


def test_mixed_sizes_validate_one_image_at_a_time(mixed):
    run = prepare(mixed, input_size=32, batch_size=4, preset="tiny")
    assert run.image_sizes == {(64, 64), (48, 80)}
    assert run.val_loader.batch_size == 1
    assert "48x80" not in run.describe() and "80x48" in run.describe()  # width x height
    same = prepare(mixed / "train", input_size=32, batch_size=4, preset="tiny")  # one size
    assert same.val_loader.batch_size == 4


def test_epochs_default_from_quick_mode(scenes, monkeypatch):
    monkeypatch.setenv("SEGTUTOR_QUICK", "")
    assert default_epochs() == 20
    assert prepare(scenes, preset="tiny").config.num_epochs == 20
    monkeypatch.setenv("SEGTUTOR_QUICK", "1")
    assert default_epochs() == 2
    assert prepare(scenes, preset="tiny").config.num_epochs == 2
    assert prepare(scenes, preset="tiny", num_epochs=5).config.num_epochs == 5
    budget = prepare(scenes, preset="tiny", time_budget_s=3.0).config
    assert budget.time_budget_s == 3.0 and budget.num_epochs > 1000  # the budget ends it


def test_config_carries_the_choices(scenes, tmp_path):
    run = prepare(
        scenes,
        preset="tiny",
        lr=1e-3,
        seed=7,
        loss="ce",
        run_dir=tmp_path,
        deep_supervision=False,
        progress=False,
    )
    config = run.config
    assert (config.lr, config.seed, config.loss, config.progress) == (1e-3, 7, "ce", False)
    assert config.checkpoint_path == str(tmp_path / "best.pt")
    assert config.last_checkpoint_path == str(tmp_path / "last.pt")
    assert config.num_classes == 4 and config.input_size == RecipeOptions().input_size
    assert prepare(scenes, preset="tiny").config.lr == TrainConfig().lr
    assert prepare(scenes, preset="tiny").config.checkpoint_path is None
    assert not run.model.deep_supervision
    assert prepare(scenes, preset="tiny").model.deep_supervision  # the default
    assert run.class_names == ["background", "disc", "bar", "ring"]
    assert len(run.palette) == 4


def test_same_seed_same_loaders_and_model(scenes):
    def first_batch_and_weights(seed):
        run = prepare(scenes, input_size=32, batch_size=4, preset="tiny", seed=seed)
        images, masks = next(iter(run.train_loader))
        return images, masks, run.model.state_dict()

    a, b, c = first_batch_and_weights(3), first_batch_and_weights(3), first_batch_and_weights(4)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])
    for key, value in a[2].items():
        torch.testing.assert_close(value, b[2][key])
    assert not torch.equal(a[0], c[0])
    first = next(iter(a[2]))  # the first convolution's weights
    assert not torch.equal(a[2][first], c[2][first])


def test_max_train_images_keeps_the_first_ones(scenes):
    run = prepare(scenes, preset="tiny", max_train_images=4)
    full = prepare(scenes, preset="tiny")
    assert run.train_ds.stems == full.train_ds.stems[:4]
    assert len(run.val_ds) == len(full.val_ds)


def test_resume_from_restores_the_model(scenes, tmp_path):
    run = prepare(
        scenes,
        input_size=32,
        batch_size=4,
        preset="tiny",
        num_epochs=1,
        progress=False,
        run_dir=tmp_path,
    )
    fit(run.model, run.train_loader, run.val_loader, run.config)
    resumed = prepare(scenes, input_size=32, batch_size=4, resume_from=tmp_path / "last.pt")
    assert resumed.resume_from is not None and resumed.resume_from["epoch"] == 1
    for key, value in run.model.state_dict().items():
        torch.testing.assert_close(value, resumed.model.state_dict()[key])


def test_a_broken_folder_raises_data_error_naming_the_file(tmp_path):
    write_dataset(tmp_path, "cells", n_train=4, n_val=2, size=(32, 32), seed=0)
    (tmp_path / "train" / "masks" / "cell_0001.png").unlink()
    with pytest.raises(DataError, match="cell_0001"):
        prepare(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        prepare(tmp_path / "no_such_folder")


def test_an_unknown_choice_is_an_error(scenes):
    with pytest.raises(TypeError, match="num_epoch"):
        prepare(scenes, num_epoch=3)
