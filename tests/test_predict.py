"""`python -m segtutor predict` on new images: every input kind, every output, every failure.

The checkpoints are written directly (a tiny untrained U-Net with the fields `fit` stores), so no
test trains; `write_checkpoint` is shared with test_export, test_deploy and test_widgets.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from segtutor.checkpoint import save_checkpoint
from segtutor.cli import main
from segtutor.commands.predict import save_index_png
from segtutor.inference import Predictor, read_photo
from segtutor.model import UNet
from segtutor.viz import overlay

NAMES = ["background", "disc", "bar"]
PALETTE = [[0, 0, 0], [230, 159, 0], [86, 180, 233]]


def write_checkpoint(
    path,
    *,
    num_classes: int = 3,
    input_mode: str = "crop",
    input_size: int = 32,
    working_scale: float = 1.0,
    deep_supervision: bool = False,
    base_width: int = 4,
    depth: int = 2,
):
    """A segtutor checkpoint of an untrained U-Net (seeded; its last layer scaled so that each
    class wins somewhere on random images); returns the model in eval mode."""
    torch.manual_seed(0)
    model = UNet(
        num_classes=num_classes,
        base_width=base_width,
        depth=depth,
        deep_supervision=deep_supervision,
    )
    with torch.no_grad():  # standardised logits, so that every class wins somewhere
        images = torch.rand(4, 3, 32, 32) * 4 - 2  # about the range of normalised photos
        logits = model.eval()(images)
        mean, std = logits.mean((0, 2, 3)), logits.std((0, 2, 3))
        model.outc.conv.weight.div_(std.view(-1, 1, 1, 1))
        model.outc.conv.bias.sub_(mean).div_(std)
    keys = ("in_channels", "num_classes", "base_width", "depth", "bilinear", "deep_supervision")
    save_checkpoint(
        path,
        model_state=model.state_dict(),
        model_config={key: getattr(model, key) for key in keys},
        config={
            "input_mode": input_mode,
            "input_size": input_size,
            "working_scale": working_scale,
        },
        class_names=NAMES[:num_classes] if num_classes <= 3 else None,
        palette=PALETTE[:num_classes] if num_classes <= 3 else None,
    )
    return model.eval()


def random_photo(path, height, width, mode="RGB", seed=0, **save_options):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    pixels[: height // 2] //= 4  # a dark top half: something for the model to tell apart
    image = Image.fromarray(pixels)
    if mode == "I;16":
        image = Image.fromarray(pixels[..., 0].astype(np.uint16) * 257)
    elif mode != "RGB":
        image = image.convert(mode)
    image.save(path, **save_options)
    return path


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "best.pt"
    write_checkpoint(path, working_scale=0.5)
    return path


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    random_photo(folder / "a.png", 50, 70, "RGBA")
    random_photo(folder / "b.jpg", 64, 64, "L", seed=1)
    random_photo(folder / "c.tif", 30, 41, "I;16", seed=2)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 40 wide and 20 high, shown turned: 20 wide, 40 high
    random_photo(folder / "d.jpg", 20, 40, seed=3, exif=exif.tobytes())
    (folder / "notes.txt").write_text("not an image")
    (folder / ".DS_Store").write_bytes(b"junk")
    return folder


def predict_argv(checkpoint, inputs, out, *extra):
    inputs = [str(p) for p in (inputs if isinstance(inputs, list) else [inputs])]
    return ["predict", "--checkpoint", str(checkpoint), "--input", *inputs, "--output", str(out),
            "--quiet", *extra]  # fmt: skip


def read_areas(out):
    with open(out / "areas.csv", newline="") as file:
        return list(csv.reader(file))


def test_every_output_at_the_original_size(checkpoint, photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(predict_argv(checkpoint, photos, out, "--probabilities", "--confidence")) == 0
    predictor = Predictor.from_checkpoint(checkpoint)
    rows = read_areas(out)
    assert rows[0] == ["stem", "width", "height", *NAMES]
    sizes = {"a": (50, 70), "b": (64, 64), "c": (30, 41), "d": (40, 20)}  # d as displayed
    for row, (stem, (height, width)) in zip(rows[1:], sizes.items(), strict=True):
        pixels = read_photo(next(photos.glob(f"{stem}.*")))
        expected = predictor.predict(pixels).numpy()
        with Image.open(out / f"{stem}.png") as mask:
            assert mask.mode == "P" and mask.size == (width, height)
            assert mask.getpalette()[:9] == [c for color in PALETTE for c in color]
            preds = np.asarray(mask)
        assert np.array_equal(preds, expected)
        assert np.array_equal(np.asarray(Image.open(out / f"{stem}_overlay.png")),
                              overlay(pixels, preds, [tuple(c) for c in PALETTE]))  # fmt: skip
        probabilities = np.load(out / f"{stem}_probabilities.npy")
        assert probabilities.dtype == np.float16 and probabilities.shape == (3, height, width)
        np.testing.assert_allclose(probabilities.astype(np.float32).sum(0), 1, atol=3e-3)
        assert (probabilities.argmax(0) == preds).mean() > 0.99  # float16 may break near-ties
        confidence = np.asarray(Image.open(out / f"{stem}_confidence.png"))
        assert confidence.shape == (height, width) and confidence.dtype == np.uint8
        assert np.abs(confidence - probabilities.max(0).astype(np.float32) * 255).max() <= 1
        counts = np.bincount(preds.ravel(), minlength=3)
        assert row == [stem, str(width), str(height), *(str(c) for c in counts)]
    assert len(set(np.unique(np.asarray(Image.open(out / "a.png"))))) > 1  # not one class
    assert not (out / "notes.png").exists() and not (out / ".DS_Store.png").exists()
    assert "4 images" in capsys.readouterr().out


def test_a_glob_and_files_as_inputs(checkpoint, photos, tmp_path):
    out = tmp_path / "out"
    assert main(predict_argv(checkpoint, [str(photos / "*.jpg"), photos / "a.png"], out)) == 0
    assert [row[0] for row in read_areas(out)[1:]] == ["b", "d", "a"]
    assert main(predict_argv(checkpoint, str(photos / "*.gif"), out)) == 2  # matches nothing


def test_window_and_tta_options_reach_the_predictor(checkpoint, photos, tmp_path):
    out = tmp_path / "out"
    argv = predict_argv(checkpoint, photos / "a.png", out, "--window", "16", "--tta", "flip")
    assert main([*argv, "--overlap", "0.1", "--blend", "constant"]) == 0
    predictor = Predictor.from_checkpoint(
        checkpoint, window=16, overlap=0.1, blend="constant", tta="flip"
    )
    expected = predictor.predict(read_photo(photos / "a.png")).numpy()
    assert np.array_equal(np.asarray(Image.open(out / "a.png")), expected)
    whole = Predictor.from_checkpoint(checkpoint, window=None).predict(read_photo(photos / "a.png"))
    assert not np.array_equal(whole.numpy(), expected)  # the options changed the answer


def test_a_corrupt_image_is_skipped_and_named_the_others_kept(checkpoint, photos, tmp_path, capsys):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut off")
    out = tmp_path / "out"
    assert main(predict_argv(checkpoint, photos, out)) == 1
    text = capsys.readouterr().out
    assert "could not read 1 images" in text and "broken.jpg" in text and "Traceback" not in text
    for stem in "abcd":
        assert (out / f"{stem}.png").is_file() and (out / f"{stem}_overlay.png").is_file()
    assert [row[0] for row in read_areas(out)[1:]] == ["a", "b", "c", "d"]


def test_a_rerun_keeps_what_is_done_unless_overwrite(checkpoint, photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(predict_argv(checkpoint, photos, out)) == 0
    original = np.asarray(Image.open(out / "a.png")).copy()
    # mark a.png as someone's edit: a rerun must keep it and count its areas from it
    save_index_png(out / "a.png", np.full_like(original, 2), PALETTE)
    capsys.readouterr()
    assert main(predict_argv(checkpoint, photos, out)) == 0
    assert "4 done before" in capsys.readouterr().out
    assert np.asarray(Image.open(out / "a.png")).max() == 2
    assert read_areas(out)[1] == ["a", "70", "50", "0", "0", str(50 * 70)]
    assert main(predict_argv(checkpoint, photos, out, "--overwrite")) == 0
    assert np.array_equal(np.asarray(Image.open(out / "a.png")), original)
    # asking for a new kind of output predicts again the images that lack it
    assert main(predict_argv(checkpoint, photos, out, "--confidence")) == 0
    assert (out / "a_confidence.png").is_file()


def test_an_interrupted_batch_keeps_what_it_finished(checkpoint, photos, tmp_path, monkeypatch):
    calls = []
    logits = Predictor.logits

    def interrupted(self, pixels):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return logits(self, pixels)

    monkeypatch.setattr(Predictor, "logits", interrupted)
    out = tmp_path / "out"
    assert main(predict_argv(checkpoint, photos, out)) == 130
    assert sorted(p.name for p in out.iterdir()) == [
        "a.png",
        "a_overlay.png",
        "areas.csv",
        "b.png",
        "b_overlay.png",
    ]  # fmt: skip  (no half-written file, not even a hidden temporary one)
    assert [row[0] for row in read_areas(out)[1:]] == ["a", "b"]


def test_an_unwritable_output_folder_is_refused_before_any_work(
    checkpoint, photos, tmp_path, capsys
):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    assert main(predict_argv(checkpoint, photos, blocker / "out")) == 2
    err = capsys.readouterr().err
    assert "cannot be written" in err and "--output" in err and "Traceback" not in err


def test_a_dataset_json_with_another_number_of_classes(checkpoint, photos, tmp_path, capsys):
    meta = tmp_path / "data" / "dataset.json"
    meta.parent.mkdir()
    meta.write_text(json.dumps({"class_names": ["background", "cell"]}))
    out = tmp_path / "out"
    assert main(predict_argv(checkpoint, photos, out, "--classes", str(meta))) == 2
    err = capsys.readouterr().err
    assert "names 2 classes but the checkpoint was trained on 3" in err
    assert "dataset.json" in err and not out.exists()
    names = ["sky", "sea", "sand"]
    meta.write_text(json.dumps({"class_names": names, "palette": [[1, 2, 3]] * 3}))
    assert main(predict_argv(checkpoint, photos / "a.png", out, "--classes", str(meta.parent))) == 0
    assert read_areas(out)[0] == ["stem", "width", "height", *names]
    assert Image.open(out / "a.png").getpalette()[:3] == [1, 2, 3]
