"""Tests for segtutor.widgets: drive each viewer through its controls, check what it draws.

The models are fakes with known outputs (class 1 on the left half; a left-to-right probability
ramp), so every count below is exact. No browser here: see test_browser.py for that.
"""

from __future__ import annotations

import io
import json
import math
import re

import nbformat
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from nbclient import NotebookClient
from PIL import Image
from torch import nn

from segtutor.config import History
from segtutor.data import SegmentationDataset
from segtutor.metrics import confusion_matrix, iou_from_confusion
from segtutor.settings import IGNORE_INDEX
from segtutor.viz import ERROR_COLORS, IGNORE_COLOR, colorize, to_uint8_image
from segtutor.widgets import (
    CLASS_ERROR_COLORS,
    STATIC_NOTE,
    AugmentationExplorer,
    DatasetViewer,
    LiveTrainingPlot,
    PredictionViewer,
)

SCENES = "data_samples/scenes/val"
CELLS = "data_samples/cells/val"


@pytest.fixture(scope="module")
def scenes():
    full = SegmentationDataset(SCENES, cache=True)
    return full.subset(full.stems[:6])


@pytest.fixture(scope="module")
def cells():
    full = SegmentationDataset(CELLS, cache=True)
    return full.subset(full.stems[:4])


def raw(dataset, index):
    image, mask = dataset.read_sample(index)
    return to_uint8_image(image), mask.numpy()


def color_count(picture, color):
    return int(np.all(picture == np.asarray(color, np.uint8), axis=-1).sum())


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


class HalfModel(nn.Module):
    """Class 1 on the left half of every image, class 0 on the right half."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.calls = 0

    def forward(self, images):  # (N, 3, H, W) -> (N, C, H, W)
        self.calls += 1
        n, _, h, w = images.shape
        logits = torch.zeros(n, self.num_classes, h, w)
        logits[:, 1, :, : w // 2] = 5.0
        logits[:, 0, :, w // 2 :] = 5.0
        return logits


class RampModel(nn.Module):
    """Two classes; P(class 1) of column x is (x + 0.5) / W, whatever the image."""

    def forward(self, images):
        n, _, h, w = images.shape
        p = (torch.arange(w) + 0.5) / w
        logits = torch.zeros(n, 2, h, w)
        logits[:, 1] = torch.log(p / (1 - p))  # softmax([0, log(p/(1-p))])[1] == p
        return logits


def half_preds(shape):
    h, w = shape
    preds = np.zeros((h, w), np.int64)
    preds[:, : w // 2] = 1
    return preds


# ---------------------------------------------------------------------------------------------
# DatasetViewer


def test_dataset_viewer_browses_with_slider_buttons_and_stem(scenes):
    viewer = DatasetViewer(scenes)
    assert viewer.index == 0 and scenes.stems[0] in viewer.title.value
    first_png = viewer.image_widget.value
    assert png_size(first_png) == (256, 256 + 16)  # 128 px enlarged to 256, plus the title strip

    viewer.slider.value = 2
    assert viewer.index == 2 and scenes.stems[2] in viewer.title.value
    np.testing.assert_array_equal(viewer.sample()[1], raw(scenes, 2)[1])
    assert viewer.image_widget.value != first_png
    viewer.next_button.click()
    assert viewer.index == 3
    viewer.prev_button.click()
    viewer.prev_button.click()
    assert viewer.index == 1
    viewer.stem_box.value = scenes.stems[5]
    assert viewer.index == 5
    viewer.next_button.click()  # already the last one: stays
    assert viewer.index == 5
    viewer.stem_box.value = "no such stem"  # ignored, as a half-typed name must be
    assert viewer.index == 5


def test_hidden_class_is_no_longer_coloured(scenes):
    viewer = DatasetViewer(scenes, alpha=1.0)
    c = 1  # disc
    index = next(i for i in range(len(scenes)) if (raw(scenes, i)[1] == c).sum() > 50)
    viewer.slider.value = index
    image, mask = raw(scenes, index)
    color = viewer.palette[c]

    shown = viewer.current_image()
    assert (shown[mask == c] == color).all()  # opacity 1: the class colour exactly
    before = color_count(shown, color)
    assert before >= (mask == c).sum()

    viewer.class_toggles[c].value = False
    hidden = viewer.current_image()
    np.testing.assert_array_equal(hidden[mask == c], image[mask == c])  # the raw image there
    assert color_count(hidden, color) == before - (mask == c).sum()
    other = (mask != c) & (mask != 0) & (mask != IGNORE_INDEX)
    np.testing.assert_array_equal(hidden[other], shown[other])  # other classes untouched
    assert viewer.visible_classes() == [2, 3]  # background starts hidden, 1 now too


def test_opacity_zero_gives_the_raw_image_and_ignore_is_white(scenes):
    viewer = DatasetViewer(scenes, alpha=1.0)
    image, mask = raw(scenes, 0)
    assert (mask == IGNORE_INDEX).any()
    assert (viewer.current_image()[mask == IGNORE_INDEX] == IGNORE_COLOR).all()
    viewer.ignore_toggle.value = False
    np.testing.assert_array_equal(
        viewer.current_image()[mask == IGNORE_INDEX], image[mask == IGNORE_INDEX]
    )

    viewer.class_toggles[0].value = True  # every class shown ...
    viewer.ignore_toggle.value = True
    viewer.opacity.value = 0.0  # ... at opacity 0
    np.testing.assert_array_equal(viewer.current_image(), image)


def test_side_by_side_shows_the_image_next_to_the_mask(scenes):
    viewer = DatasetViewer(scenes)
    image, mask = raw(scenes, 0)
    for toggle in viewer.class_toggles:
        toggle.value = True
    viewer.layout_toggle.value = "side by side"
    picture = viewer.current_image()
    h, w = mask.shape
    assert picture.shape == (h, 2 * w + 2, 3)
    np.testing.assert_array_equal(picture[:, :w], image)
    np.testing.assert_array_equal(picture[:, -w:], colorize(mask, viewer.palette))
    assert viewer.opacity.disabled
    assert png_size(viewer.image_widget.value)[0] == 2 * 256 + 2


def test_counts_table_lists_pixels_per_class(scenes):
    viewer = DatasetViewer(scenes)
    _, mask = raw(scenes, 0)
    table = viewer.counts.value
    for c, name in enumerate(scenes.class_names):
        assert re.search(rf"{name}</td><td[^>]*>{(mask == c).sum()}</td>", table)
    assert f">{(mask == IGNORE_INDEX).sum()}</td>" in table and "ignore (255)" in table


def test_binary_dataset(cells):
    viewer = DatasetViewer(cells, alpha=1.0)
    _, mask = raw(cells, 0)
    assert [t.description for t in viewer.class_toggles] == ["background", "cell"]
    assert not viewer.class_toggles[0].value and viewer.class_toggles[1].value
    assert (viewer.current_image()[mask == 1] == (240, 228, 66)).all()


def test_static_fallback_next_to_the_widget(scenes, capsys):
    viewer = DatasetViewer(scenes)
    bundle = viewer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert STATIC_NOTE in bundle["text/plain"] and STATIC_NOTE in bundle["text/html"]
    png = re.search(r'src="data:image/png;base64,([^"]+)"', bundle["text/html"]).group(1)
    import base64

    width, _ = png_size(base64.b64decode(png))
    assert width <= 512
    fig = viewer.show()  # no kernel here: a static figure and the note
    assert isinstance(fig, Figure)
    assert STATIC_NOTE in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# PredictionViewer


def test_prediction_viewer_error_map_counts(scenes):
    model = HalfModel(4)
    viewer = PredictionViewer(model, scenes)
    viewer.slider.value = 1
    _, mask = raw(scenes, 1)
    preds = half_preds(mask.shape)
    image_panel, truth, pred_panel, errors = viewer._rows()[0][0]

    np.testing.assert_array_equal(truth, colorize(mask, viewer.palette))
    np.testing.assert_array_equal(pred_panel, colorize(preds, viewer.palette))
    labelled = mask != IGNORE_INDEX
    fp = ((preds != 0) & (mask == 0)).sum()
    fn = ((preds == 0) & (mask != 0) & labelled).sum()
    wrong = ((preds != 0) & (mask != 0) & (preds != mask) & labelled).sum()
    assert fp > 0 and fn > 0 and wrong > 0
    assert color_count(errors, ERROR_COLORS["false positive"]) == fp
    assert color_count(errors, ERROR_COLORS["false negative"]) == fn
    assert color_count(errors, ERROR_COLORS["wrong class"]) == wrong
    assert color_count(errors, IGNORE_COLOR) == (~labelled).sum()

    viewer.class_dropdown.value = 2  # bar: its own false positives and negatives
    viewer.sort.value = "dataset order"
    viewer.slider.value = 1
    errors = viewer._rows()[0][0][3]
    assert color_count(errors, CLASS_ERROR_COLORS["false positive"]) == 0  # never predicts 2
    assert color_count(errors, CLASS_ERROR_COLORS["false negative"]) == (mask == 2).sum()
    viewer.class_dropdown.value = 1
    viewer.slider.value = 1
    errors = viewer._rows()[0][0][3]
    assert (
        color_count(errors, CLASS_ERROR_COLORS["false positive"])
        == ((preds == 1) & (mask != 1) & labelled).sum()
    )
    assert (
        color_count(errors, CLASS_ERROR_COLORS["true positive"])
        == ((preds == 1) & (mask == 1)).sum()
    )
    assert (
        color_count(errors, CLASS_ERROR_COLORS["false negative"])
        == ((preds != 1) & (mask == 1)).sum()
    )


def test_predictions_are_lazy_and_cached(scenes):
    model = HalfModel(4)
    viewer = PredictionViewer(model, scenes)
    assert model.calls == 1 and set(viewer._probs) == {0}  # only the image shown
    viewer.next_button.click()
    viewer.prev_button.click()
    viewer.view.value = "confidence"
    assert model.calls == 2
    assert viewer._rows()[0][1][3] == "confidence"


def test_per_image_iou_and_sort_by_worst(scenes):
    viewer = PredictionViewer(HalfModel(4), scenes)
    expected = []
    for i in range(len(scenes)):
        _, mask = raw(scenes, i)
        cm = confusion_matrix(torch.from_numpy(half_preds(mask.shape)), torch.from_numpy(mask), 4)
        iou = iou_from_confusion(cm).numpy()
        np.testing.assert_allclose(viewer.image_iou(i), iou)
        expected.append(float(np.nanmean(iou)))
    assert f"mIoU {expected[0]:.3f}" in viewer.title.value

    viewer.slider.value = 3
    viewer.sort.value = "worst IoU first"
    assert sorted(viewer.order) == list(range(len(scenes)))
    assert [expected[i] for i in viewer.order] == sorted(expected)
    assert viewer.slider.value == 0 and viewer.index == int(np.argmin(expected))
    assert "sorted" in viewer.status.value
    viewer.next_button.click()
    assert viewer.index == viewer.order[1]
    assert scenes.stems[viewer.order[1]] in viewer.title.value

    viewer.class_dropdown.value = 3  # worst ring IoU first, images without rings last
    ring = [viewer.image_score(i) for i in viewer.order]
    present = [s for s in ring if not math.isnan(s)]
    assert present == sorted(present) and ring[: len(present)] == present

    shown = viewer.index
    viewer.sort.value = "dataset order"
    assert viewer.order == list(range(len(scenes))) and viewer.index == shown


def test_binary_threshold_and_confidence(cells):
    viewer = PredictionViewer(RampModel(), cells)
    assert viewer.threshold.layout.display is None  # shown for two classes
    _, mask = raw(cells, 0)
    h, w = mask.shape
    cell_color = viewer.palette[1]
    viewer.threshold.value = 0.3
    pred_panel = viewer._rows()[0][0][2]
    columns = sum((x + 0.5) / w >= 0.3 for x in range(w))
    assert color_count(pred_panel, cell_color) == h * columns
    viewer.threshold.value = 0.5
    assert color_count(viewer._rows()[0][0][2], cell_color) == h * w // 2

    viewer.view.value = "confidence"
    confidence = viewer._rows()[0][0][3]
    assert confidence.shape == (h, w, 3)
    assert not (confidence[:, 0] == confidence[:, w // 2]).all()  # sure at the edges, not inside


def test_multiclass_model_hides_the_threshold(scenes):
    viewer = PredictionViewer(HalfModel(4), scenes)
    assert viewer.threshold.layout.display == "none"
    with pytest.raises(ValueError, match="predicts 3 classes"):
        PredictionViewer(HalfModel(3), scenes)


# ---------------------------------------------------------------------------------------------
# AugmentationExplorer


@pytest.fixture
def painted(tmp_path, scenes):
    """Images painted in their masks' colours: any misalignment shows as wrong colours."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    palette = [(0, 0, 0), (230, 159, 0), (86, 180, 233), (0, 158, 115)]
    for i in range(2):
        _, mask = raw(scenes, i)
        Image.fromarray(colorize(mask, palette)).save(tmp_path / "images" / f"p{i}.png")
        Image.fromarray(mask.astype(np.uint8)).save(tmp_path / "masks" / f"p{i}.png")
    (tmp_path / "dataset.json").write_text(
        json.dumps({"class_names": ["background", "disc", "bar", "ring"], "palette": palette})
    )
    return SegmentationDataset(tmp_path)


def interior(mask):
    """Pixels whose 3x3 neighbourhood has one label (away from edges, where interpolation mixes)."""
    same = np.ones(mask.shape, bool)
    padded = np.pad(mask, 1, mode="edge")
    h, w = mask.shape
    for dy in range(3):
        for dx in range(3):
            same &= padded[dy : dy + h, dx : dx + w] == mask
    return same


def test_augmentation_resample_changes_image_and_keeps_mask_aligned(painted):
    explorer = AugmentationExplorer(painted, num_samples=3)
    explorer.color_jitter.value = 0.0  # keep the painted colours
    explorer.rotation.value = 30
    explorer.vflip.value = True
    for _ in range(2):
        before = [image.copy() for image, _ in explorer.samples]
        before_png = explorer.image_widget.value
        explorer.resample_button.click()
        assert len(explorer.samples) == 3
        assert any((a != b).any() for a, (b, _) in zip(before, explorer.samples, strict=True))
        assert explorer.image_widget.value != before_png
        for image, mask in explorer.samples:
            assert set(np.unique(mask)) <= {0, 1, 2, 3, IGNORE_INDEX}
            inside = interior(mask) & (mask != IGNORE_INDEX)
            expected = colorize(np.where(mask == IGNORE_INDEX, 0, mask), painted.palette)
            close = np.abs(image.astype(int) - expected).max(axis=-1) <= 12
            assert close[inside].mean() > 0.99


def test_augmentation_off_is_identity_and_global_rng_untouched(scenes):
    explorer = AugmentationExplorer(scenes, num_samples=2)
    for control, value in (
        (explorer.crop, False),
        (explorer.hflip, False),
        (explorer.rotation, 0),
        (explorer.color_jitter, 0.0),
    ):
        control.value = value
    image, mask = raw(scenes, 0)
    for sample_image, sample_mask in explorer.samples:
        np.testing.assert_array_equal(sample_mask, mask)
        assert np.abs(sample_image.astype(int) - image).max() <= 1
    state = torch.get_rng_state()
    explorer.resample()
    assert torch.equal(torch.get_rng_state(), state)
    explorer.slider.value = 1
    assert explorer.index == 1
    picture = explorer.current_image()
    assert picture.shape == (2 * 128 + 2, 3 * 128 + 2 * 2, 3)  # two rows of three panels
    explorer.show_as.value = "overlay"
    assert (explorer.current_image() != picture).any()


# ---------------------------------------------------------------------------------------------
# LiveTrainingPlot


def fake_history(num_epochs: int) -> History:
    history = History()
    for epoch in range(1, num_epochs + 1):
        history.epoch.append(epoch)
        history.train_loss.append(1 / epoch)
        history.val_loss.append(1.2 / epoch)
        history.val_iou.append([0.5, 0.1 * epoch])
        history.val_miou.append(0.3 + 0.05 * epoch)
        history.val_pixel_accuracy.append(0.9)
        history.lr.append(1e-3)
        history.epoch_time_s.append(1.0)
    return history


def test_live_plot_redraws_with_each_epoch():
    plot = LiveTrainingPlot()
    for epoch in range(1, 4):
        plot.on_epoch_end(epoch, fake_history(epoch))
        assert len(plot.figure.axes[0].lines[0].get_xdata()) == epoch
    plot.on_train_end(fake_history(3))
    assert plot.updates == 3  # nothing new to draw at the end

    sparse = LiveTrainingPlot(every=2)
    for epoch in range(1, 4):
        sparse.on_epoch_end(epoch, fake_history(epoch))
    sparse.on_train_end(fake_history(3))
    assert sparse.updates == 2 and len(sparse.figure.axes[0].lines[0].get_xdata()) == 3


@pytest.mark.slow  # starts a Jupyter kernel
def test_live_plot_leaves_one_output_in_the_notebook():
    """In a real kernel: five epochs, one stored figure (updated in place), no text."""
    code = (
        "from segtutor.train import History\n"
        "from segtutor.widgets import LiveTrainingPlot\n"
        "plot, history = LiveTrainingPlot(), History()\n"
        "for epoch in range(1, 6):\n"
        "    for name, value in [('epoch', epoch), ('train_loss', 1 / epoch), ('val_loss', 1.0),\n"
        "                        ('val_iou', [0.5]), ('val_miou', 0.5), ('lr', 1e-3),\n"
        "                        ('val_pixel_accuracy', 0.9), ('epoch_time_s', 1.0)]:\n"
        "        getattr(history, name).append(value)\n"
        "    plot.on_epoch_end(epoch, history)\n"
        "plot.on_train_end(history)\n"
        "assert plot.updates == 5"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    outputs = notebook.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data"], outputs
    assert "image/png" in outputs[0].data


# --- UploadPredictor ---------------------------------------------------------------------------


def _upload(widget, name, content):
    """What the browser sends when a file is chosen (ipywidgets 8's FileUpload value)."""
    import datetime

    widget.upload.value = (
        {
            "name": name,
            "type": "image/png",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc),
        },
    )


class _LeftIsOne(nn.Module):
    """Class 1 on the left half of any input, class 0 on the right; 2 classes."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, images):
        width = images.shape[-1]
        left = (torch.arange(width) < width // 2).float().expand_as(images[:, :1])
        return torch.cat([1 - left, left], dim=1) + self.dummy


def test_upload_predictor_shows_the_overlay_and_areas_of_an_upload(tmp_path):
    from test_predict import write_checkpoint

    from segtutor.inference import Predictor, read_photo
    from segtutor.viz import overlay
    from segtutor.widgets import UploadPredictor

    write_checkpoint(tmp_path / "best.pt", working_scale=0.5)
    left = Predictor(_LeftIsOne(), num_classes=2, class_names=["bg", "left"],
                     palette=[(0, 0, 0), (255, 0, 0)], window=None)  # fmt: skip
    viewer = UploadPredictor({"left half": left, "unet": tmp_path / "best.pt"})
    assert viewer.class_areas() == {} and viewer.current_image().shape == (96, 128, 3)
    pixels = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 40 x 30, shown 30 wide and 40 high
    Image.fromarray(pixels).save(buffer, format="PNG", exif=exif.tobytes())
    _upload(viewer, "photo.png", buffer.getvalue())
    upright = read_photo(buffer.getvalue())
    assert viewer.preds.shape == (40, 30) and np.array_equal(viewer.pixels, upright)
    assert viewer.class_areas() == {"bg": 40 * 15, "left": 40 * 15}
    assert "photo.png" in viewer.status.value and "30 x 40" in viewer.status.value
    assert "left" in viewer.areas.value and "50.0%" in viewer.areas.value
    expected = overlay(upright, viewer.preds, [(0, 0, 0), (255, 0, 0)])
    assert np.array_equal(viewer.current_image()[:, -30:], expected)  # photo | prediction
    assert viewer.image_widget.value  # the picture was drawn
    viewer.model_dropdown.value = "unet"  # another model: predicted again, its classes
    unet = Predictor.from_checkpoint(tmp_path / "best.pt")
    assert np.array_equal(viewer.preds, unet.predict(upright).numpy())
    assert set(viewer.class_areas()) == {"background", "disc", "bar"}
    viewer.tta.value = True
    assert viewer.predictor.tta == "flip"
    flipped = Predictor.from_checkpoint(tmp_path / "best.pt", tta="flip").predict(upright)
    assert np.array_equal(viewer.preds, flipped.numpy())


def test_upload_predictor_says_why_an_upload_is_not_an_image():
    from segtutor.inference import Predictor
    from segtutor.widgets import UploadPredictor

    viewer = UploadPredictor(Predictor(_LeftIsOne(), num_classes=2, window=None))
    _upload(viewer, "notes.txt", b"hello")
    assert "notes.txt" in viewer.status.value and "cannot be read" in viewer.status.value
    assert viewer.preds is None
    assert "UploadPredictor" in viewer._repr_mimebundle_()["text/plain"]  # static fallback
