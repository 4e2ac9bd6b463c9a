"""The recipe: the defaults chosen from the data, and the same seed giving the same run."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
import torch

from segtutor.errors import DataError
from segtutor.losses import RECOMMENDED_WEIGHTING, class_weights
from segtutor.recipe import (
    DECODER_CONVS,
    RecipeOptions,
    choose_batch_augment,
    choose_batch_size,
    choose_input_mode,
    choose_preset,
    choose_progressive_scale,
    default_epochs,
    prepare,
)
from segtutor.synth import write_dataset
from segtutor.train import TrainConfig, fit
from segtutor.transforms import COLOR_JITTER, ROTATION_DEGREES, BatchAugment


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


def test_training_batches_are_rotated_jittered_and_normalised_as_batches(scenes):
    run = prepare(scenes, input_size=32, batch_size=4, preset="tiny")
    augment = run.train_loader.collate_fn
    assert isinstance(augment, BatchAugment)
    assert augment.rotation > 0 and augment.color_jitter > 0
    image, _ = run.train_ds[0]  # the dataset's part: a crop in [0, 1], not normalised yet
    assert image.shape == (3, 32, 32) and image.min() >= 0 and image.max() <= 1
    images, masks = next(iter(run.train_loader))
    assert images.min() < 0  # normalised: black is below the ImageNet mean
    assert set(masks.unique().tolist()) <= {0, 1, 2, 3, 255}


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
    assert default_epochs() == 24
    assert prepare(scenes, preset="tiny").config.num_epochs == 24
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


def test_the_recipes_unet_has_one_conv_per_decoder_level_unless_asked(scenes):
    run = prepare(scenes, preset="tiny")
    assert run.model.decoder_convs == DECODER_CONVS == 1
    assert "U-Net 'tiny', one conv per decoder level" in run.describe()
    paper = prepare(scenes, preset="tiny", decoder_convs=2)
    assert paper.model.decoder_convs == 2 and "decoder level" not in paper.describe()
    assert not hasattr(prepare(scenes, model="lraspp-mobilenetv3").model, "decoder_convs")
    with pytest.raises(ValueError, match="unet's decoder only"):
        prepare(scenes, model="lraspp-mobilenetv3", decoder_convs=1)


@pytest.mark.filterwarnings("ignore:classes .* have no pixels")
def test_the_width_follows_the_number_of_classes(scenes, tmp_path):
    assert [choose_preset(n) for n in (2, 4, 8, 9, 21)] == ["course"] * 3 + ["wide"] * 2
    four = prepare(scenes)  # 4 classes: the course U-Net, 8 channels in its last layer
    assert (four.options.preset, four.model.base_width) == ("course", 8)
    assert "U-Net 'course'" in four.describe()
    unnamed = tmp_path / "unnamed"  # the same masks, classes 4..9 unused, no names to match
    shutil.copytree(scenes, unnamed, ignore=shutil.ignore_patterns("dataset.json"))
    ten = prepare(unnamed, num_classes=10)  # more classes than channels: the wide one
    assert (ten.options.preset, ten.model.base_width) == ("wide", 12)
    assert "U-Net 'wide', one conv per decoder level, 0.98" in ten.describe()
    assert prepare(unnamed, num_classes=10, preset="tiny").model.base_width == 8  # as asked
    assert prepare(scenes, model="lraspp-mobilenetv3").options.preset is None  # U-Net only


def test_the_batch_size_follows_the_time_budget(scenes):
    assert (choose_batch_size(None), choose_batch_size(60.0)) == (8, 16)
    epochs = prepare(scenes, preset="tiny", input_size=32)  # 10 images: batches of 8, then 2
    assert (epochs.options.batch_size, epochs.train_loader.batch_size) == (8, 8)
    budget = prepare(scenes, preset="tiny", input_size=32, time_budget_s=30.0)
    assert (budget.options.batch_size, budget.train_loader.batch_size) == (16, 16)
    assert budget.val_loader.batch_size == 16  # validation batches follow, unless mixed sizes
    asked = prepare(scenes, preset="tiny", input_size=32, time_budget_s=30.0, batch_size=4)
    assert asked.train_loader.batch_size == 4  # as asked, budget or not
    assert RecipeOptions().batch_size is None  # chosen by prepare


def test_prior_adjustment_comes_with_the_class_weights(scenes):
    run = prepare(scenes, preset="tiny", input_size=32)
    assert run.config.class_weights is not None and run.config.prior_adjustment == 1.0
    unweighted = prepare(scenes, preset="tiny", input_size=32, class_weights=None)
    assert unweighted.config.prior_adjustment == 0.0  # nothing to adjust for
    asked = prepare(scenes, preset="tiny", input_size=32, prior_adjustment=0.5)
    assert asked.config.prior_adjustment == 0.5


def test_progressive_resizing_under_a_time_budget_only(scenes):
    assert (choose_progressive_scale(None), choose_progressive_scale(60.0)) == (1.0, 2 / 3)
    epochs = prepare(scenes, preset="tiny", input_size=32)
    assert epochs.config.progressive_scale == 1.0 and "training at" not in epochs.describe()
    budget = prepare(scenes, preset="tiny", input_size=32, time_budget_s=30.0)
    assert budget.config.progressive_scale == pytest.approx(2 / 3)
    assert "the first 50% of training at 0.67x that size" in budget.describe()
    off = prepare(scenes, preset="tiny", input_size=32, time_budget_s=30.0, progressive_scale=1)
    assert off.config.progressive_scale == 1.0  # as asked, budget or not
    asked = prepare(scenes, preset="tiny", input_size=32, progressive_scale=0.5)
    assert asked.config.progressive_scale == 0.5


def test_a_time_budget_augments_by_crops_and_flips_only(scenes):
    assert (choose_batch_augment(None), choose_batch_augment(60.0)) == (True, False)

    def augmentation(run):
        collate = run.train_loader.collate_fn
        assert isinstance(collate, BatchAugment) and collate.mean is not None  # normalised
        return collate.rotation, collate.color_jitter

    epochs = prepare(scenes, preset="tiny", input_size=32)
    assert augmentation(epochs) == (ROTATION_DEGREES, COLOR_JITTER) != (0, 0)
    assert "crops and flips only" not in epochs.describe()
    budget = prepare(scenes, preset="tiny", input_size=32, time_budget_s=30.0)
    assert augmentation(budget) == (0, 0)
    assert "augmented by crops and flips only" in budget.describe()
    asked = prepare(scenes, preset="tiny", input_size=32, time_budget_s=30.0, batch_augment=True)
    assert augmentation(asked) == (ROTATION_DEGREES, COLOR_JITTER)  # as asked, budget or not
    off = prepare(scenes, preset="tiny", input_size=32, batch_augment=False)
    assert augmentation(off) == (0, 0)
    images, masks = next(iter(budget.train_loader))
    assert images.shape[-2:] == masks.shape[-2:] == (32, 32)


def test_more_classes_than_names_is_a_data_error(scenes):
    # was an IndexError while listing the classes without pixels
    with pytest.raises(DataError, match="4 class names for num_classes=10"):
        prepare(scenes, num_classes=10)


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


@pytest.mark.parametrize(
    ("length", "batch_size"), [({"num_epochs": 3}, 8), ({"time_budget_s": 600.0}, 16)]
)
def test_a_resumed_run_keeps_its_epochs_or_budget_and_so_its_batch_size(
    scenes, tmp_path, length, batch_size
):
    run = prepare(scenes, input_size=32, preset="tiny", progress=False, run_dir=tmp_path, **length)
    assert run.options.batch_size == batch_size
    fit(run.model, run.train_loader, run.val_loader, run.config, callbacks=[lambda e, h: True])
    resumed = prepare(scenes, input_size=32, resume_from=tmp_path / "last.pt", progress=False)
    assert resumed.options.batch_size == batch_size  # the rule sees the same length
    assert resumed.config.num_epochs == run.config.num_epochs
    assert resumed.config.time_budget_s == run.config.time_budget_s
    history = fit(resumed.model, resumed.train_loader, resumed.val_loader,
                  replace(resumed.config, num_epochs=2), resume_from=resumed.resume_from)  # fmt: skip
    assert history.epoch == [1, 2]
    shorter = prepare(scenes, resume_from=tmp_path / "last.pt", num_epochs=5, progress=False)
    assert shorter.config.num_epochs == 5 and shorter.config.time_budget_s is None  # given


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


# --- the working scale chosen from the data (issue 12) -----------------------------------------


def _squares_dataset(root, size: int, side: int, per_image: int, n: int = 6):
    """`root/images` + `root/masks`: `n` images `size` x `size`, each with `per_image` squares of
    class 1 and `side` pixels, apart from each other, on class 0."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        cells = size // (2 * side)  # squares on a grid of 2*side, so that they never touch
        for k in rng.permutation(cells * cells)[:per_image]:
            top, left = (k // cells) * 2 * side + 1, (k % cells) * 2 * side + 1
            mask[top : top + side, left : left + side] = 1
        image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        image[mask == 1] += 150
        Image.fromarray(image).save(root / "images" / f"s{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"s{i}.png")
    return root


@pytest.fixture(scope="module")
def large_objects(tmp_path_factory):
    return _squares_dataset(tmp_path_factory.mktemp("large"), size=256, side=120, per_image=1)


@pytest.fixture(scope="module")
def small_objects(tmp_path_factory):
    return _squares_dataset(tmp_path_factory.mktemp("small"), size=128, side=8, per_image=12)


def test_large_objects_in_large_images_get_shrunk_and_cropped(large_objects):
    from segtutor.data import SegmentationDataset
    from segtutor.recipe import data_scale, image_sizes

    native = SegmentationDataset(large_objects)  # prepare's own is at the working scale now
    assert data_scale(native, image_sizes(native), 32) == pytest.approx(0.2)
    run = prepare(large_objects, preset="tiny", input_size=32)
    # a 120-px region brought to ~24 px: 0.2 (the 256-px side may go down to 32/256)
    assert run.config.working_scale == pytest.approx(0.2)
    assert run.input_mode == "crop" and run.train_ds.scale == pytest.approx(0.2)
    images, masks = next(iter(run.train_loader))
    assert images.shape[-2:] == masks.shape[-2:] == (32, 32)
    images, masks = next(iter(run.val_loader))
    assert images.shape[-2:] == (51, 51)  # round(256 * 0.2), the model's input...
    assert masks.shape[-2:] == (256, 256)  # ...scored against the masks as drawn
    # with 96-px crops the floor wins: no image below a crop, 96/256 = 0.375 rounded up
    default = prepare(large_objects, preset="tiny")
    assert default.config.working_scale == pytest.approx(0.38) and default.input_mode == "crop"
    assert "working scale 0.38" in default.describe()


def test_small_objects_keep_native_resolution(small_objects):
    run = prepare(small_objects, preset="tiny")
    assert run.config.working_scale == 1.0 and run.input_mode == "crop"
    images, masks = next(iter(run.val_loader))
    assert images.shape[-2:] == masks.shape[-2:] == (128, 128)


def test_a_given_working_scale_is_honoured_and_saved(scenes):
    from segtutor.checkpoint import run_metadata

    run = prepare(scenes, preset="tiny", input_size=16, batch_size=4, working_scale=0.5)
    assert run.config.working_scale == 0.5 and run.input_mode == "crop"
    assert run.train_ds.scale == 0.5 and run.val_ds.scale == 0.5
    images, masks = next(iter(run.train_loader))
    assert images.shape[-2:] == masks.shape[-2:] == (16, 16)
    images, masks = next(iter(run.val_loader))
    assert images.shape[-2:] == (32, 32) and masks.shape[-2:] == (64, 64)
    # what fit writes into every checkpoint beside the weights
    saved = run_metadata(run.model, run.train_loader, run.config)["config"]
    assert saved["working_scale"] == 0.5 and saved["input_mode"] == "crop"


def test_resize_mode_works_at_scale_one(scenes):
    # whole images resized to the input size: a working scale would only be undone
    run = prepare(scenes, preset="tiny", input_size=96, working_scale=0.5)
    assert run.input_mode == "resize" and run.config.working_scale == 1.0


def _half_scale_checkpoint(path, num_classes: int = 3):
    """A checkpoint of an untrained tiny U-Net as if trained on crops at working scale 0.5."""
    from dataclasses import asdict

    from segtutor.checkpoint import cpu_state, save_checkpoint
    from segtutor.model import build_unet

    model = build_unet("tiny", num_classes=num_classes, deep_supervision=False)
    config = TrainConfig(
        num_classes=num_classes, input_size=16, input_mode="crop", working_scale=0.5
    )
    keys = ("in_channels", "num_classes", "base_width", "depth", "bilinear", "deep_supervision")
    return save_checkpoint(
        path,
        model_state=cpu_state(model),
        config=asdict(config),
        model_config={key: getattr(model, key) for key in keys},
        class_names=[f"class_{c}" for c in range(num_classes)],
        palette=[[40 * c, 0, 0] for c in range(num_classes)],
    )


def test_predict_applies_the_working_scale_and_writes_masks_of_the_input_size(
    tmp_path, monkeypatch
):
    import warnings

    import numpy as np
    from PIL import Image

    import segtutor.inference as inference
    from segtutor.cli import main

    checkpoint = _half_scale_checkpoint(tmp_path / "best.pt")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    sizes = {"a": (64, 96), "b": (50, 70)}
    for name, (h, w) in sizes.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(
            photos / f"{name}.png"
        )
    seen = []
    real = inference.predict_logits
    monkeypatch.setattr(
        inference,
        "predict_logits",
        lambda model, images, size=None, **options: (
            seen.append((tuple(images.shape), size)) or real(model, images, size=size, **options)
        ),
    )
    argv = ["predict", "--checkpoint", str(checkpoint), "--input", str(photos), "--device", "cpu"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 25x35 is padded to fit the U-Net
        assert main([*argv, "--output", str(tmp_path / "out")]) == 0
    # the model saw each image at half size, and each mask has the input's own size
    assert seen == [((3, 32, 48), (64, 96)), ((3, 25, 35), (50, 70))]
    for name, (h, w) in sizes.items():
        mask = Image.open(tmp_path / "out" / f"{name}.png")
        assert mask.size == (w, h) and set(np.unique(np.array(mask))) <= {0, 1, 2}


def test_evaluate_applies_the_working_scale_and_scores_native_masks(
    scenes, tmp_path, monkeypatch, capsys
):
    import segtutor.commands.evaluate as evaluate_command
    from segtutor.cli import main

    checkpoint = _half_scale_checkpoint(tmp_path / "best.pt", num_classes=4)
    seen = []
    real = evaluate_command.evaluate

    def spy(model, loader, *args, **kwargs):
        images, masks = next(iter(loader))
        seen.append((tuple(images.shape[-2:]), tuple(masks.shape[-2:])))
        return real(model, loader, *args, **kwargs)

    monkeypatch.setattr(evaluate_command, "evaluate", spy)
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(scenes), "--json"]
    assert main([*argv, "--device", "cpu"]) == 0
    assert '"miou"' in capsys.readouterr().out
    assert seen == [((32, 32), (64, 64))]


# --- the U-Net's relatives and transfer learning (08_relatives.ipynb) ---------------------------


def _end_to_end(scenes, tmp_path, name):
    """One epoch of `name` on two crops, written to a run folder; the Run and its history."""
    from dataclasses import replace

    run = prepare(scenes, model=name, input_size=32, batch_size=2, max_train_images=2,
                  num_epochs=1, run_dir=tmp_path, progress=False, device="cpu")  # fmt: skip
    run.config = replace(run.config, amp=False, channels_last=False)  # nothing timed
    return run, fit(run.model, run.train_loader, run.val_loader, run.config)


@pytest.mark.parametrize(
    "name",
    [
        "lraspp-mobilenetv3",
        "unet-resnet18",
        pytest.param("unet-mobilenetv3", marks=pytest.mark.slow),
        pytest.param("deeplabv3-mobilenetv3", marks=pytest.mark.slow),
        pytest.param("fcn-resnet50", marks=pytest.mark.slow),
    ],
)
def test_every_model_trains_evaluates_predicts_and_resumes(scenes, tmp_path, name):
    from dataclasses import replace

    from segtutor.checkpoint import load_checkpoint, model_from_checkpoint
    from segtutor.inference import predict
    from segtutor.train import evaluate

    run, history = _end_to_end(scenes, tmp_path, name)
    assert run.model.name == name and name in run.describe()
    assert len(history) == 1 and history.train_loss[0] > 0
    cm = evaluate(run.model, run.val_loader, run.num_classes)
    labelled = sum(int((masks != 255).sum()) for _, masks in run.val_loader)
    assert cm.matrix.sum() == labelled  # every labelled pixel, at the masks' resolution
    assert labelled > 0.9 * 3 * 64 * 64
    saved = load_checkpoint(tmp_path / "best.pt")
    assert saved["model_config"]["name"] == name
    rebuilt = model_from_checkpoint(saved)
    images, _ = next(iter(run.val_loader))
    torch.testing.assert_close(predict(rebuilt, images), predict(run.model, images))
    again = prepare(scenes, resume_from=tmp_path / "last.pt", input_size=32, batch_size=2,
                    max_train_images=2, num_epochs=2, progress=False, device="cpu")  # fmt: skip
    again.config = replace(again.config, amp=False, channels_last=False)
    resumed = fit(again.model, again.train_loader, again.val_loader, again.config,
                  resume_from=again.resume_from)  # fmt: skip
    assert resumed.epoch == [1, 2] and resumed.train_loss[0] == history.train_loss[0]


def _checkpoint_of(path, name, num_classes, **kwargs):
    from segtutor.architectures import build_model, model_config
    from segtutor.checkpoint import save_checkpoint

    torch.manual_seed(3)
    model = build_model(name, num_classes, **kwargs)
    save_checkpoint(path, model_state=model.state_dict(), model_config=model_config(model))
    return model


def test_init_from_another_class_count_keeps_what_fits(scenes, tmp_path):
    six = _checkpoint_of(tmp_path / "six.pt", "unet", 6, preset="tiny", deep_supervision=True)
    run = prepare(scenes, init_from=tmp_path / "six.pt", input_size=32, deep_supervision=False)
    model = run.model
    assert model.num_classes == 4 and model.depth == 3  # scenes' classes, the checkpoint's size
    torch.testing.assert_close(model.inc.double_conv[0].weight, six.inc.double_conv[0].weight)
    torch.testing.assert_close(model.ups[0].up.weight, six.ups[0].up.weight)
    assert model.outc.conv.weight.shape[0] == 4
    total = len(model.state_dict())
    assert f"{total - 2} of {total} weight tensors reused" in run.init_note
    assert "new: outc.conv.weight, outc.conv.bias" in run.init_note
    assert run.init_note in run.describe()
    assert run.resume_from is None  # a fresh run: epochs, schedule and optimizer start anew


def test_init_from_is_checked(scenes, tmp_path):
    from segtutor.errors import CheckpointError

    _checkpoint_of(tmp_path / "lraspp.pt", "lraspp-mobilenetv3", 4)
    run = prepare(scenes, init_from=tmp_path / "lraspp.pt", input_size=32)
    assert run.model.name == "lraspp-mobilenetv3" and "new:" not in run.init_note
    with pytest.raises(CheckpointError, match="holds a lraspp-mobilenetv3 model, not a unet-r"):
        prepare(scenes, init_from=tmp_path / "lraspp.pt", model="unet-resnet18", input_size=32)
    with pytest.raises(ValueError, match="choose one"):
        prepare(scenes, init_from=tmp_path / "lraspp.pt", pretrained="imagenet", input_size=32)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        prepare(scenes, init_from=tmp_path / "missing.pt", input_size=32)


def test_transfer_options_reach_the_config(scenes):
    run = prepare(scenes, input_size=32, freeze_encoder_epochs=2, encoder_lr_factor=0.1)
    assert run.config.freeze_encoder_epochs == 2 and run.config.encoder_lr_factor == 0.1
    assert RecipeOptions().model == "unet" and RecipeOptions().pretrained is None
