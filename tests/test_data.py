"""Tests for segtutor.data: samples as tensors, pairing by stem, cache, splits, loaders.

The decoders are tested in test_formats.py, the checks in test_checks.py; the folders come from
tests/data_folders.py (a few 8x6 pixel files each, in `tmp_path`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from data_folders import H, W, image_of, make_dataset, mask_of, problems_of, save
from torchvision import tv_tensors

from segtutor import data
from segtutor.data import SegmentationDataset, load_splits
from segtutor.errors import DataError


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "good", {"a": 10, "b": 20, "c": 30, "d": 40})


def test_sample_types_shapes_and_values(good: Path) -> None:
    ds = SegmentationDataset(good)
    assert len(ds) == 4 and ds.stems == ["a", "b", "c", "d"]
    assert ds.num_classes == 3  # largest label 2, + 1
    assert ds.class_names == ["class_0", "class_1", "class_2"]

    image, mask = ds.read_sample(1)
    assert isinstance(image, tv_tensors.Image) and image.dtype == torch.uint8
    assert isinstance(mask, tv_tensors.Mask) and mask.dtype == torch.int64
    assert image.shape == (3, H, W) and mask.shape == (H, W)
    assert image[0, 0, 0] == 20 and mask[0, 0] == 20 % 3

    image, mask = ds[1]
    assert type(image) is torch.Tensor and type(mask) is torch.Tensor
    assert image.dtype == torch.float32 and image.max() <= 1
    torch.testing.assert_close(image[0, 0, 0], torch.tensor(20 / 255))
    assert mask.dtype == torch.int64


def test_transform_receives_tv_tensors(good: Path) -> None:
    seen = []

    def transform(image, mask):
        seen.append((type(image), type(mask), image.dtype, mask.dtype))
        return image.float(), mask

    ds = SegmentationDataset(good, transform=transform)
    ds[0]
    assert seen == [(tv_tensors.Image, tv_tensors.Mask, torch.uint8, torch.int64)]


def test_dataloader_batches(good: Path) -> None:
    ds = SegmentationDataset(good)
    images, masks = next(iter(torch.utils.data.DataLoader(ds, batch_size=4, num_workers=0)))
    assert images.shape == (4, 3, H, W) and masks.shape == (4, H, W)
    assert masks.dtype == torch.int64


def test_pairs_by_stem_across_extensions_and_case(tmp_path: Path) -> None:
    # images as .JPG/.bmp/.tif sort differently from the .png masks: pairing must use stems
    root = tmp_path / "ds"
    save(root / "images" / "b.JPG", image_of(200), quality=100)
    save(root / "images" / "a.bmp", image_of(100))
    save(root / "images" / "c.tiff", image_of(50))
    for stem, label in (("a", 1), ("b", 2), ("c", 0)):
        save(root / "masks" / f"{stem}.png", mask_of(label))
    ds = SegmentationDataset(root)
    assert [p.name for p in ds.image_paths] == ["a.bmp", "b.JPG", "c.tiff"]
    for i, (red, label) in enumerate(((100, 1), (200, 2), (50, 0))):
        image, mask = ds.read_sample(i)
        assert abs(int(image[0, 0, 0]) - red) <= 2 and int(mask[0, 0]) == label


def test_a_missing_file_never_shifts_a_pair(tmp_path: Path) -> None:
    stems = {f"s{i:02d}": 10 * i for i in range(1, 8)}
    root = make_dataset(tmp_path / "ds", stems)
    (root / "masks" / "s03.png").unlink()  # an image without a mask
    save(root / "masks" / "zz_extra.png", mask_of(1))  # a mask without an image
    problems = problems_of(root)
    assert len(problems) == 2
    by_folder = {Path(p.path).name: p for p in problems}
    assert "1 images have no mask" in by_folder["images"].message
    assert "s03" in by_folder["images"].message and "zz_extra" not in by_folder["images"].message
    assert "zz_extra" in by_folder["masks"].message and "s03" not in by_folder["masks"].message

    (root / "images" / "s03.png").unlink()
    (root / "masks" / "zz_extra.png").unlink()
    ds = SegmentationDataset(root)
    assert "s03" not in ds.stems
    for i, stem in enumerate(ds.stems):
        image, mask = ds.read_sample(i)
        assert int(image[0, 0, 0]) == stems[stem]  # the image is its own
        assert int(mask[0, 0]) == stems[stem] % 3  # and so is the mask
        assert ds.image_paths[i].stem == ds.mask_paths[i].stem == stem


def test_cache_returns_identical_tensors_without_decoding_again(good: Path, monkeypatch) -> None:
    plain = SegmentationDataset(good)
    cached = SegmentationDataset(good, cache=True)
    calls = []
    real = data.decode_image
    monkeypatch.setattr(
        data, "decode_image", lambda path, **kw: calls.append(path) or real(path, **kw)
    )
    monkeypatch.setattr(data, "decode_mask", None)  # masks were decoded once, when checked
    first = [cached[i] for i in range(len(cached))]
    second = [cached[i] for i in range(len(cached))]
    for (a_image, a_mask), (b_image, b_mask) in zip(first, second, strict=True):
        assert torch.equal(a_image, b_image) and torch.equal(a_mask, b_mask)
    assert len(calls) == len(cached)  # each image decoded once, on first use
    image, _ = cached.read_sample(0)
    image.zero_()  # writing into a sample must not change the cache
    assert cached.read_sample(0)[0].max() > 0
    monkeypatch.undo()
    for i in range(len(plain)):
        for a, b in zip(plain[i], cached[i], strict=True):
            assert torch.equal(a, b)


def test_changed_file_after_construction_names_the_file(good: Path) -> None:
    ds = SegmentationDataset(good)
    (good / "images" / "b.png").write_bytes(b"broken")
    with pytest.raises(DataError) as info:
        ds[1]
    assert "b.png" in str(info.value) and "check-data" in str(info.value)


def test_pool_split_is_stable_and_adding_files_moves_nothing(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "pool", {f"img{i:03d}": i for i in range(40)})
    train, val = load_splits(root, val_fraction=0.25, seed=3)
    again_train, again_val = load_splits(root, val_fraction=0.25, seed=3)
    assert train.stems == again_train.stems and val.stems == again_val.stems
    assert set(train.stems).isdisjoint(val.stems) and len(train) + len(val) == 40
    assert 3 <= len(val) <= 17
    assert load_splits(root, val_fraction=0.25, seed=4)[1].stems != val.stems

    make_dataset(root, {f"new{i}": i for i in range(10)})
    bigger_train, bigger_val = load_splits(root, val_fraction=0.25, seed=3)
    assert set(train.stems) <= set(bigger_train.stems)
    assert set(val.stems) <= set(bigger_val.stems)


def test_split_of_a_tiny_pool_keeps_both_sides(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "pool", {"a": 1, "b": 2})
    train, val = load_splits(root, val_fraction=0.2)
    assert len(train) == 1 and len(val) == 1


def test_train_val_folders_share_num_classes_and_metadata(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_dataset(root / "train", {"a": 2, "b": 1})  # labels up to 2
    make_dataset(root / "val", {"c": 3})  # labels 0 and 1 only
    (root / "dataset.json").write_text(json.dumps({"name": "toy"}))
    seen = []
    train, val = load_splits(
        root, train_transform=lambda i, m: seen.append("train") or (i, m), cache=True
    )
    assert train.stems == ["a", "b"] and val.stems == ["c"]
    assert train.num_classes == val.num_classes == 3
    assert val.pixel_counts.tolist() == [H * 4, H * 4, 0]
    train[0]
    val[0]
    assert seen == ["train"] and val.transform is None


def test_load_splits_reports_problems_of_both_splits(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_dataset(root / "train", {"a": 2})
    make_dataset(root / "val", {"c": 3})
    (root / "train" / "masks" / "a.png").unlink()
    (root / "val" / "images" / "c.png").unlink()
    error = pytest.raises(DataError, load_splits, root).value
    assert {Path(p.path).parent.name for p in error.problems} == {"train", "val"}


def test_load_splits_rejects_unknown_arguments(good: Path) -> None:
    with pytest.raises(TypeError, match="num_class"):
        load_splits(good, num_class=3)


def test_a_pool_of_one_pair_cannot_be_split(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "one", {"a": 1})
    with pytest.raises(DataError, match="has 1 pair: too few to split") as info:
        load_splits(root)
    assert "train/ and val/" in info.value.problems[0].fix
    train, val = load_splits(root, val_fraction=0)  # asked for no validation: fine
    assert train.stems == ["a"] and len(val) == 0


def test_training_masks_without_a_labelled_pixel(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "pool", {"a": 1, "b": 2})
    save(root / "masks" / "a.png", np.full((H, W), 255, np.uint8))  # all ignore
    seeds = {s: data._split_stems(["a", "b"], 0.5, s) for s in range(20)}
    bad = next(s for s, (train, _) in seeds.items() if train == ["a"])
    good = next(s for s, (train, _) in seeds.items() if train == ["b"])
    with pytest.raises(DataError, match=r"training masks \(a\) hold only 255") as info:
        load_splits(root, val_fraction=0.5, seed=bad)
    assert Path(info.value.problems[0].path).name == "masks"
    train, _ = load_splits(root, val_fraction=0.5, seed=good)
    assert train.pixel_counts.sum() > 0


# --- the working scale: set_scale, read_mask, files changed after the checks (issue 12) --------


def test_set_scale_resizes_each_file_once_and_caches_the_resized_pair(
    good: Path, monkeypatch
) -> None:
    ds = SegmentationDataset(good, cache=True)
    ds.set_scale(0.5)
    calls = []
    real = data.decode_image
    monkeypatch.setattr(
        data, "decode_image", lambda path, **kw: calls.append(path) or real(path, **kw)
    )
    monkeypatch.setattr(data, "decode_mask", None)  # masks were decoded once, when checked
    first = [ds[i] for i in range(len(ds))]
    assert len(calls) == len(ds)
    for image, mask in first:
        assert image.shape == (3, H // 2, W // 2) and mask.shape == (H // 2, W // 2)
    second = [ds[i] for i in range(len(ds))]
    assert len(calls) == len(ds)  # a second epoch decodes nothing
    for (a_image, a_mask), (b_image, b_mask) in zip(first, second, strict=True):
        assert torch.equal(a_image, b_image) and torch.equal(a_mask, b_mask)
    for stem in ds.stems:  # the cache holds the resized tensors, not the native ones
        assert ds._images[stem].shape == (3, H // 2, W // 2)
        assert ds._masks[stem].shape == (H // 2, W // 2)
    image, mask = ds.read_sample(1)
    assert int(mask.max()) <= 2 and set(mask.unique().tolist()) <= {0, 1, 2}  # nearest


def test_set_scale_after_reading_replaces_what_was_cached(good: Path) -> None:
    ds = SegmentationDataset(good, cache=True)
    assert ds[0][0].shape == (3, H, W)  # cached at native size
    ds.set_scale(0.5)
    image, mask = ds[0]
    assert image.shape == (3, H // 2, W // 2) and mask.shape == (H // 2, W // 2)
    ds.set_scale(1.0, masks=False)  # back to native: the images are read again
    assert ds[0][0].shape == (3, H, W)


def test_set_scale_without_masks_keeps_the_masks_native(good: Path) -> None:
    for cache in (True, False):
        ds = SegmentationDataset(good, cache=cache)
        native = [ds.read_sample(i)[1] for i in range(len(ds))]
        ds.set_scale(0.5, masks=False)
        for i in range(len(ds)):
            image, mask = ds.read_sample(i)
            assert image.shape == (3, H // 2, W // 2)
            assert torch.equal(mask, native[i])  # the labels as they were drawn
            assert ds.read_mask(i).shape == (H, W)


def test_set_scale_of_a_subset_leaves_its_pool_alone(good: Path) -> None:
    pool = SegmentationDataset(good, cache=True)
    part = pool.subset(["a", "c"])
    part.set_scale(0.5)
    assert part[0][0].shape == (3, H // 2, W // 2)
    assert pool[0][0].shape == (3, H, W) and pool[0][1].shape == (H, W)
    assert pool.read_mask(2).shape == (H, W)


def test_set_scale_refuses_a_scale_that_is_not_positive(good: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        SegmentationDataset(good).set_scale(0)


@pytest.mark.parametrize("cache", [False, True])
def test_an_image_replaced_by_one_of_another_size_names_the_file(good: Path, cache: bool) -> None:
    ds = SegmentationDataset(good, cache=cache)
    ds.set_scale(0.5)
    save(good / "images" / "b.png", np.zeros((2 * H, 2 * W, 3), np.uint8))  # decodes fine
    assert ds[0][0].shape == (3, H // 2, W // 2)  # the others still read
    with pytest.raises(DataError) as info:
        ds[1]
    assert "b.png" in str(info.value) and "check-data" in str(info.value)
    assert str((2 * H, 2 * W)) in str(info.value)


def test_a_mask_replaced_by_one_of_another_size_names_the_file(good: Path) -> None:
    ds = SegmentationDataset(good)  # no cache: masks are decoded when read
    save(good / "masks" / "c.png", np.zeros((H + 1, W), np.uint8))
    with pytest.raises(DataError, match=r"c\.png"):
        ds.read_mask(2)
    with pytest.raises(DataError, match=r"c\.png"):
        ds[2]


def test_read_mask_reads_no_image(good: Path, monkeypatch) -> None:
    def no_images(path, **options):
        raise AssertionError(f"read_mask decoded an image: {path}")

    monkeypatch.setattr(data, "decode_image", no_images)
    ds = SegmentationDataset(good)
    masks = [ds.read_mask(i) for i in range(len(ds))]
    assert [int(m[0, 0]) for m in masks] == [10 % 3, 20 % 3, 30 % 3, 40 % 3]
    assert all(m.shape == (H, W) for m in masks)
    ds.set_scale(0.5)
    assert ds.read_mask(0).shape == (H // 2, W // 2)


def test_set_scale_again_starts_from_the_native_masks(good: Path) -> None:
    ds = SegmentationDataset(good, cache=True)
    ds.set_scale(0.5)
    ds.set_scale(0.5)
    assert ds.read_mask(0).shape == (H // 2, W // 2)
    ds.set_scale(1.0)
    image, mask = ds[0]
    assert image.shape[1:] == mask.shape == (H, W)


def test_large_jpegs_at_a_small_scale_are_decoded_small_and_match_the_full_decode(
    tmp_path: Path,
) -> None:
    y, x = np.mgrid[0:160, 0:200]
    for stem in ("a", "b"):
        photo = np.stack([x * 255 // 200, y * 255 // 160, (x + y) % 256], -1).astype(np.uint8)
        save(tmp_path / "images" / f"{stem}.jpg", photo, quality=95)
        save(tmp_path / "masks" / f"{stem}.png", (x > 100).astype(np.uint8))
    ds = SegmentationDataset(tmp_path)
    full = [ds.read_sample(i)[0] for i in range(len(ds))]
    ds.set_scale(0.2)
    for i in range(len(ds)):
        image, mask = ds.read_sample(i)
        assert image.shape == (3, 32, 40) and mask.shape == (32, 40)
        from_full = data._resize(full[i].as_subclass(torch.Tensor), (32, 40))
        assert (image.float() - from_full.float()).abs().mean() < 2
    # a file swapped for another size is still caught when it is decoded small
    photo = np.zeros((161, 200, 3), np.uint8)
    save(tmp_path / "images" / "b.jpg", photo)
    ds.set_scale(0.2)
    with pytest.raises(DataError, match=r"b\.jpg"):
        ds.read_sample(1)
