"""Tests for segtutor.sizing and the resizing it asks for (segtutor.transforms.Rescale).

`region_width` is checked on masks whose answer is known by hand (squares of side L are L wide,
however many there are; the parts of one object make one region; ignored pixels are no region),
`working_scale` on its cap, its floor and its rounding, and `Rescale` / `eval_transforms(scale=)`
on the sizes they give and on masks keeping their labels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from segtutor.sizing import TARGET_REGION_PX, region_width, sample_masks, working_scale
from segtutor.transforms import Rescale, eval_transforms, scaled_size


def square(size: int, side: int, top: int, left: int, label: int = 1) -> np.ndarray:
    """A `(size, size)` background mask with one `side`-pixel square of `label`."""
    mask = np.zeros((size, size), np.uint8)
    mask[top : top + side, left : left + side] = label
    return mask


# --- region_width ---------------------------------------------------------------------------


@pytest.mark.parametrize("side", [3, 10, 40])
def test_one_square_is_as_wide_as_its_side(side: int) -> None:
    assert region_width([square(64, side, 5, 9)]) == pytest.approx(side)


def test_many_small_squares_are_as_wide_as_one_of_them() -> None:
    mask = np.zeros((80, 80), np.uint8)
    for top in range(4, 70, 12):
        for left in range(4, 70, 12):
            mask[top : top + 6, left : left + 6] = 1 + (top // 12 + left // 12) % 2  # two classes
    assert region_width([mask]) == pytest.approx(6)
    # and over several masks: the sums of areas and outlines, not a mean of widths
    assert region_width([mask, square(80, 6, 30, 30)]) == pytest.approx(6)


def test_a_rectangle_is_as_wide_as_the_harmonic_mean_of_its_sides() -> None:
    mask = np.zeros((60, 60), np.uint8)
    mask[10:14, 10:40] = 1  # 4 x 30
    assert region_width([mask]) == pytest.approx(2 * 4 * 30 / (4 + 30))


def test_the_parts_of_one_object_make_one_region() -> None:
    # a "person": a shirt (class 1) on a skirt (class 2), one 40 x 20 block; each part is 20x20
    mask = np.zeros((100, 100), np.uint8)
    mask[10:30, 30:50] = 1
    mask[30:50, 30:50] = 2
    expected = 2 * 40 * 20 / (40 + 20)  # the union's width (26.7), not each part's (20)
    assert region_width([mask]) == pytest.approx(expected)


def test_the_most_common_class_is_the_background_whatever_its_number() -> None:
    # class 2 covers most pixels: the square of class 0 is the region
    mask = np.full((64, 64), 2, np.uint8)
    mask[10:22, 10:22] = 0
    assert region_width([mask]) == pytest.approx(12)


def test_ignored_pixels_belong_to_no_region() -> None:
    mask = square(64, 12, 20, 20)
    mask[:, 50:] = 255  # a large ignored band away from the square
    assert region_width([mask]) == pytest.approx(12)
    # ignore as the most common value: still not the background, nor a region
    mostly_ignored = np.full((64, 64), 255, np.uint8)
    mostly_ignored[5:45, 5:45] = 0
    mostly_ignored[15:25, 15:25] = 1
    assert region_width([mostly_ignored]) == pytest.approx(10)
    # a ring of ignored pixels around a region (as VOC draws its borders) is still its outline
    ringed = square(64, 14, 20, 20, label=255)
    ringed[21:33, 21:33] = 1
    assert region_width([ringed]) == pytest.approx(12)


def test_no_region_means_infinitely_wide() -> None:
    assert region_width([np.zeros((16, 16), np.uint8)]) == math.inf
    only_one_class = np.full((16, 16), 3, np.uint8)
    only_one_class[:4] = 255  # ignore is not a class
    assert region_width([only_one_class, only_one_class]) == math.inf
    assert region_width([]) == math.inf


def test_sample_masks_spreads_over_the_set() -> None:
    read = []
    masks = sample_masks(lambda i: read.append(i) or np.full((2, 2), i), count=10, limit=4)
    assert read == [0, 3, 6, 9] and [int(m[0, 0]) for m in masks] == read
    assert len(sample_masks(lambda i: np.zeros((2, 2)), count=3, limit=200)) == 3


# --- working_scale ----------------------------------------------------------------------------


def test_working_scale_brings_a_region_to_the_target_width() -> None:
    assert working_scale(TARGET_REGION_PX * 4, short_side=2000, input_size=96) == 0.25
    assert working_scale(120, short_side=1000, input_size=32, target=24) == 0.2


def test_working_scale_never_enlarges() -> None:
    assert working_scale(8, short_side=512, input_size=96) == 1.0
    assert working_scale(TARGET_REGION_PX, short_side=512, input_size=96) == 1.0
    assert working_scale(0, short_side=512, input_size=96) == 1.0


def test_working_scale_never_makes_an_image_smaller_than_a_crop() -> None:
    # regions 500 px wide would ask for 0.048; a 550-px side must keep 96 px: 96/550 = 0.1745
    assert working_scale(500, short_side=550, input_size=96) == 0.18
    for short_side in range(97, 2000, 37):
        for input_size in (32, 64, 96):
            scale = working_scale(10_000, short_side, input_size)
            assert scale >= input_size / short_side  # the floor, rounded up, never down
            assert min(scaled_size(short_side, short_side, scale)) >= input_size
            assert round(scale * 100) == pytest.approx(scale * 100)  # two decimals


def test_working_scale_rounds_up_to_two_decimals() -> None:
    assert working_scale(70, short_side=5000, input_size=32) == 0.35  # 24/70 = 0.3429
    assert working_scale(24 / 0.3, short_side=5000, input_size=32) == 0.3  # exactly 0.3 stays
    assert working_scale(96, short_side=5000, input_size=32) == 0.25


def test_no_region_keeps_the_images_as_they_are() -> None:
    assert working_scale(math.inf, short_side=550, input_size=96) == 1.0


# --- Rescale, scaled_size, eval_transforms(scale=) --------------------------------------------


def test_scaled_size_rounds_and_keeps_a_pixel() -> None:
    assert scaled_size(360, 480, 0.5) == (180, 240)
    assert scaled_size(550, 830, 0.18) == (99, 149)
    assert scaled_size(3, 5, 0.01) == (1, 1)


def test_rescale_keeps_mask_labels_and_gives_scaled_sizes() -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 3, 7, 255])
    mask = labels[torch.randint(0, 4, (37, 53), generator=g)]
    image = torch.randint(0, 256, (3, 37, 53), dtype=torch.uint8, generator=g)
    for scale in (0.37, 0.5, 0.9):
        out_image, out_mask = Rescale(scale)(tv_tensors.Image(image), tv_tensors.Mask(mask))
        size = scaled_size(37, 53, scale)
        assert out_image.shape == (3, *size) and out_mask.shape == size
        assert set(out_mask.unique().tolist()) <= {0, 3, 7, 255}  # nearest: no label invented
        assert out_mask.dtype == mask.dtype and out_image.dtype == torch.uint8


def test_rescale_smooths_images() -> None:
    # one-pixel stripes shrunk by half: antialiasing averages them to grey; nearest would not
    image = torch.zeros(3, 16, 16, dtype=torch.uint8)
    image[:, :, ::2] = 255
    out = Rescale(0.5)(tv_tensors.Image(image))
    assert out.shape == (3, 8, 8)
    assert 100 <= int(out.float().mean()) <= 155 and int(out.max()) < 200


def test_rescale_refuses_a_scale_that_is_not_positive() -> None:
    for scale in (0, -0.5):
        with pytest.raises(ValueError, match="positive"):
            Rescale(scale)


def test_eval_transforms_scale_halves_image_and_mask() -> None:
    image = torch.randint(0, 256, (3, 40, 60), dtype=torch.uint8)
    mask = torch.randint(0, 3, (40, 60))
    out_image, out_mask = eval_transforms(scale=0.5)(image, mask)
    assert out_image.shape == (3, 20, 30) and out_image.dtype == torch.float32
    assert out_mask.shape == (20, 30) and out_mask.dtype == torch.int64
    same_image, same_mask = eval_transforms()(image, mask)
    assert same_image.shape == (3, 40, 60) and torch.equal(same_mask, mask)
    # a fixed size wins: the model was trained on whole images of that size
    sized, _ = eval_transforms((32, 32), scale=0.5)(image, mask)
    assert sized.shape == (3, 32, 32)
