"""Tests for segtutor.data: pairing, decoding, validation messages, cache, splits.

Every dataset is built in `tmp_path` with PIL, a few 8x6 pixel files each.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from segtutor import data
from segtutor.data import (
    VOC_PALETTE,
    SegmentationDataset,
    load_splits,
    read_metadata,
    scan,
)
from segtutor.errors import DataError

H, W = 6, 8


def save(path: Path, array: np.ndarray, mode: str | None = None, **kwargs) -> Path:
    """Write `array` as an image file (format from the extension); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    img.save(path, **kwargs)
    return path


def image_of(value: int) -> np.ndarray:
    """An (H, W, 3) uint8 image whose red channel says which sample it is."""
    out = np.zeros((H, W, 3), dtype=np.uint8)
    out[..., 0] = value
    out[..., 1] = 7
    return out


def mask_of(label: int, foreground: int = 1) -> np.ndarray:
    """An (H, W) uint8 mask: the left half is `label`, the right half `foreground`."""
    out = np.full((H, W), foreground, dtype=np.uint8)
    out[:, : W // 2] = label
    return out


def make_dataset(root: Path, stems: dict[str, int], image_ext: str = ".png") -> Path:
    """`root/images/<stem><ext>` with red = value, `root/masks/<stem>.png` with left half = value % 3."""
    for stem, value in stems.items():
        save(root / "images" / f"{stem}{image_ext}", image_of(value))
        save(root / "masks" / f"{stem}.png", mask_of(value % 3))
    return root


def problems_of(root: Path, **kwargs) -> list:
    with pytest.raises(DataError) as info:
        SegmentationDataset(root, **kwargs)
    return info.value.problems


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "good", {"a": 10, "b": 20, "c": 30, "d": 40})


# -- the happy path ------------------------------------------------------------------------------


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


def test_hidden_files_and_non_images_are_ignored(good: Path) -> None:
    for folder in ("images", "masks"):
        (good / folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
        (good / folder / "Thumbs.db").write_bytes(b"junk")
        (good / folder / "notes.txt").write_text("labelled by me")
        (good / folder / "._a.png").write_bytes(b"AppleDouble")
        (good / folder / "old").mkdir()
        save(good / folder / "old" / "z.png", mask_of(1))
    report = scan(good)
    assert report.ok, report.problems
    assert report.stems == ["a", "b", "c", "d"]
    assert len(report.ignored) == 10
    assert SegmentationDataset(good).stems == ["a", "b", "c", "d"]


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


# -- image decoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected_red"),
    [("L", None), ("RGBA", 90), ("P", 90), ("I;16", None), ("LA", None)],
)
def test_images_become_rgb_uint8(tmp_path: Path, mode: str, expected_red: int | None) -> None:
    root = tmp_path / "ds"
    rgb = image_of(90)
    if mode == "I;16":
        grey = np.full((H, W), 257 * 60, dtype=np.uint16)  # 60 in 8 bits
        Image.fromarray(grey).save(_mkdir(root / "images") / "a.png")
        expected = (60, 60, 60)
    elif mode in ("L", "LA"):
        save(root / "images" / "a.png", np.full((H, W), 60, np.uint8), mode)
        expected = (60, 60, 60)
    elif mode == "P":  # an adaptive palette holds the two colours exactly
        img = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
        img.save(_mkdir(root / "images") / "a.png")
        expected = (90, 7, 0)
    else:
        save(root / "images" / "a.png", rgb, mode)
        expected = (expected_red, 7, 0)
    save(root / "masks" / "a.png", mask_of(0))
    ds = SegmentationDataset(root, num_classes=2)
    assert ds.report.image_modes == [mode]
    image, _ = ds.read_sample(0)
    assert image.dtype == torch.uint8 and image.shape == (3, H, W)
    assert tuple(int(v) for v in image[:, 0, 0]) == expected


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- mask decoding -------------------------------------------------------------------------------


def test_palette_mask_yields_its_indices_not_colours(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    save(root / "images" / "a.jpg", image_of(10))
    indices = np.array([[0, 1, 15, 20, 255, 0, 1, 15]] * H, dtype=np.uint8)
    mask = Image.fromarray(indices, mode="P")
    mask.putpalette([c for rgb in data._voc_palette(256) for c in rgb])
    _mkdir(root / "masks")
    mask.save(root / "masks" / "a.png")
    ds = SegmentationDataset(root, num_classes=21)
    assert ds.report.mask_modes == ["P"]
    _, out = ds.read_sample(0)
    assert torch.equal(out, torch.from_numpy(indices).long())


def test_sixteen_bit_masks(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    save(root / "images" / "a.png", image_of(1))
    save(root / "images" / "b.png", image_of(2))
    labels = np.array([[0, 1, 2, 3, 255, 0, 0, 0]] * H, dtype=np.uint16)
    Image.fromarray(labels).save(_mkdir(root / "masks") / "a.png")
    Image.fromarray(labels).save(root / "masks" / "b.tif")
    ds = SegmentationDataset(root)
    assert ds.report.mask_modes[0].startswith("I;16") and ds.num_classes == 4
    for i in range(2):
        _, mask = ds.read_sample(i)
        assert torch.equal(mask, torch.from_numpy(labels.astype(np.int64)))

    Image.fromarray(np.full((H, W), 1000, dtype=np.uint16)).save(root / "masks" / "b.tif")
    problems = problems_of(root, num_classes=4)
    assert len(problems) == 1
    assert Path(problems[0].path).name == "b.tif" and "1000" in problems[0].message


def test_colour_masks_through_the_voc_palette(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    save(root / "images" / "a.png", image_of(1))
    labels = np.array([[0, 1, 15, 20, 0, 0, 1, 1]] * H, dtype=np.uint8)
    colour = np.array(VOC_PALETTE, dtype=np.uint8)[labels]  # (H, W, 3)
    colour[0, 0] = (224, 224, 192)  # VOC's border colour means ignore
    save(root / "masks" / "a.png", colour)
    ds = SegmentationDataset(root, palette=VOC_PALETTE)
    assert ds.num_classes == 21 and ds.palette == VOC_PALETTE
    expected = torch.from_numpy(labels.astype(np.int64))
    expected[0, 0] = 255
    assert torch.equal(ds.read_sample(0)[1], expected)

    colour[2, 3] = (1, 2, 3)  # not a VOC colour
    save(root / "masks" / "a.png", colour)
    (problem,) = problems_of(root, palette=VOC_PALETTE)
    assert Path(problem.path).name == "a.png" and "(1, 2, 3)" in problem.message
    assert "not in the palette" in problem.message


def test_colour_mask_without_palette(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    save(root / "images" / "a.png", image_of(1))
    colour = np.zeros((H, W, 3), np.uint8)
    colour[:, :4] = (128, 0, 0)  # VOC's "aeroplane"
    save(root / "masks" / "a.png", colour, "RGBA")
    (problem,) = problems_of(root)
    assert Path(problem.path).name == "a.png"
    assert "no palette" in problem.message and "(128, 0, 0)" in problem.message
    assert "VOC_PALETTE" in problem.message and "palette" in problem.fix


def test_greyscale_mask_saved_as_rgb_needs_no_palette(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    save(root / "images" / "a.png", image_of(1))
    save(root / "masks" / "a.png", mask_of(2), "RGB")
    ds = SegmentationDataset(root)
    assert ds.num_classes == 3 and int(ds.read_sample(0)[1][0, 0]) == 2


def test_palette_from_dataset_json_in_parent(tmp_path: Path) -> None:
    meta = {"class_names": ["bg", "red", "green"], "palette": [[0, 0, 0], [255, 0, 0], [0, 255, 0]]}
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    root = tmp_path / "train"
    save(root / "images" / "a.png", image_of(1))
    colour = np.zeros((H, W, 3), np.uint8)
    colour[:, 4:] = (0, 255, 0)
    save(root / "masks" / "a.png", colour)
    assert read_metadata(root).class_names == ["bg", "red", "green"]
    ds = SegmentationDataset(root)
    assert ds.class_names == ["bg", "red", "green"] and ds.num_classes == 3
    assert ds.palette == [(0, 0, 0), (255, 0, 0), (0, 255, 0)]
    assert int(ds.read_sample(0)[1][0, 7]) == 2
    assert ds.pixel_counts.tolist() == [H * 4, 0, H * 4]


def test_bad_dataset_json_names_the_file(good: Path) -> None:
    (good / "dataset.json").write_text('{"class_names": ["a", "b",]}')
    (problem,) = problems_of(good)
    assert Path(problem.path).name == "dataset.json" and "not valid JSON" in problem.message


# -- one message for each bad input, and nothing else ---------------------------------------------


def test_out_of_range_label_names_file_and_value(good: Path) -> None:
    save(good / "masks" / "b.png", mask_of(7))
    (problem,) = problems_of(good, num_classes=3)
    assert Path(problem.path).name == "b.png"
    assert "7" in problem.message and "0..2" in problem.message
    assert "num_classes=8" in problem.fix


def test_binary_0_255_masks_and_the_switch(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for stem in "ab":
        save(root / "images" / f"{stem}.png", image_of(1))
        save(root / "masks" / f"{stem}.png", mask_of(0, foreground=255))
    (problem,) = problems_of(root)
    assert "0/255 binary" in problem.message
    assert "binary_255=True" in problem.fix and "--binary-255" in problem.fix

    ds = SegmentationDataset(root, binary_255=True)
    assert ds.num_classes == 2
    _, mask = ds[0]
    assert set(mask.unique().tolist()) == {0, 1}
    assert ds.pixel_counts.tolist() == [2 * H * 4, 2 * H * 4]

    edgy = mask_of(0, foreground=255)
    edgy[0, 4] = 128  # an anti-aliased edge pixel from a bilinear resize
    save(root / "masks" / "b.png", edgy)
    (problem,) = problems_of(root, binary_255=True)
    assert Path(problem.path).name == "b.png" and "has 128" in problem.message


def test_jpeg_mask_says_save_as_png(good: Path) -> None:
    (good / "masks" / "c.png").unlink()
    save(good / "masks" / "c.jpg", mask_of(1) * 100)
    (problem,) = problems_of(good)
    assert Path(problem.path).name == "c.jpg"
    assert "JPEG" in problem.message and "PNG" in problem.fix


def test_image_and_mask_of_different_sizes(good: Path) -> None:
    save(good / "masks" / "a.png", np.zeros((H, W + 2), np.uint8))
    (problem,) = problems_of(good)
    assert Path(problem.path).name == "a.png"
    assert "10x6" in problem.message and "8x6" in problem.message


def test_unreadable_and_truncated_files(good: Path) -> None:
    (good / "images" / "a.png").write_bytes(b"this is not a png")
    whole = (good / "masks" / "b.png").read_bytes()
    (good / "masks" / "b.png").write_bytes(whole[: len(whole) // 2])
    problems = problems_of(good)
    assert sorted(Path(p.path).name for p in problems) == ["a.png", "b.png"]
    assert all("cannot be read" in p.message for p in problems)


def test_duplicate_stems(good: Path) -> None:
    save(good / "images" / "a.jpg", image_of(10))
    (problem,) = problems_of(good)
    assert "a.jpg" in str(problem) and "a.png" in str(problem) and "same stem" in problem.message


def test_folder_layout_problems(tmp_path: Path, good: Path) -> None:
    (problem,) = problems_of(tmp_path / "nowhere")
    assert "does not exist" in problem.message

    (problem,) = problems_of(good / "images")
    assert "point at the parent folder" in problem.fix and str(good) in problem.fix

    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "masks").mkdir()
    (empty / "images" / "notes.txt").write_text("")
    problems = problems_of(empty)
    assert sorted(p.message for p in problems) == [
        "has no images (found only: .txt)",
        "has no masks",
    ]

    no_masks = tmp_path / "no_masks"
    save(no_masks / "images" / "a.png", image_of(1))
    save(no_masks / "labels" / "a.png", mask_of(1))
    (problem,) = problems_of(no_masks)
    assert "no masks/ folder" in problem.message and "labels/" in problem.message

    splits = tmp_path / "splits"
    make_dataset(splits / "train", {"a": 1})
    make_dataset(splits / "val", {"b": 2})
    (problem,) = problems_of(splits)
    assert "load_splits" in problem.fix


def test_every_problem_at_once(good: Path) -> None:
    save(good / "masks" / "a.png", np.zeros((H + 1, W), np.uint8))  # size
    save(good / "masks" / "b.png", mask_of(9))  # value
    (good / "masks" / "c.png").unlink()  # unpaired
    error = pytest.raises(DataError, SegmentationDataset, good, num_classes=3).value
    assert len(error.problems) == 3
    text = str(error)
    assert text.startswith("3 problems found:")
    assert "a.png" in text and "b.png" in text and "c" in text and "fix:" in text


def test_num_classes_from_class_names_checked_against_masks(good: Path) -> None:
    (problem,) = problems_of(good, class_names=["bg", "thing"])
    assert "0..1" in problem.message and Path(problem.path).name == "b.png"  # b's label: 20 % 3


# -- cache, changed files -------------------------------------------------------------------------


def test_cache_returns_identical_tensors_without_decoding_again(good: Path, monkeypatch) -> None:
    plain = SegmentationDataset(good)
    cached = SegmentationDataset(good, cache=True)
    calls = []
    real = data._decode_image
    monkeypatch.setattr(data, "_decode_image", lambda path: calls.append(path) or real(path))
    monkeypatch.setattr(data, "_decode_mask", None)  # masks were decoded once, when checked
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


# -- splits ---------------------------------------------------------------------------------------


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


def test_voc_palette_is_the_standard_one() -> None:
    assert len(VOC_PALETTE) == 21
    assert VOC_PALETTE[:4] == [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0)]
    assert VOC_PALETTE[15] == (192, 128, 128) and VOC_PALETTE[20] == (0, 64, 128)
    assert data.VOC_IGNORE_COLOR == (224, 224, 192)


def test_truncated_jpeg_image_is_found_from_its_end_marker(good: Path) -> None:
    path = save(good / "images" / "b.jpg", image_of(20))
    (good / "images" / "b.png").unlink()
    path.write_bytes(path.read_bytes()[:-40])
    (problem,) = problems_of(good)
    assert Path(problem.path).name == "b.jpg" and "truncated" in problem.message


def test_truncated_bmp_is_found_by_a_full_decode_or_named_when_loaded(good: Path) -> None:
    path = save(good / "images" / "c.bmp", image_of(30))
    (good / "images" / "c.png").unlink()
    path.write_bytes(path.read_bytes()[:-40])
    (problem,) = scan(good, decode_images=True).problems
    assert Path(problem.path).name == "c.bmp" and "truncated" in problem.message
    ds = SegmentationDataset(good)  # headers alone cannot tell; loading it names the file
    with pytest.raises(DataError, match="c.bmp"):
        ds[2]


def test_load_splits_rejects_unknown_arguments(good: Path) -> None:
    with pytest.raises(TypeError, match="num_class"):
        load_splits(good, num_class=3)


def test_read_image_names_a_bad_file(tmp_path: Path) -> None:
    path = save(tmp_path / "a.png", image_of(5), "L")
    assert data.read_image(path).shape == (H, W, 3)
    (tmp_path / "b.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="b.png"):
        data.read_image(tmp_path / "b.png")
