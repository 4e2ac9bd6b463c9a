"""Every broken dataset folder x every reading option: the usual message, exit code 2, no traceback.

A new user's folder is broken in one of many ways, and they may add `--num-classes`,
`--binary-255` or a palette in `dataset.json` while trying to fix it. Whatever the combination,
`check-data` and `train` must answer with the `DataError` message naming the file (exit code 2),
and `scan`, `SegmentationDataset` and `load_splits` must report it the same way. The builders
below each make one kind of broken folder from tests/data_folders.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from data_folders import H, W, image_of, make_dataset, mask_of, mkdir, save
from PIL import Image

from segtutor import data
from segtutor.checks import scan
from segtutor.cli import main
from segtutor.data import SegmentationDataset, load_splits
from segtutor.errors import DataError

STEMS = {"a": 1, "b": 2, "c": 4, "d": 5}  # masks: left half value % 3, right half 1


def _all_rgb_masks(root: Path) -> str:
    for stem in STEMS:
        colour = np.zeros((H, W, 3), np.uint8)
        colour[:, 4:] = (200, 10, 10)  # in no palette below
        save(root / "masks" / f"{stem}.png", colour)
    return "a.png"


def _all_jpeg_masks(root: Path) -> str:
    for stem in STEMS:
        (root / "masks" / f"{stem}.png").unlink()
        save(root / "masks" / f"{stem}.jpg", mask_of(1))
    return "a.jpg"


def _some_rgb_masks(root: Path) -> str:
    save(root / "masks" / "b.png", np.full((H, W, 3), (9, 8, 7), np.uint8))
    return "b.png"


def _binary_0_255_masks(root: Path) -> str:
    for stem in STEMS:
        save(root / "masks" / f"{stem}.png", mask_of(0, foreground=255))
    return "0/255"


def _missing_masks(root: Path) -> str:
    (root / "masks" / "b.png").unlink()
    return "b"


def _mask_without_image(root: Path) -> str:
    save(root / "masks" / "zz_extra.png", mask_of(1))
    return "zz_extra"


def _label_out_of_range(root: Path) -> str:
    save(root / "masks" / "c.png", mask_of(7))
    (root / "dataset.json").write_text(json.dumps({"class_names": ["bg", "one", "two"]}))
    return "c.png"


def _empty_masks_folder(root: Path) -> str:
    for path in (root / "masks").iterdir():
        path.unlink()
    return "masks"


def _no_masks_folder(root: Path) -> str:
    for path in (root / "masks").iterdir():
        path.unlink()
    (root / "masks").rmdir()
    return "masks/"


def _truncated_png_mask(root: Path) -> str:
    path = root / "masks" / "a.png"
    path.write_bytes(path.read_bytes()[:-30])
    return "a.png"


def _corrupt_png_image(root: Path) -> str:
    (root / "images" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return "b.png"


def _empty_mask_file(root: Path) -> str:
    (root / "masks" / "c.png").write_bytes(b"")
    return "c.png"


def _mismatched_sizes(root: Path) -> str:
    save(root / "masks" / "d.png", np.zeros((H + 2, W), np.uint8))
    return "d.png"


def _mask_is_a_directory(root: Path) -> str:
    (root / "masks" / "a.png").unlink()
    mkdir(root / "masks" / "a.png")
    return "a"


def _negative_labels(root: Path) -> str:
    labels = mask_of(1).astype(np.int32)
    labels[0, 0] = -1
    (root / "masks" / "b.png").unlink()
    Image.fromarray(labels).save(root / "masks" / "b.tif")  # 32-bit TIFF: signed values
    return "b.tif"


def _sixteen_bit_large_labels(root: Path) -> str:
    Image.fromarray(np.full((H, W), 1000, np.uint16)).save(root / "masks" / "a.png")
    return "a.png"


def _float_mask(root: Path) -> str:
    (root / "masks" / "a.png").unlink()
    Image.fromarray(np.ones((H, W), np.float32)).save(root / "masks" / "a.tif")
    return "a.tif"


def _duplicate_stems(root: Path) -> str:
    save(root / "images" / "a.jpg", image_of(3))
    return "a.jpg"


def _bad_dataset_json(root: Path) -> str:
    (root / "dataset.json").write_text('{"class_names": ["bg", "thing",]}')
    return "dataset.json"


def _wrong_palette_in_dataset_json(root: Path) -> str:
    (root / "dataset.json").write_text(json.dumps({"palette": [[0, 0, 0], [1, 2]]}))
    return "dataset.json"


def _broken_val_split(root: Path) -> str:
    make_dataset(root / "train", STEMS)
    make_dataset(root / "val", {"v": 6})
    save(root / "val" / "masks" / "v.png", np.zeros((H, W + 3), np.uint8))
    for folder in ("images", "masks"):
        for path in (root / folder).iterdir():
            path.unlink()
        (root / folder).rmdir()
    return "v.png"


BROKEN: dict[str, Callable[[Path], str]] = {
    name.lstrip("_"): builder
    for name, builder in globals().copy().items()
    if name.startswith("_")
    and not name.startswith("__")
    and callable(builder)
    and getattr(builder, "__module__", None) == __name__
}  # every builder above (the two below are for `train` only)

# reading options as for the command line, and as keyword arguments for the library
OPTIONS = {
    "none": ([], {}),
    "num_classes_3": (["--num-classes", "3"], {"num_classes": 3}),
    "num_classes_2": (["--num-classes", "2"], {"num_classes": 2}),
    "binary_255": (["--binary-255"], {"binary_255": True}),
    "palette": ([], {}),  # dataset.json with class names and a palette (unless the case has one)
}

# the only combinations that are not broken: the option is the fix
FIXED_BY = {("binary_0_255_masks", "binary_255")}

PALETTE_META = {"class_names": ["bg", "red", "green"],
                "palette": [[0, 0, 0], [255, 0, 0], [0, 255, 0]]}  # fmt: skip


def broken_folder(tmp_path: Path, case: str, option: str) -> tuple[Path, str]:
    """A folder broken as `case` says (with dataset.json's palette for "palette"), the file named."""
    root = make_dataset(tmp_path / case, STEMS)
    named = BROKEN[case](root)
    meta = root / "dataset.json"
    if option == "palette" and not meta.exists():
        meta.write_text(json.dumps(PALETTE_META))
    return root, named


CASES = [
    pytest.param(case, option, id=f"{case}-{option}")
    for case in BROKEN
    for option in OPTIONS
    if (case, option) not in FIXED_BY
]


@pytest.mark.parametrize(("case", "option"), CASES)
def test_check_data_names_the_file_and_exits_2(tmp_path: Path, capsys, case, option) -> None:
    root, named = broken_folder(tmp_path, case, option)
    code = main(["check-data", str(root), *OPTIONS[option][0]])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 2, text
    assert named in text and "fix:" in text and "NOT USABLE" in text, text
    assert "Traceback" not in text


@pytest.mark.parametrize(("case", "option"), CASES)
def test_train_names_the_file_and_exits_2(tmp_path: Path, capsys, case, option) -> None:
    root, named = broken_folder(tmp_path, case, option)
    argv = ["train", "--data", str(root), "--epochs", "1", "--out", str(tmp_path / "run")]
    code = main([*argv, *OPTIONS[option][0]])
    out = capsys.readouterr()
    assert code == 2, out.out + out.err
    assert out.err.startswith("error: ") and named in out.err and "fix:" in out.err, out.err
    assert "Traceback" not in out.out + out.err
    assert not (tmp_path / "run" / "best.pt").exists()


@pytest.mark.parametrize(("case", "option"), CASES)
def test_the_library_reports_the_same_problems(tmp_path: Path, case, option) -> None:
    root, named = broken_folder(tmp_path, case, option)
    kwargs = OPTIONS[option][1]
    with pytest.raises(DataError) as info:
        load_splits(root, **kwargs)
    assert named in str(info.value)
    if (root / "train").is_dir():
        root = root / "val"  # one split: the broken one
    report = scan(root, **kwargs)
    assert not report.ok and named in "\n".join(str(p) for p in report.problems)
    with pytest.raises(DataError) as info:
        SegmentationDataset(root, **kwargs)
    assert [str(p) for p in info.value.problems] == [str(p) for p in report.problems]


def test_binary_255_is_the_fix_for_0_255_masks(tmp_path: Path, capsys) -> None:
    root, _ = broken_folder(tmp_path, "binary_0_255_masks", "binary_255")
    assert main(["check-data", str(root), "--binary-255"]) == 0
    assert "mask values: 0, 1" in capsys.readouterr().out
    assert SegmentationDataset(root, binary_255=True).num_classes == 2


def test_every_case_is_built() -> None:
    assert len(BROKEN) >= 20 and "all_rgb_masks" in BROKEN and "all_jpeg_masks" in BROKEN


def _one_pair(root: Path) -> None:
    for folder in ("images", "masks"):
        for stem in "bcd":
            (root / folder / f"{stem}.png").unlink()


def _training_masks_all_ignore(root: Path) -> None:
    train, _ = data._split_stems(list(STEMS), 0.2, 0)  # what `train` does by default
    for stem in train:  # every training mask 255; the validation masks keep their labels
        save(root / "masks" / f"{stem}.png", np.full((H, W), 255, np.uint8))


@pytest.mark.parametrize(
    ("build", "message"),
    [(_one_pair, "too few to split"), (_training_masks_all_ignore, "hold only 255")],
)
def test_train_refuses_a_split_with_nothing_to_learn_or_validate(
    tmp_path: Path, capsys, build, message
) -> None:
    # check-data finds each folder usable (train/ + val/ would be fine); the split is the problem
    root = make_dataset(tmp_path / "ds", STEMS)
    build(root)
    argv = ["train", "--data", str(root), "--epochs", "1", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    out = capsys.readouterr()
    assert message in out.err and "fix:" in out.err and "Traceback" not in out.out + out.err


@pytest.mark.parametrize("num_classes", ["0", "-1", "256", "300"])
@pytest.mark.parametrize("command", ["check-data", "train"])
def test_an_impossible_num_classes_is_a_message(tmp_path, capsys, command, num_classes) -> None:
    root = make_dataset(tmp_path / "ds", STEMS)
    argv = [command, str(root)] if command == "check-data" else [command, "--data", str(root),
                                                                 "--epochs", "1"]  # fmt: skip
    assert main([*argv, "--num-classes", num_classes]) == 2
    out = capsys.readouterr()
    assert f"num_classes={num_classes} is not in 1..255" in out.out + out.err
    assert "class pixel frequencies" not in out.out  # no table of an impossible size
    with pytest.raises(DataError, match="is not in 1..255"):
        SegmentationDataset(root, num_classes=int(num_classes))
