"""`segtutor.convert` and `python -m segtutor convert`: every recognised layout out as index PNGs.

Each fake of tests/test_layouts.py is converted, then the converted folder is read back with a
plain `SegmentationDataset` (no layout): its masks must hold the values the layout decodes to,
computed by hand there, and its dataset.json the layout's names and palette.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from test_layouts import (
    MAKERS,
    MAPPED,
    H,
    W,
    generic,
    make_cityscapes,
    make_pets,
    make_voc,
    save_image,
    stripes,
)

from segtutor.cli import main
from segtutor.convert import convert
from segtutor.data import SegmentationDataset, load_splits
from segtutor.errors import DataError
from segtutor.layouts import LAYOUTS


@pytest.mark.parametrize("name", list(MAKERS))
def test_each_layout_converts_to_the_values_it_decodes_to(tmp_path, name):
    given, _, splits = MAKERS[name](tmp_path / "src")
    dst = tmp_path / "dst"
    summary = convert(given, dst)
    assert {s: n for s, (n, _) in summary.items()} == {s: len(v) for s, v in splits.items()}
    layout = LAYOUTS[name]
    meta = json.loads((dst / "dataset.json").read_text())
    assert meta["class_names"] == layout.class_names and meta["ignore_index"] == 255
    assert meta["converted_from"]["format"] == name
    for split, stems in splits.items():
        ds = SegmentationDataset(dst / split)  # plain folders: no layout, no lookup
        assert ds.layout is None and ds.stems == sorted(stems)
        assert ds.class_names == layout.class_names and ds.palette == layout.palette
        for i in range(len(ds)):
            torch.testing.assert_close(ds[i][1], torch.from_numpy(stripes(MAPPED[name])))
        with Image.open(ds.mask_paths[0]) as img:
            assert img.mode == "P" and img.getpalette()[3 * 1 : 3 * 2] == list(layout.palette[1])


def test_images_are_copied_byte_for_byte(tmp_path):
    given, root, _ = make_voc(tmp_path / "src")
    convert(given, tmp_path / "dst")
    image = root / "JPEGImages" / "2007_000032.jpg"
    assert (tmp_path / "dst" / "train" / "images" / image.name).read_bytes() == image.read_bytes()


def test_a_converted_folder_trains_like_its_source(tmp_path):
    given, _, _ = make_cityscapes(tmp_path / "src")
    convert(given, tmp_path / "dst")
    (a_train, a_val), (b_train, b_val) = load_splits(given), load_splits(tmp_path / "dst")
    assert a_train.pixel_counts.tolist() == b_train.pixel_counts.tolist()
    torch.testing.assert_close(a_val[0][0], b_val[0][0])  # the images, decoded the same
    torch.testing.assert_close(a_val[0][1], b_val[0][1])


def test_a_generic_folder_with_colour_masks_becomes_index_masks(tmp_path):
    src = tmp_path / "src"
    colours = [(128, 128, 128), (128, 64, 128), (64, 0, 128)]
    for k, stem in enumerate(["a", "b", "c"]):
        save_image(src / "images" / f"{stem}.png", k)
        (src / "labels").mkdir(parents=True, exist_ok=True)
        rgb = np.array(colours, dtype=np.uint8)[stripes([0, 2, 1, k % 3])]
        Image.fromarray(rgb).save(src / "labels" / f"{stem}_label.png")
    (src / "class_dict.csv").write_text(
        "name,r,g,b\nSky,128,128,128\nRoad,128,64,128\nCar,64,0,128\n"
    )
    dst = tmp_path / "dst"
    assert convert(src, dst) == {"all": (3, 0)}
    ds = SegmentationDataset(dst)
    assert ds.class_names == ["Sky", "Road", "Car"] and ds.palette == colours
    torch.testing.assert_close(ds[2][1], torch.from_numpy(stripes([0, 2, 1, 2])))
    assert json.loads((dst / "dataset.json").read_text())["converted_from"]["format"] == "folder"


def test_a_folder_without_a_palette_gets_greyscale_masks(tmp_path):
    src = generic(tmp_path / "src", "labels", "_mask")
    convert(src, tmp_path / "dst")
    with Image.open(tmp_path / "dst" / "masks" / "b.png") as img:
        assert img.mode == "L"
        np.testing.assert_array_equal(np.asarray(img), stripes([0, 2]))
    assert "palette" not in json.loads((tmp_path / "dst" / "dataset.json").read_text())


def test_a_second_run_keeps_what_is_done_and_redoes_what_is_not(tmp_path):
    given, _, _ = make_pets(tmp_path / "src")
    dst = tmp_path / "dst"
    convert(given, dst)
    assert convert(given, dst) == {"train": (0, 2), "val": (0, 1)}
    (dst / "train" / "masks" / "beagle_10.png").unlink()
    Image.fromarray(np.zeros((H, W), np.uint8)).save(dst / "val" / "masks" / "Bengal_3.png")
    assert convert(given, dst) == {"train": (1, 1), "val": (1, 0)}
    torch.testing.assert_close(SegmentationDataset(dst / "val")[0][1],
                               torch.from_numpy(stripes(MAPPED["pets"])))  # fmt: skip


def test_an_interrupted_run_leaves_whole_files_and_resumes(tmp_path):
    given, _, _ = make_voc(tmp_path / "src")
    dst = tmp_path / "dst"

    def stop_after_first(split, done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        convert(given, dst, progress=stop_after_first)
    assert sorted(p.name for p in (dst / "train" / "masks").iterdir()) == ["2007_000032.png"]
    assert not list(dst.rglob(".*"))  # no partial file left
    assert convert(given, dst) == {"train": (1, 1), "val": (1, 0)}


def test_a_foreign_destination_is_refused(tmp_path, capsys):
    given, _, _ = make_pets(tmp_path / "src")
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "notes.txt").write_text("mine")
    code = main(["convert", str(given), str(dst)])
    err = capsys.readouterr().err
    assert code == 2 and f"{dst}: is not empty, and not an earlier conversion" in err
    assert "Traceback" not in err and sorted(p.name for p in dst.iterdir()) == ["notes.txt"]
    other, _, _ = make_voc(tmp_path / "other")
    convert(other, tmp_path / "voc")
    with pytest.raises(DataError, match="not an earlier conversion"):
        convert(given, tmp_path / "voc")  # an earlier conversion, but of another source


def test_a_source_with_problems_writes_nothing(tmp_path, capsys):
    given, root, _ = make_pets(tmp_path / "src")
    trimap = root / "annotations" / "trimaps" / "Bengal_3.png"
    Image.fromarray(stripes([0, 1, 2, 1]).astype(np.uint8)).save(trimap)
    code = main(["convert", str(given), str(tmp_path / "dst")])
    err = capsys.readouterr().err
    assert code == 2 and f"{trimap}: holds values this dataset does not use: 0" in err
    assert not (tmp_path / "dst").exists()


def test_the_command_prints_where_things_went(tmp_path, capsys):
    given, _, _ = make_cityscapes(tmp_path / "src")
    dst = tmp_path / "dst"
    assert main(["convert", str(given), str(dst), "--format", "cityscapes"]) == 0
    out = capsys.readouterr().out
    assert (
        f"{dst / 'train'}: 2 pairs (2 written)" in out
        and f"{dst / 'val'}: 1 pair (1 written)" in out
    )
    assert main(["check-data", str(dst)]) == 0
    assert main(["convert", str(given), str(dst)]) == 0
    assert f"{dst / 'train'}: 2 pairs (0 written, 2 already there)" in capsys.readouterr().out


def test_convert_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["convert", "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and "SRC" in out and "DST" in out and "--format" in out
