"""The command line end to end: train, evaluate and predict on a tiny generated dataset, and a
clear message with exit code 2 (never a traceback) for every bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from segtutor.cli import main
from segtutor.synth import write_dataset


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    write_dataset(root, "scenes", n_train=12, n_val=4, size=(64, 64), seed=0)
    return root


def tiny_train(scenes, out, *extra: str, epochs: int | None = 1, size: int = 64) -> list[str]:
    """The argv of a quick `train` on the test scenes (tiny preset, batches of 4); `extra` last.
    `epochs` None: no --epochs (for a --time-budget in `extra`)."""
    fixed = ["train", "--batch-size", "4", "--quiet", "--preset", "tiny"]
    sizes = ["--size", str(size)] + (["--epochs", str(epochs)] if epochs is not None else [])
    return [*fixed, "--data", str(scenes), "--out", str(out), *sizes, *extra]


@pytest.fixture(scope="module")
def trained(scenes, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = main(tiny_train(scenes, out, epochs=2))
    assert code == 0
    return out


@pytest.mark.slow  # trains through the whole command line
def test_train_writes_the_run_folder(trained, capsys):
    for name in (
        "best.pt",
        "last.pt",
        "metrics.json",
        "history.json",
        "curves.png",
        "predictions.png",
        "confusion.png",
    ):
        assert (trained / name).is_file(), name
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2
    assert 0.0 <= metrics["miou"] <= 1.0
    history = json.loads((trained / "history.json").read_text())
    assert len(history["val_miou"]) == 2
    checkpoint = torch.load(trained / "best.pt", weights_only=True)
    assert checkpoint["config"]["input_mode"] == "crop"  # 64-pixel crops of 64x64 images
    assert checkpoint["class_names"] == ["background", "disc", "bar", "ring"]
    assert checkpoint["model_config"]["deep_supervision"]  # the default; heads in the weights
    assert any(key.startswith("aux_heads.") for key in checkpoint["model_state"])


@pytest.mark.slow  # trains through the whole command line
def test_train_without_deep_supervision(scenes, tmp_path):
    code = main(tiny_train(scenes, tmp_path, "--no-deep-supervision"))
    assert code == 0
    checkpoint = torch.load(tmp_path / "best.pt", weights_only=True)
    assert not checkpoint["model_config"]["deep_supervision"]
    assert not any(key.startswith("aux_heads.") for key in checkpoint["model_state"])


def test_train_passes_the_augmentation_choice_on(scenes, tmp_path, monkeypatch):
    asked = []

    class Stop(BaseException):
        """Raised by the stand-in for `prepare`: nothing is trained."""

    def stand_in(data, **choices):
        asked.append(choices["batch_augment"])
        raise Stop

    monkeypatch.setattr("segtutor.commands.train.prepare", stand_in)
    for flags in ([], ["--batch-augment"], ["--no-batch-augment"]):
        with pytest.raises(Stop):
            main(tiny_train(scenes, tmp_path, "--time-budget", "5", *flags, epochs=None))
    assert asked == [None, True, False]  # None: the recipe chooses (off under a budget)


@pytest.mark.slow  # trains through the whole command line
def test_evaluate_prints_the_table_and_json(trained, scenes, capsys):
    assert main(["evaluate", "--checkpoint", str(trained / "best.pt"), "--data", str(scenes)]) == 0
    text = capsys.readouterr().out
    assert "background" in text and "ring" in text and "mean" in text
    assert (
        main(
            ["evaluate", "--checkpoint", str(trained / "best.pt"), "--data", str(scenes), "--json"]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    # evaluate recomputes exactly what train reported for the same (best) weights
    trained_metrics = json.loads((trained / "metrics.json").read_text())
    assert data["miou"] == pytest.approx(trained_metrics["miou"])


@pytest.mark.slow  # trains through the whole command line
def test_resize_mode_round_trip(scenes, tmp_path, capsys):
    # Whole images resized to 48 pixels for the model, scored at the masks' 64x64: evaluate
    # feeds new images the way the checkpoint says and finds train's numbers again.
    out = tmp_path / "resized"
    assert main(tiny_train(scenes, out, "--input-mode", "resize", size=48)) == 0
    assert torch.load(out / "best.pt", weights_only=True)["config"]["input_mode"] == "resize"
    capsys.readouterr()
    assert (
        main(["evaluate", "--checkpoint", str(out / "best.pt"), "--data", str(scenes), "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["miou"] == pytest.approx(json.loads((out / "metrics.json").read_text())["miou"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_sync_batchnorm_without_gpus_is_a_clear_error(scenes, capsys):
    assert main(["train", "--data", str(scenes), "--epochs", "1", "--sync-batchnorm"]) == 2
    err = capsys.readouterr().err
    assert "--sync-batchnorm needs GPUs" in err and "Traceback" not in err


@pytest.mark.slow  # trains through the whole command line
def test_predict_writes_palette_masks_of_any_size(trained, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a.png": (50, 70), "b.jpg": (64, 64)}.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(photos / name)
    (photos / ".DS_Store").write_bytes(b"junk")
    out = tmp_path / "out"
    # a crop-mode model predicts whole images at their own size: 50x70 is padded, and says so
    with pytest.warns(UserWarning, match="padding 50x70 images to 56x72"):
        assert (
            main(
                [
                    "predict",
                    "--checkpoint",
                    str(trained / "best.pt"),
                    "--input",
                    str(photos),
                    "--output",
                    str(out),
                ]
            )
            == 0
        )
    mask = Image.open(out / "a.png")
    assert mask.mode == "P" and mask.size == (70, 50)
    assert set(np.unique(np.array(mask))) <= {0, 1, 2, 3}
    assert (out / "a_overlay.png").is_file() and (out / "b.png").is_file()
    assert not (out / ".DS_Store.png").exists()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["check-data", "no/such/folder"], "does not exist"),
        (["train", "--data", "no/such/folder", "--epochs", "1"], "does not exist"),
        (["evaluate", "--checkpoint", "missing.pt"], "missing.pt"),
        (["predict", "--checkpoint", "missing.pt", "--input", ".", "--output", "x"], "missing.pt"),
    ],
)
def test_bad_input_is_one_clear_message(argv, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert expected in captured.err + captured.out
    assert "Traceback" not in captured.err + captured.out


@pytest.mark.slow  # trains through the whole command line
def test_a_corrupt_or_foreign_checkpoint_is_refused(trained, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((trained / "best.pt").read_bytes()[:1000])
    foreign = tmp_path / "foreign.pt"
    torch.save({"conv.weight": torch.zeros(1)}, foreign)
    for path in (corrupt, foreign):
        assert main(["evaluate", "--checkpoint", str(path)]) == 2
        err = capsys.readouterr().err
        assert str(path.name) in err and "Traceback" not in err


def test_train_on_a_broken_folder_names_the_file(tmp_path, capsys):
    write_dataset(tmp_path / "data", "cells", n_train=4, n_val=2, size=(32, 32), seed=0)
    (tmp_path / "data" / "train" / "masks" / "cell_0001.png").unlink()
    assert main(["train", "--data", str(tmp_path / "data"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "cell_0001" in err and "Traceback" not in err


@pytest.mark.slow  # trains through the whole command line
def test_resume_continues_the_history(trained, scenes, tmp_path):
    out = tmp_path / "resumed"
    code = main(
        [
            "train",
            "--data",
            str(scenes),
            "--epochs",
            "3",
            "--size",
            "64",
            "--batch-size",
            "4",
            "--out",
            str(out),
            "--quiet",
            "--resume",
            str(trained / "last.pt"),
        ]
    )
    assert code == 0
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3]  # epochs 1-2 from last.pt, then one more
    before = json.loads((trained / "history.json").read_text())
    assert history["train_loss"][:2] == before["train_loss"]


@pytest.mark.slow  # trains through the whole command line
def test_same_seed_same_numbers(scenes, tmp_path):
    runs = []
    for name in ("a", "b"):
        assert main(tiny_train(scenes, tmp_path / name, "--seed", "3")) == 0
        runs.append(json.loads((tmp_path / name / "history.json").read_text()))
    assert runs[0]["train_loss"] == runs[1]["train_loss"]
    assert runs[0]["val_miou"] == runs[1]["val_miou"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--val-fraction", "0"], "--val-fraction: 0 is not between 0 and 1"),
        (["--val-fraction", "1.5"], "--val-fraction: 1.5 is not between 0 and 1"),
        (["--val-fraction", "1"], "--val-fraction: 1 is not between 0 and 1"),
        (["--epochs", "0"], "--epochs: 0 is not a whole number of at least 1"),
        (["--batch-size", "-1"], "--batch-size: -1 is not a whole number of at least 1"),
        (["--size", "x"], "--size: 'x' is not a number"),
        (["--lr", "nan"], "--lr: nan is not a number above 0"),
        (["--lr", "-0.1"], "--lr: -0.1 is not a number above 0"),
        (["--time-budget", "0"], "--time-budget: 0 is not a number above 0"),
        (["--workers", "-2"], "--workers: -2 is not a whole number of 0 or more"),
        (["--prior-adjustment", "-1"], "--prior-adjustment: -1 is not a number of 0 or more"),
        (["--prior-adjustment", "inf"], "--prior-adjustment: inf is not a number of 0 or more"),
    ],
)
def test_impossible_numbers_are_a_usage_message(argv, expected, capsys, tmp_path):
    # argparse exits 2 with one line naming the option, before any data is read or folder made
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--out", str(tmp_path / "run"), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
