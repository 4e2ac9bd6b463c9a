"""segtutor.deploy: the exported model run with numpy, Pillow and onnxruntime only (no torch),
tested against segtutor's own eager predictions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from test_predict import PALETTE, random_photo, write_checkpoint

from segtutor.inference import Predictor, read_photo
from segtutor.viz import overlay

ort = pytest.importorskip("onnxruntime", reason="the export extras: pip install 'segtutor[export]'")
pytest.importorskip("onnxscript", reason="the export extras: pip install 'segtutor[export]'")

from segtutor import deploy  # noqa: E402  (imports onnxruntime)
from segtutor.export import export_model  # noqa: E402

DEPLOY = Path(deploy.__file__)
REPO = DEPLOY.parents[1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A checkpoint at working scale 0.5, its ONNX export and segtutor's Predictor of it."""
    folder = tmp_path_factory.mktemp("deploy")
    write_checkpoint(folder / "best.pt", working_scale=0.5)
    path = export_model(folder / "best.pt", "onnx")
    return path, Predictor.from_checkpoint(folder / "best.pt", window=None)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    random_photo(folder / "a.png", 50, 70, "RGBA")
    exif = Image.Exif()
    exif[0x0112] = 8
    random_photo(folder / "b.jpg", 20, 40, seed=3, exif=exif.tobytes())
    random_photo(folder / "c.tif", 30, 41, "I;16", seed=2)
    return folder


@pytest.mark.parametrize(("size_in", "size_out"), [((7, 9), (50, 70)), ((50, 70), (7, 9))])
def test_resize_bilinear_is_torch_interpolate(size_in, size_out):
    array = np.random.default_rng(0).normal(size=(3, *size_in)).astype(np.float32)
    expected = F.interpolate(torch.from_numpy(array)[None], size=size_out, mode="bilinear")[0]
    np.testing.assert_allclose(deploy.resize_bilinear(array, size_out), expected.numpy(), atol=1e-4)


def test_read_photo_is_segtutors(photos):
    for file in photos.iterdir():
        assert np.array_equal(deploy.read_photo(file), read_photo(file)), file.name


def test_predictions_agree_with_eager_segtutor(exported, photos):
    path, predictor = exported
    segmenter = deploy.OnnxSegmenter(path)
    assert segmenter.class_names == predictor.class_names and segmenter.working_scale == 0.5
    assert segmenter.palette == [tuple(c) for c in PALETTE]
    for file in photos.iterdir():
        pixels = read_photo(file)
        preds = segmenter.predict(file)
        assert preds.shape == pixels.shape[:2]
        # the working scale resizes with Pillow here, with torchvision in segtutor: the same
        # filter, rounded apart by at most one grey level, so nearly every pixel agrees
        assert (preds == predictor.predict(pixels).numpy()).mean() > 0.97, file.name
    # at scale 1 nothing is resized: the same logits
    segmenter.working_scale = predictor.scale = 1.0
    pixels = read_photo(photos / "a.png")
    np.testing.assert_allclose(
        segmenter.logits(pixels), predictor.logits(pixels).numpy(), atol=1e-4, rtol=1e-4
    )


def test_the_deploy_command(exported, photos, tmp_path):
    path, predictor = exported
    (photos / "broken.png").write_bytes(b"\x89PNG cut")
    out = tmp_path / "out"
    assert deploy.main([str(path), str(photos), "--output", str(out)]) == 1  # broken.png
    segmenter = deploy.OnnxSegmenter(path)
    for stem in "abc":
        pixels = read_photo(next(photos.glob(f"{stem}.*")))
        preds = np.asarray(Image.open(out / f"{stem}.png"))
        assert np.array_equal(preds, segmenter.predict(pixels))
        blended = np.asarray(Image.open(out / f"{stem}_overlay.png"))
        assert np.array_equal(blended, overlay(pixels, preds, PALETTE))  # segtutor's overlay
    assert not (out / "broken.png").exists()


def test_deploy_runs_without_torch(exported, photos):
    path, _ = exported
    script = textwrap.dedent(f"""
        import importlib.util, sys
        sys.modules["torch"] = None  # any `import torch` now fails
        spec = importlib.util.spec_from_file_location("deploy", {str(DEPLOY)!r})
        deploy = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(deploy)
        preds = deploy.OnnxSegmenter({str(path)!r}).predict({str(photos / "a.png")!r})
        print(preds.shape, sorted(m for m in sys.modules if m.startswith("torch")))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(50, 70) ['torch']"  # only the blocked entry
    # and as a script, the way it ships
    out = photos.parent / "script-out"
    runner = "import runpy, sys; sys.modules['torch'] = None; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    command = [
        sys.executable,
        "-c",
        runner,
        str(DEPLOY),
        str(path),
        str(photos),
        "--output",
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (out / "a.png").is_file() and (out / "b_overlay.png").is_file()


@pytest.fixture
def no_torch(tmp_path):
    """An environment whose Python cannot import torch (a `sitecustomize` that blocks it), as on
    a machine with only numpy, Pillow and onnxruntime: run `python -m segtutor.deploy` in it."""
    site = tmp_path / "no-torch"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\nsys.modules['torch'] = None  # any `import torch` now fails\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]))
    check = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True)
    assert check.returncode == 1, "the block did not work: the tests below would prove nothing"
    return env


def test_python_m_segtutor_deploy_runs_without_torch(exported, photos, no_torch, tmp_path):
    # `-m segtutor.deploy` runs segtutor/__init__.py first: its re-exports must stay lazy
    path, _ = exported
    command = [sys.executable, "-m", "segtutor.deploy"]
    result = subprocess.run([*command, "--help"], env=no_torch, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m segtutor.deploy")
    out = tmp_path / "out"
    argv = [str(path), str(photos / "a.png"), "--output", str(out)]
    result = subprocess.run([*command, *argv], env=no_torch, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote 1 masks and overlays")
    preds = np.asarray(Image.open(out / "a.png"))
    assert np.array_equal(preds, deploy.OnnxSegmenter(path).predict(photos / "a.png"))


def test_importing_segtutor_deploy_imports_no_torch():
    code = "import sys, segtutor.deploy; print(sorted(m for m in sys.modules if 'torch' in m))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_foreign_onnx_file_is_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    tensor = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["logits"])], "g",
                              [tensor], [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1])])  # fmt: skip
    onnx.save(helper.make_model(graph), str(tmp_path / "other.onnx"))
    with pytest.raises(ValueError, match="no segtutor metadata"):
        deploy.OnnxSegmenter(tmp_path / "other.onnx")
