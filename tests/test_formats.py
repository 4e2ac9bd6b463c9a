"""Tests for segtutor.formats: which files are samples, dataset.json, decoding images and masks.

Most go through `SegmentationDataset`, so that the decoded pair is checked where a learner
meets it; the folders come from tests/data_folders.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from data_folders import H, W, image_of, make_dataset, mask_of, mkdir, problems_of, save
from PIL import Image

from segtutor import formats
from segtutor.data import SegmentationDataset
from segtutor.errors import DataError
from segtutor.formats import VOC_IGNORE_COLOR, VOC_PALETTE, read_image, read_metadata


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "good", {"a": 10, "b": 20, "c": 30, "d": 40})


@pytest.mark.parametrize(
    ("mode", "expected_red"),
    [("L", None), ("RGBA", 90), ("P", 90), ("I;16", None), ("LA", None)],
)
def test_images_become_rgb_uint8(tmp_path: Path, mode: str, expected_red: int | None) -> None:
    root = tmp_path / "ds"
    rgb = image_of(90)
    if mode == "I;16":
        grey = np.full((H, W), 257 * 60, dtype=np.uint16)  # 60 in 8 bits
        Image.fromarray(grey).save(mkdir(root / "images") / "a.png")
        expected = (60, 60, 60)
    elif mode in ("L", "LA"):
        save(root / "images" / "a.png", np.full((H, W), 60, np.uint8), mode)
        expected = (60, 60, 60)
    elif mode == "P":  # an adaptive palette holds the two colours exactly
        img = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
        img.save(mkdir(root / "images") / "a.png")
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


def test_palette_mask_yields_its_indices_not_colours(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    save(root / "images" / "a.jpg", image_of(10))
    indices = np.array([[0, 1, 15, 20, 255, 0, 1, 15]] * H, dtype=np.uint8)
    mask = Image.fromarray(indices, mode="P")
    mask.putpalette([c for rgb in formats._voc_palette(256) for c in rgb])
    mkdir(root / "masks")
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
    Image.fromarray(labels).save(mkdir(root / "masks") / "a.png")
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


def test_voc_palette_is_the_standard_one() -> None:
    assert len(VOC_PALETTE) == 21
    assert VOC_PALETTE[:4] == [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0)]
    assert VOC_PALETTE[15] == (192, 128, 128) and VOC_PALETTE[20] == (0, 64, 128)
    assert VOC_IGNORE_COLOR == (224, 224, 192)


def test_read_image_names_a_bad_file(tmp_path: Path) -> None:
    path = save(tmp_path / "a.png", image_of(5), "L")
    assert read_image(path).shape == (H, W, 3)
    (tmp_path / "b.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="b.png"):
        read_image(tmp_path / "b.png")


def test_is_image_file_is_the_one_listing_rule(tmp_path: Path) -> None:
    for name in ("a.png", "b.JPG", "c.jpeg", "d.bmp", "e.tif", "f.TIFF", ".hidden.png", "._a.png",
                 "notes.txt", "Thumbs.db", "noext"):  # fmt: skip
        (tmp_path / name).write_bytes(b"x")
    mkdir(tmp_path / "folder.png")
    chosen = sorted(p.name for p in tmp_path.iterdir() if formats.is_image_file(p))
    assert chosen == ["a.png", "b.JPG", "c.jpeg", "d.bmp", "e.tif", "f.TIFF"]
    assert not formats.is_image_file(tmp_path / "missing.png")


def test_decode_mask_directly(tmp_path: Path) -> None:
    path = save(tmp_path / "m.png", mask_of(2, foreground=255))
    labels = formats.decode_mask(path)
    assert labels.dtype == np.uint8 and labels.shape == (H, W)
    assert set(np.unique(labels).tolist()) == {2, 255}
    assert set(np.unique(formats.decode_mask(path, binary_255=True)).tolist()) == {1, 2}
    colour = save(tmp_path / "c.png", np.full((H, W, 3), (255, 0, 0), np.uint8))
    assert (formats.decode_mask(colour, [(0, 0, 0), (255, 0, 0)]) == 1).all()
    with pytest.raises(formats.PaletteError, match=r"\(255, 0, 0\)"):
        formats.decode_mask(colour, [(0, 0, 0)])
    image = formats.decode_image(colour)
    assert image.dtype == np.uint8 and image.shape == (H, W, 3)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ('["bg"]', "must hold a JSON object"),
        ('{"class_names": "bg"}', '"class_names" must be a list of strings'),
        ('{"palette": [[0, 0]]}', '"palette" must be a list of [r, g, b]'),
        ('{"palette": [[0, 0, 300]]}', '"palette" must be a list of [r, g, b]'),
        ('{"palette": "red"}', '"palette" must be a list of [r, g, b]'),
        ('{"class_names": ["a", "b"], "palette": [[0, 0, 0]]}', "2 class_names but 1 palette"),
        ('{"ignore_index": 0}', '"ignore_index" is 0; segtutor uses 255'),
    ],
)
def test_read_metadata_names_the_file_and_the_field(tmp_path: Path, meta: str, message) -> None:
    (tmp_path / "dataset.json").write_text(meta)
    with pytest.raises(DataError) as info:
        read_metadata(tmp_path)
    (problem,) = info.value.problems
    assert Path(problem.path).name == "dataset.json" and message in problem.message


def test_read_metadata_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "dataset.json").write_text('{"name": "toy"}', encoding="utf-8-sig")
    assert read_metadata(tmp_path).name == "toy"
    assert read_metadata(tmp_path / "a" / "b") == formats.DatasetMeta()  # neither has one


def _photo(height: int, width: int) -> np.ndarray:
    """A smooth RGB picture with some detail: gradients and a disc, like a downscaled photo."""
    y, x = np.mgrid[0:height, 0:width]
    disc = (y - height / 2) ** 2 + (x - width / 3) ** 2 < (height / 4) ** 2
    red, green = 255 * x / width, 255 * y / height
    return np.stack([red, green, np.where(disc, 220, 40)], axis=-1).astype(np.uint8)


@pytest.mark.parametrize(("shrink_to", "expected"), [((25, 30), (50, 60)), ((26, 31), (100, 120))])
def test_a_jpeg_shrunk_while_decoding_keeps_twice_the_target(
    tmp_path: Path, shrink_to: tuple[int, int], expected: tuple[int, int]
) -> None:
    # 200x240 halves to 100x120 and quarters to 50x60: a quarter keeps twice 25x30, not 26x31
    path = save(tmp_path / "p.jpg", _photo(200, 240), quality=95)
    full = formats.decode_image(path)
    small = formats.decode_image(path, shrink_to=shrink_to)
    assert small.shape == (*expected, 3) and small.dtype == np.uint8
    # nearly what shrinking the full decode gives
    target = [expected[0], expected[1]]
    shrunk_full = torch.nn.functional.interpolate(
        torch.from_numpy(full).permute(2, 0, 1)[None].float(), target, mode="area"
    )
    assert (shrunk_full[0] - torch.from_numpy(small).permute(2, 0, 1)).abs().mean() < 3


def test_only_jpegs_are_shrunk_while_decoding(tmp_path: Path) -> None:
    path = save(tmp_path / "p.png", _photo(200, 240))
    assert formats.decode_image(path, shrink_to=(25, 30)).shape == (200, 240, 3)
    assert np.array_equal(
        formats.decode_image(path, shrink_to=(25, 30)), formats.decode_image(path)
    )
