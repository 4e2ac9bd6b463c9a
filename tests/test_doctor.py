"""Tests for `check-data` (segtutor.doctor's report, segtutor.commands.check_data): exit codes,
what it prints, no tracebacks."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segtutor import doctor
from segtutor.commands import check_data
from segtutor.losses import RECOMMENDED_WEIGHTING, class_weights

H, W = 6, 8


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_split(root: Path, labels: dict[str, int], foreground: int = 1) -> Path:
    """`root/images/<stem>.png` + `root/masks/<stem>.png`: left half `label`, right `foreground`."""
    for stem, label in labels.items():
        save(root / "images" / f"{stem}.png", np.full((H, W, 3), 50, np.uint8))
        mask = np.full((H, W), foreground, np.uint8)
        mask[:, : W // 2] = label
        save(root / "masks" / f"{stem}.png", mask)
    return root


def check(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run check-data the way the command line does; return (exit code, stdout + stderr)."""
    parser = argparse.ArgumentParser(prog="check-data")
    check_data.add_arguments(parser)
    code = check_data.run(parser.parse_args([str(a) for a in argv]))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_usable_dataset_exits_0_and_describes_it(tmp_path: Path, capsys) -> None:
    root = make_split(tmp_path / "ds", {"a": 0, "b": 2, "c": 0})
    code, out = check(root, capsys=capsys)
    assert code == 0
    assert "pairs: 3" in out and "8x6 x3" in out
    assert "image modes: RGB x3" in out and "mask modes: L x3" in out
    assert "mask values: 0, 1, 2" in out
    # 3 masks of 48 px: class 0 has 24 + 24 + 0, class 1 has 3 * 24 = 72, class 2 has 24
    assert (
        "72" in out
        and "50.00%" in out
        and f"class weights ({RECOMMENDED_WEIGHTING}, train's default)" in out
    )
    assert "problems: none" in out and "OK" in out


def test_recommended_weights_are_the_ones_train_uses() -> None:
    counts = np.array([80, 20, 0])
    weights = doctor.recommended_weights(counts)  # no warning: the report notes empty classes
    with pytest.warns(UserWarning):
        expected = class_weights(counts, RECOMMENDED_WEIGHTING)
    np.testing.assert_allclose(weights, expected.tolist())
    np.testing.assert_allclose(weights, [(0.5 / 0.8) ** 0.5, (0.5 / 0.2) ** 0.5, 0.0], rtol=1e-6)
    assert doctor.recommended_weights([0, 0]) == [0.0, 0.0]  # nothing counted: nothing to weigh


def test_the_report_prints_the_weights_train_uses(tmp_path: Path, capsys) -> None:
    root = make_split(tmp_path / "ds", {"a": 0, "b": 2, "c": 0})
    code, out = check(root, capsys=capsys)
    assert code == 0
    counts = [24 + 24 + 0, 72, 24]
    for k, w in enumerate(class_weights(counts, RECOMMENDED_WEIGHTING).tolist()):
        assert any(
            line.split()[:1] == [str(k)] and line.endswith(f"{w:8.3f}") for line in out.splitlines()
        ), (k, w, out)


def test_both_splits_are_reported(tmp_path: Path, capsys) -> None:
    make_split(tmp_path / "ds" / "train", {"a": 2, "b": 0})
    make_split(tmp_path / "ds" / "val", {"c": 0})
    (tmp_path / "ds" / "val" / "masks" / "stray.png").write_bytes(b"")
    code, out = check(tmp_path / "ds", capsys=capsys)
    assert code == 2
    assert "== train" in out and "== val" in out
    assert "1 masks have no image with the same stem: stray" in out
    assert "class 2 (class_2) has no pixels" in out  # val lacks a class: a note, not a problem
    assert "NOT USABLE: 1 problem" in out


def test_nonexistent_path(tmp_path: Path, capsys) -> None:
    code, out = check(tmp_path / "missing", capsys=capsys)
    assert code == 2 and "does not exist" in out and "Traceback" not in out


def test_images_folder_instead_of_its_parent(tmp_path: Path, capsys) -> None:
    root = make_split(tmp_path / "ds", {"a": 1})
    for sub in ("images", "masks"):
        code, out = check(root / sub, capsys=capsys)
        assert code == 2
        assert f"point at the parent folder {root}" in out


def test_binary_255_flag(tmp_path: Path, capsys) -> None:
    root = make_split(tmp_path / "ds", {"a": 0, "b": 0}, foreground=255)
    code, out = check(root, capsys=capsys)
    assert code == 2 and "0/255 binary" in out and "--binary-255" in out
    code, out = check(root, "--binary-255", capsys=capsys)
    assert code == 0 and "mask values: 0, 1" in out


def test_num_classes_flag(tmp_path: Path, capsys) -> None:
    root = make_split(tmp_path / "ds", {"a": 0, "b": 3})
    code, out = check(root, "--num-classes", "3", capsys=capsys)
    assert code == 2 and "b.png" in out and "has 3" in out and "num_classes=4" in out


def _broken_inputs(tmp_path: Path) -> list[Path]:
    """One folder per kind of bad input."""
    made = []

    def new(name: str) -> Path:
        root = make_split(tmp_path / name, {"a": 0, "b": 1})
        made.append(root)
        return root

    (new("unreadable") / "images" / "a.png").write_bytes(b"not an image")
    save(new("sizes") / "masks" / "a.png", np.zeros((H + 2, W), np.uint8))
    save(new("colour") / "masks" / "a.png", np.full((H, W, 3), (9, 8, 7), np.uint8))
    Image.fromarray(np.zeros((H, W), np.uint8)).save(new("jpeg") / "masks" / "b.jpg")
    (tmp_path / "jpeg" / "masks" / "b.png").unlink()
    save(new("duplicate") / "images" / "a.bmp", np.zeros((H, W, 3), np.uint8))
    (new("empty_masks") / "masks" / "a.png").unlink()
    (tmp_path / "empty_masks" / "masks" / "b.png").unlink()
    (tmp_path / "file.png").write_bytes(b"")
    made.append(tmp_path / "file.png")
    (tmp_path / "nothing").mkdir()
    made.append(tmp_path / "nothing")
    (new("bad_json") / "dataset.json").write_text("{")
    return made


def test_every_bad_input_gets_a_message_and_no_traceback(tmp_path: Path, capsys) -> None:
    for root in _broken_inputs(tmp_path):
        code, out = check(root, capsys=capsys)
        assert code == 2, root
        assert "Traceback" not in out and "NOT USABLE" in out and "fix:" in out, out


def test_through_the_command_line_dispatcher(tmp_path: Path, capsys) -> None:
    root = make_split(tmp_path / "ds", {"a": 0, "b": 1})
    try:
        from segtutor.cli import build_parser, main

        build_parser()  # imports every command module
    except ImportError:  # other commands not written yet: build the same sub-parser by hand
        parser = argparse.ArgumentParser(prog="python -m segtutor")
        sub = parser.add_subparsers(dest="command", required=True)
        command = sub.add_parser("check-data")
        check_data.add_arguments(command)
        command.set_defaults(run=check_data.run)

        def main(argv: list[str]) -> int:
            args = parser.parse_args(argv)
            return args.run(args)

    assert main(["check-data", str(root)]) == 0
    assert main(["check-data", str(root / "images")]) == 2
    out = capsys.readouterr()
    assert "point at the parent folder" in out.out + out.err
