"""Tests for segtutor.inference: predictions, the per-image score, the worst-first ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torch import nn

from segtutor.errors import DataError
from segtutor.inference import (
    Predictor,
    class_map,
    image_iou,
    predict,
    predict_logits,
    rank_worst,
    read_photo,
    resize_logits,
    sliding_window_logits,
    window_weights,
    worst_k,
)
from segtutor.metrics import ConfusionMatrix
from segtutor.transforms import eval_transforms


def test_predict_shapes():
    torch.manual_seed(0)
    model = nn.Conv2d(3, 3, kernel_size=1)
    images = torch.rand(2, 3, 8, 8)
    assert predict_logits(model, images).shape == (2, 3, 8, 8)
    assert predict(model, images).dtype == torch.int64
    assert predict(model, images[0], size=(4, 6)).shape == (4, 6)
    assert torch.equal(predict(model, images)[1], predict(model, images[1]))
    model.train()
    predict(model, images)
    assert model.training  # put back as it was


def test_resize_logits_leaves_the_right_size_alone():
    logits = torch.rand(1, 2, 4, 4)
    assert resize_logits(logits, (4, 4)) is logits
    assert resize_logits(logits, (8, 6)).shape == (1, 2, 8, 6)


def test_image_iou_matches_the_confusion_matrix():
    mask = torch.tensor([[0, 0, 1, 1], [0, 2, 1, 255]])
    preds = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 2]])
    iou = image_iou(preds, mask, num_classes=4)
    cm = ConfusionMatrix(4)
    cm.update(preds[None], mask[None])
    torch.testing.assert_close(iou, cm.iou(), equal_nan=True)
    assert iou.dtype == torch.float64 and iou.shape == (4,)
    assert iou[0] == pytest.approx(2 / 4) and iou[1] == pytest.approx(3 / 4) and iou[2] == 0
    assert math.isnan(iou[3])  # class 3 in neither the mask nor the prediction
    assert image_iou(preds, torch.full_like(mask, 255), 4).isnan().all()  # nothing labelled


def test_rank_worst_lowest_first_nan_left_out_ties_in_order():
    nan = math.nan
    assert rank_worst([0.9, nan, 0.2, 0.9, 0.5]) == [2, 4, 0, 3]
    assert rank_worst([0.9, nan, 0.2, 0.9, 0.5], k=3) == [2, 4, 0]
    assert rank_worst([0.3, 0.3, 0.1], k=2) == [2, 0]  # equal scores keep the dataset order
    assert rank_worst(torch.tensor([nan, nan])) == []
    assert rank_worst([0.5, 0.4], k=10) == [1, 0]


class RedIsClassOne(nn.Module):
    """Predicts class 1 where the red channel is above 0.5, else class 0."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, images):
        red = (images[:, :1] > 0.5).float()
        return torch.cat([1 - red, red], dim=1) + self.dummy


def test_worst_k_orders_by_per_image_miou():
    dataset = []
    for wrong_pixels in [0, 8, 2, 16]:  # of 16 pixels, how many the model gets wrong
        image = torch.zeros(3, 4, 4)
        image[0].view(-1)[:8] = 1.0  # red on the top half
        mask = (image[0] > 0.5).long()
        mask.view(-1)[:wrong_pixels] = 1 - mask.view(-1)[:wrong_pixels]
        dataset.append((image, mask))
    dataset.append((torch.zeros(3, 4, 4), torch.full((4, 4), 255)))  # nothing labelled: skipped
    ranked = worst_k(RedIsClassOne(), dataset, k=3, num_classes=2)
    assert [index for index, _ in ranked] == [3, 1, 2]
    assert ranked[0][1] == pytest.approx(0.0)
    # image 2: class 1 has TP 6, FP 2 -> 6/8; class 0 has TP 8, FN 2 -> 8/10
    assert ranked[2][1] == pytest.approx((6 / 8 + 8 / 10) / 2)


# --- sliding window, test-time augmentation, new photographs ------------------------------------


class CountingModel(nn.Module):
    """A 1x1 convolution (each pixel's logits depend on that pixel only) that records its inputs."""

    def __init__(self, num_classes=3):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, num_classes, kernel_size=1)
        self.shapes = []

    def forward(self, images):
        self.shapes.append(tuple(images.shape))
        return self.conv(images)


def test_a_window_that_covers_the_image_is_whole_image_prediction():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1))
    images = torch.randn(2, 3, 20, 24)
    whole = predict_logits(model, images)
    for window in (24, (20, 24), 100):
        assert torch.equal(sliding_window_logits(model, images, window), whole)


@pytest.mark.parametrize("blend", ["gaussian", "constant"])
def test_blended_windows_equal_whole_image_for_a_pointwise_model(blend):
    model = CountingModel()
    images = torch.randn(2, 3, 45, 70)
    whole = predict_logits(model, images)
    model.shapes.clear()
    logits = sliding_window_logits(model, images, 16, overlap=0.5, blend=blend, batch_size=5)
    torch.testing.assert_close(logits, whole, atol=1e-5, rtol=1e-5)
    # windows of 16x16, batched by at most 5, covering every pixel of both images
    assert {shape[1:] for shape in model.shapes} == {(3, 16, 16)}
    assert max(shape[0] for shape in model.shapes) == 5
    rows, cols = len(range(0, 45 - 16, 8)) + 1, len(range(0, 70 - 16, 8)) + 1
    assert sum(shape[0] for shape in model.shapes) == 2 * rows * cols


def test_blended_windows_are_close_for_a_small_receptive_field():
    # a 3x3 convolution sees one pixel beyond the window: only window edges differ, and the
    # Gaussian blend trusts them least
    torch.manual_seed(0)
    model = nn.Conv2d(3, 2, kernel_size=3, padding=1)
    images = torch.rand(1, 3, 64, 96)
    whole = predict_logits(model, images)
    blended = sliding_window_logits(model, images, 32, overlap=0.5)
    interior = (slice(None), slice(None), slice(1, -1), slice(1, -1))  # image border: zero pad
    assert (blended - whole)[interior].abs().mean() < 0.01 * whole.abs().mean()
    assert (class_map(blended) == class_map(whole)).float().mean() > 0.98


def test_window_weights():
    weights = window_weights((9, 16))
    assert weights.shape == (9, 16) and weights.max() == 1
    assert weights[4, 7] > weights[0, 7] > weights[0, 0] >= 1e-3  # centre counts most
    torch.testing.assert_close(weights, weights.flip(0).flip(1))
    assert torch.equal(window_weights((3, 2), "constant"), torch.ones(3, 2))
    with pytest.raises(ValueError, match="blend"):
        window_weights((3, 3), "median")
    with pytest.raises(ValueError, match="overlap"):
        sliding_window_logits(CountingModel(), torch.rand(1, 3, 8, 8), 4, overlap=1.0)


class LeftIsClassOne(nn.Module):
    """Not flip-equivariant: class 1 scores higher on the left half of any input."""

    def forward(self, images):
        width = images.shape[-1]
        ramp = torch.linspace(1, -1, width).expand_as(images[:, :1])  # (N, 1, H, W)
        return torch.cat([-ramp, ramp], dim=1) + images[:, :1]


def test_flip_tta_changes_nothing_for_a_flip_equivariant_model():
    model = CountingModel()
    images = torch.randn(2, 3, 10, 13)
    torch.testing.assert_close(
        predict_logits(model, images, tta="flip"), predict_logits(model, images)
    )
    window = predict_logits(model, images, tta="flip", window=8)
    torch.testing.assert_close(window, predict_logits(model, images), atol=1e-5, rtol=1e-5)


def test_flip_tta_averages_the_mirrored_prediction():
    model = LeftIsClassOne()
    images = torch.randn(1, 3, 6, 10)
    plain = predict_logits(model, images)
    tta = predict_logits(model, images, tta="flip")
    assert not torch.allclose(tta, plain)
    expected = (plain + model(images.flip(-1)).flip(-1)) / 2
    torch.testing.assert_close(tta, expected)
    # the ramp and its mirror image cancel: what is left is the pixel term alone
    torch.testing.assert_close(tta[:, 1], images[:, 0])
    with pytest.raises(ValueError, match="tta"):
        predict_logits(model, images, tta="rotate")


def _exif_photo(path, orientation, size=(40, 20)):
    rng = np.random.default_rng(orientation)
    image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, exif=exif.tobytes())
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_read_photo_turns_exif_rotated_photos_upright(tmp_path, orientation):
    path = _exif_photo(tmp_path / "photo.png", orientation)
    pixels = read_photo(path)
    with Image.open(path) as img:
        expected = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    assert np.array_equal(pixels, expected)
    assert pixels.shape[:2] == ((40, 20) if orientation >= 5 else (20, 40))  # as displayed
    assert np.array_equal(read_photo(path.read_bytes()), expected)  # an upload: the bytes


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "I;16"])
def test_read_photo_reads_any_mode_as_rgb(tmp_path, mode):
    grey = np.arange(12 * 7, dtype=np.uint8).reshape(7, 12) * 3
    if mode == "I;16":
        image = Image.fromarray(grey.astype(np.uint16) * 257)
    else:
        image = Image.fromarray(np.repeat(grey[:, :, None], 3, 2)).convert(mode)
    image.save(tmp_path / "x.png")
    pixels = read_photo(tmp_path / "x.png")
    assert pixels.shape == (7, 12, 3) and pixels.dtype == np.uint8
    if mode != "P":  # a palette quantises the greys
        assert np.array_equal(pixels[..., 1], grey)


def test_read_photo_names_a_broken_file(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="broken.png"):
        read_photo(tmp_path / "broken.png")
    with pytest.raises(DataError, match="upload.jpg"):
        read_photo(b"not an image", name="upload.jpg")


def test_predictor_feeds_a_photo_at_the_working_scale_and_answers_at_its_size():
    model = CountingModel(num_classes=2)
    pixels = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    predictor = Predictor(model, num_classes=2, scale=0.5, window=None)
    logits = predictor.logits(pixels)
    assert logits.shape == (2, 37, 53)
    assert model.shapes[-1] == (1, 3, 18, 26)  # 37x53 at half scale, rounded
    images, _ = eval_transforms(scale=0.5)(
        torch.from_numpy(pixels).permute(2, 0, 1), torch.zeros(37, 53)
    )
    torch.testing.assert_close(logits, predict_logits(model, images, size=(37, 53)))
    assert torch.equal(predictor.predict(pixels), class_map(logits))
    # a window smaller than the photo: windowed, and the same answer for a pointwise model
    windowed = Predictor(model, num_classes=2, scale=0.5, window=8)
    torch.testing.assert_close(windowed.logits(pixels), logits, atol=1e-5, rtol=1e-5)
    assert model.shapes[-1][1:] == (3, 8, 8)
    # resized to a square for a model trained on resized images, never windowed
    Predictor(model, num_classes=2, input_size=32, window=8).logits(pixels)
    assert model.shapes[-1] == (1, 3, 32, 32)
