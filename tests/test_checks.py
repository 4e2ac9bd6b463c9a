"""Tests for segtutor.checks: one message for each bad input, naming the file, and nothing else.

The folders come from tests/data_folders.py. Every broken folder through the command line and
every option is in test_bad_datasets.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_folders import H, W, image_of, make_dataset, mask_of, problems_of, save

from segtutor.checks import scan
from segtutor.data import SegmentationDataset
from segtutor.errors import DataError


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "good", {"a": 10, "b": 20, "c": 30, "d": 40})


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
    save(no_masks / "segmentations" / "a.png", mask_of(1))  # not a name segtutor knows
    (problem,) = problems_of(no_masks)
    assert "no masks/ folder" in problem.message and "segmentations/" in problem.message

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
