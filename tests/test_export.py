"""segtutor.export and `python -m segtutor export`: the exported model answers as the eager one.

Exported and eager logits agree on three input sizes, odd ones included (the U-Net pads them),
for the course preset with and without deep supervision (`python -m segtutor train` trains with
it by default; in eval mode its extra heads are left out).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from test_predict import NAMES, PALETTE, write_checkpoint

from segtutor.cli import main
from segtutor.export import AnySize, export_metadata, export_model, sidecar_path
from segtutor.model import PRESETS, UNet
from segtutor.settings import IMAGENET_MEAN

ort = pytest.importorskip("onnxruntime", reason="the export extras: pip install 'segtutor[export]'")
onnx = pytest.importorskip("onnx", reason="the export extras: pip install 'segtutor[export]'")

SIZES = [(64, 64), (96, 80), (130, 70)]
COURSE = PRESETS["course"]


# Without deep supervision the eval-mode graph is the same U-Net less the unused heads; its
# exports (an ONNX export takes seconds to minutes on a laptop CPU) run with the slow tests.
@pytest.fixture(
    scope="module",
    params=[True, pytest.param(False, marks=pytest.mark.slow)],
    ids=["deep-supervision", "plain"],
)
def course(request, tmp_path_factory):
    """A course-preset checkpoint, and its eager model in eval mode."""
    assert COURSE == {
        "base_width": 8,
        "depth": 4,
        "bilinear": False,
    }  # what write_checkpoint builds
    path = tmp_path_factory.mktemp("course") / "best.pt"
    model = write_checkpoint(path, deep_supervision=request.param, base_width=8, depth=4,
                             working_scale=0.5)  # fmt: skip
    return path, model


def eager(model, images):
    with torch.no_grad():
        return model(images).numpy()


def test_any_size_is_the_model():
    torch.manual_seed(0)
    model = UNet(num_classes=2, base_width=4, depth=2).eval()
    for height, width in [(8, 8), (9, 13), (1, 1)]:
        images = torch.randn(2, 3, height, width)
        with torch.no_grad():
            torch.testing.assert_close(AnySize(model)(images), model(images))


def test_onnx_agrees_with_eager_at_any_size(course, tmp_path, capsys):
    path, model = course
    assert main(["export", "--checkpoint", str(path), "--format", "onnx"]) == 0
    exported = path.with_suffix(".onnx")
    assert str(exported) in capsys.readouterr().out
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    torch.manual_seed(1)
    for height, width in SIZES:
        images = torch.randn(2, 3, height, width)
        (logits,) = session.run(["logits"], {"images": images.numpy()})
        assert logits.shape == (2, 3, height, width)
        np.testing.assert_allclose(logits, eager(model, images), atol=1e-4, rtol=1e-4)
    meta = {k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}
    assert meta["class_names"] == NAMES and meta["palette"] == PALETTE
    assert meta["working_scale"] == 0.5 and meta["input_mode"] == "crop"
    assert meta["mean"] == list(IMAGENET_MEAN) and meta["num_classes"] == 3
    names = [node.name for node in onnx.load(str(exported)).graph.initializer]
    assert not any("aux_heads" in name for name in names)  # eval mode: no deep supervision


def test_torchscript_agrees_with_eager_at_any_size(course, tmp_path):
    path, model = course
    exported = export_model(path, "torchscript", tmp_path / "model.ts")
    loaded = torch.jit.load(str(exported))
    torch.manual_seed(2)
    for height, width in SIZES:
        images = torch.randn(2, 3, height, width)
        with torch.no_grad():
            np.testing.assert_allclose(loaded(images).numpy(), eager(model, images), atol=1e-5)
    meta = json.loads(sidecar_path(exported).read_text())
    assert meta == export_metadata(torch.load(path, weights_only=True))
    assert meta["class_names"] == NAMES and meta["working_scale"] == 0.5


def test_export_without_the_onnx_extras_says_what_to_install(tmp_path, monkeypatch, capsys):
    path = tmp_path / "best.pt"
    write_checkpoint(path)
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if it were not installed
    assert main(["export", "--checkpoint", str(path), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "segtutor[export]" in err and "onnx" in err and "Traceback" not in err
    assert not path.with_suffix(".onnx").exists()


def test_export_of_a_missing_checkpoint_is_one_clear_message(tmp_path, capsys):
    assert main(["export", "--checkpoint", str(tmp_path / "nope.pt"), "--format", "onnx"]) == 2
    assert "nope.pt" in capsys.readouterr().err


def test_metadata_of_a_resize_mode_checkpoint(tmp_path):
    path = tmp_path / "best.pt"
    write_checkpoint(path, input_mode="resize", input_size=48, working_scale=0.5)
    meta = export_metadata(torch.load(path, weights_only=True))
    assert meta["input_mode"] == "resize" and meta["input_size"] == 48
    assert meta["working_scale"] == 1.0  # resized whole: no working scale
