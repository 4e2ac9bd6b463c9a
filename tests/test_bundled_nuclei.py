"""The bundled real set `data_samples/nuclei` and the script that made it (`make_nuclei.py`).

The committed files are checked as they are (sizes, decoded mask values, kinds, bytes, metadata,
check-data); the script is run on a tiny fake source built here, never on the real one.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segtutor.checks import scan_splits
from segtutor.data import load_splits

REPO = Path(__file__).resolve().parents[1]
NUCLEI = REPO / "data_samples" / "nuclei"
KINDS = {"fluorescence", "brightfield", "histology"}


def _script():
    spec = importlib.util.spec_from_file_location("make_nuclei", NUCLEI.parent / "make_nuclei.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sources() -> list[dict]:
    with (NUCLEI / "sources.csv").open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


# ---- the committed set ----------------------------------------------------------------------


def test_metadata():
    meta = json.loads((NUCLEI / "dataset.json").read_text(encoding="utf-8"))
    assert meta["class_names"] == ["background", "nucleus"]
    assert len(meta["palette"]) == 2 and meta["palette"][0] == [0, 0, 0]
    assert meta["ignore_index"] == 255


def test_pairs_sizes_and_mask_values():
    for split, expected in (("train", 60), ("val", 20)):
        images = sorted((NUCLEI / split / "images").glob("*.png"))
        masks = sorted((NUCLEI / split / "masks").glob("*.png"))
        assert [p.name for p in images] == [p.name for p in masks]
        assert len(images) == expected
        nucleus = 0
        for image_path, mask_path in zip(images, masks, strict=True):
            with Image.open(image_path) as image, Image.open(mask_path) as mask:
                assert max(image.size) <= 256 and image.size == mask.size
                assert mask.mode == "L"
                values = np.asarray(mask)
            assert set(np.unique(values).tolist()) <= {0, 1}, mask_path.name
            nucleus += int(values.sum())
        assert nucleus > 0  # something to learn in every split


def test_every_kind_in_both_splits_and_detected_from_the_pixels():
    script = _script()
    rows = _sources()
    assert len(rows) == 80
    for split in ("train", "val"):
        assert {r["kind"] for r in rows if r["split"] == split} == KINDS
    for row in rows:
        path = NUCLEI / row["split"] / "images" / f"{row['stem']}.png"
        with Image.open(path) as image:
            assert image.mode == ("RGB" if row["kind"] == "histology" else "L")
            rgb = np.asarray(image.convert("RGB"))
        assert script.image_kind(rgb) == row["kind"], row["stem"]
        assert row["stem"].startswith(row["kind"]) and row["image_id"].startswith(
            row["stem"].split("_")[1]
        )


def test_small_enough_to_bundle():
    total = sum(p.stat().st_size for p in NUCLEI.rglob("*") if p.is_file())
    assert total <= 6_000_000


def test_readme_gives_provenance_licence_and_citation():
    text = (NUCLEI / "README.md").read_text(encoding="utf-8")
    for needed in ("BBBC038", "CC0", "Caicedo", "Nature Methods", "make_nuclei.py",
                   "30354551efef351c1241da7c6d48cf938d76f02a"):  # fmt: skip
        assert needed in text


def test_check_data_is_clean_and_segtutor_loads_it():
    reports = scan_splits(NUCLEI)
    assert set(reports) == {"train", "val"}
    for report in reports.values():
        assert not report.problems, [str(p) for p in report.problems]
    train_ds, val_ds = load_splits(NUCLEI)
    assert (len(train_ds), len(val_ds)) == (60, 20)
    image, mask = val_ds[0]
    assert image.shape == (3, 256, 256) and set(mask.unique().tolist()) <= {0, 1}
    assert train_ds.class_names == ["background", "nucleus"]


# ---- the script, on a fake source -----------------------------------------------------------


def _fake_source(root: Path) -> None:
    """Four images of each kind, two of them larger than 256 px, with 0/1 masks."""
    rng = np.random.default_rng(0)
    draws = [
        lambda h, w: np.repeat(rng.integers(0, 60, (h, w, 1)), 3, axis=2),  # fluorescence
        lambda h, w: np.repeat(rng.integers(180, 256, (h, w, 1)), 3, axis=2),  # brightfield
        lambda h, w: rng.integers(60, 256, (h, w, 3)),  # histology
    ]
    for k, draw in enumerate(draws):
        for i, (h, w) in enumerate([(40, 30), (64, 64), (300, 270), (270, 300)]):
            split = "val" if i == 3 else "train"
            stem = f"{k}{i}" + "ab" * 10
            mask = np.zeros((h, w), np.uint8)
            mask[h - 20 : h - 5, w - 15 : w - 3] = 1  # a nucleus near the bottom-right corner
            for folder, array in (("images", draw(h, w).astype(np.uint8)), ("masks", mask)):
                path = root / split / folder / f"{stem}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(path)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_script_is_deterministic_and_crops_at_native_resolution(tmp_path):
    script = _script()
    source = tmp_path / "source"
    _fake_source(source)
    counts = {"fluorescence": 4, "brightfield": 4, "histology": 4}
    script.make(source, tmp_path / "a", counts)
    script.make(source, tmp_path / "b", counts)
    first = _files(tmp_path / "a")
    assert first == _files(tmp_path / "b")
    assert len([name for name in first if name.endswith(".png")]) == 24

    with (tmp_path / "a" / "sources.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert sorted(r["kind"] for r in rows if r["split"] == "val") == sorted(KINDS)
    # A 300x270 (WxH) source becomes the 256x256 window with the nucleus, pixels unchanged.
    row = next(r for r in rows if r["source_size"] == "300x270" and r["kind"] == "histology")
    left, top, right, bottom = map(int, row["crop_box"].split(","))
    assert (right - left, bottom - top) == (256, 256)
    assert (left, top) == (300 - 256, 270 - 256)  # the bottom-right window holds the nucleus
    original = np.asarray(
        Image.open(source / row["source_split"] / "images" / f"{row['image_id']}.png")
    )
    out = tmp_path / "a" / row["split"]
    cropped = np.asarray(Image.open(out / "images" / f"{row['stem']}.png"))
    np.testing.assert_array_equal(cropped, original[top:bottom, left:right])
    mask = np.asarray(Image.open(out / "masks" / f"{row['stem']}.png"))
    assert mask.shape == (256, 256) and int(mask.sum()) == 15 * 12
    # Small sources are kept whole; grey ones are written with one channel.
    small = next(r for r in rows if r["source_size"] == "30x40" and r["kind"] == "fluorescence")
    with Image.open(tmp_path / "a" / small["split"] / "images" / f"{small['stem']}.png") as image:
        assert image.mode == "L" and image.size == (30, 40)


def test_script_refuses_to_mix_with_an_older_subset(tmp_path):
    script = _script()
    source = tmp_path / "source"
    _fake_source(source)
    counts = {"fluorescence": 4, "brightfield": 4, "histology": 4}
    script.make(source, tmp_path / "out", counts)
    with pytest.raises(SystemExit, match="delete it first"):
        script.make(source, tmp_path / "out", counts)


def test_script_says_when_a_kind_is_short(tmp_path):
    script = _script()
    source = tmp_path / "source"
    _fake_source(source)
    with pytest.raises(SystemExit, match="only 4 brightfield images"):
        script.make(source, tmp_path / "out", {"brightfield": 5})
