"""Tests for segtutor.transforms: image and mask move together, masks keep their labels."""

import numpy as np
import PIL.Image
import pytest
import torch
from torchvision import tv_tensors

from segtutor.settings import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD
from segtutor.transforms import denormalize, eval_transforms, shrink_batch, train_transforms

LEVEL = 60  # image grey value per label: label k is drawn with value k * LEVEL


def labelled_pair(seed: int, size=(64, 80), block=16):
    """An image whose grey value encodes the mask label, in random 16-pixel blocks.

    Returns image uint8 `(3, H, W)` and mask int64 `(H, W)` with labels 0..3; no two
    neighbouring layouts are symmetric, so an unpaired flip or crop would show.
    """
    generator = torch.Generator().manual_seed(seed)
    h, w = size
    blocks = torch.randint(0, 4, (h // block, w // block), generator=generator)
    mask = blocks.repeat_interleave(block, 0).repeat_interleave(block, 1)
    image = (mask * LEVEL).to(torch.uint8).expand(3, h, w).clone()
    return tv_tensors.Image(image), tv_tensors.Mask(mask)


def misaligned_pixels(image: torch.Tensor, mask: torch.Tensor) -> int:
    """Mask pixels (not ignore, not next to a label edge) whose image value says another label."""
    implied = torch.round(image[0] * 255 / LEVEL).long()  # (H, W)
    # Interpolation blurs the image across label edges, so compare away from them: a pixel
    # counts when its 5x5 neighbourhood in the mask holds one label only.
    # Outside the picture counts as another label: rotation blends the image with its fill there.
    padded = torch.nn.functional.pad(mask[None, None].float(), (2, 2, 2, 2), value=-1.0)
    low = -torch.nn.functional.max_pool2d(-padded, 5, stride=1)[0, 0]
    high = torch.nn.functional.max_pool2d(padded, 5, stride=1)[0, 0]
    interior = (low == high) & (mask != IGNORE_INDEX)
    return int((implied[interior] != mask[interior]).sum())


def raw(**overrides):
    """Train transforms without colour jitter or normalisation, so the image still encodes labels."""
    kwargs = dict(size=(48, 48), color_jitter=0, mean=None, std=None, vflip=True, rotation=25.0)
    return train_transforms(**{**kwargs, **overrides})


def test_train_transforms_keep_image_and_mask_aligned():
    transform = raw()
    checked = 0
    for seed in range(40):
        image, mask = labelled_pair(seed)
        torch.manual_seed(seed)
        out_image, out_mask = transform(image, mask)
        assert misaligned_pixels(out_image, out_mask) == 0, f"seed {seed}"
        checked += int((out_mask != IGNORE_INDEX).sum())
    assert checked > 40 * 48 * 48 * 0.8  # rotation ignores the corners, not the picture


def test_alignment_check_catches_a_flip_of_the_image_alone():
    # The oracle above must be able to fail: flip only the image and it does.
    image, mask = labelled_pair(0)
    out_image, out_mask = eval_transforms(mean=None, std=None)(image, mask)
    assert misaligned_pixels(out_image, out_mask) == 0
    assert misaligned_pixels(out_image.flip(-1), out_mask) > 100


def test_masks_get_no_new_labels():
    # Per-pixel random labels: any interpolation of the mask would create values in between.
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1, 3, 7])
    mask = labels[torch.randint(0, 4, (70, 90), generator=generator)]
    image = torch.randint(0, 256, (3, 70, 90), dtype=torch.uint8, generator=generator)
    for seed in range(10):
        torch.manual_seed(seed)
        _, out = train_transforms((48, 48), rotation=30.0)(image, mask)
        assert set(out.unique().tolist()) <= {0, 1, 3, 7, IGNORE_INDEX}
        _, out = train_transforms((48, 48), rotation=0)(image, mask)
        assert set(out.unique().tolist()) <= {0, 1, 3, 7}
    _, out = eval_transforms((33, 41))(image, mask)
    assert set(out.unique().tolist()) <= {0, 1, 3, 7}


def test_rotation_fills_mask_with_ignore_and_image_with_black():
    image = torch.full((3, 64, 64), 200, dtype=torch.uint8)
    mask = torch.ones(64, 64, dtype=torch.int64)
    transform = train_transforms((64, 64), scale=None, hflip=False, rotation=45.0, color_jitter=0)
    black = -torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)  # 0, normalised
    filled = 0
    for seed in range(10):
        torch.manual_seed(seed)
        out_image, out_mask = transform(image, mask)
        assert set(out_mask.unique().tolist()) <= {1, IGNORE_INDEX}
        # Pixels far outside the rotated picture (3x3 all ignored) are pure fill in the image.
        ignored = (out_mask == IGNORE_INDEX).float()[None, None]
        outside = -torch.nn.functional.max_pool2d(-ignored, 3, stride=1, padding=1)[0, 0] == 1
        torch.testing.assert_close(
            out_image[:, outside], black[:, None].expand(3, int(outside.sum()))
        )
        filled += int(outside.sum())
    assert filled > 0


def test_color_jitter_changes_the_image_but_never_the_mask():
    image, mask = labelled_pair(3, size=(48, 48))
    image = tv_tensors.Image(torch.randint(30, 220, image.shape, dtype=torch.uint8))
    jitter = train_transforms((48, 48), scale=None, hflip=False, rotation=0, color_jitter=0.5)
    plain = eval_transforms()
    changed = 0
    for seed in range(5):
        torch.manual_seed(seed)
        out_image, out_mask = jitter(image, mask)
        assert torch.equal(out_mask, mask.as_subclass(torch.Tensor))
        changed += not torch.allclose(out_image, plain(image, mask)[0])
    assert changed == 5


@pytest.mark.parametrize("make", [train_transforms, eval_transforms])
def test_output_types_shapes_and_dtypes(make):
    image, mask = labelled_pair(0, size=(64, 96))
    out_image, out_mask = make((32, 48))(image, mask)
    assert type(out_image) is torch.Tensor and type(out_mask) is torch.Tensor
    assert out_image.shape == (3, 32, 48) and out_image.dtype == torch.float32
    assert out_mask.shape == (32, 48) and out_mask.dtype == torch.int64


def test_accepts_pil_numpy_and_plain_tensors():
    image, mask = labelled_pair(0, size=(32, 48))
    array = image.permute(1, 2, 0).numpy()
    inputs = [
        (image, mask),
        (image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)),
        (PIL.Image.fromarray(array), PIL.Image.fromarray(mask.numpy().astype(np.uint8))),
        (array, mask.numpy()),
        (image, mask[None]),  # (1, H, W) masks are squeezed
    ]
    expected = eval_transforms()(image, mask)
    for pair in inputs:
        out_image, out_mask = eval_transforms()(*pair)
        torch.testing.assert_close(out_image, expected[0])
        assert torch.equal(out_mask, expected[1])


def test_eval_transforms_without_size_keep_the_size():
    image, mask = labelled_pair(0, size=(37, 53), block=1)
    out_image, out_mask = eval_transforms()(image[:, :37, :53], mask[:37, :53])
    assert out_image.shape == (3, 37, 53) and out_mask.shape == (37, 53)
    assert torch.equal(out_mask, mask.as_subclass(torch.Tensor))


def test_eval_transforms_are_deterministic_and_match_train_with_everything_off():
    image, mask = labelled_pair(1)
    off = train_transforms((32, 32), scale=None, hflip=False, rotation=0, color_jitter=0)
    a, b = off(image, mask), eval_transforms((32, 32))(image, mask)
    torch.testing.assert_close(a[0], b[0])
    assert torch.equal(a[1], b[1])


def test_denormalize_undoes_normalisation():
    image, mask = labelled_pair(2)
    normalised, _ = eval_transforms()(image, mask)
    expected = image.as_subclass(torch.Tensor).float() / 255
    torch.testing.assert_close(denormalize(normalised), expected)
    torch.testing.assert_close(denormalize(normalised[None]), expected[None])  # (N, 3, H, W)


def test_shrink_batch_keeps_labels_aligned_and_sizes_in_sixteens():
    pairs = [labelled_pair(seed, size=(96, 112)) for seed in range(3)]
    images = torch.stack([image for image, _ in pairs]).float() / 255
    masks = torch.stack([mask for _, mask in pairs])
    masks[:, :, :8] = IGNORE_INDEX
    small_images, small_masks = shrink_batch(images, masks, 2 / 3)
    assert small_images.shape == (3, 3, 64, 80)  # 96 * 2/3 = 64; 112 * 2/3 = 74.7 -> 80
    assert small_masks.shape == (3, 64, 80) and small_masks.dtype == torch.int64
    assert set(small_masks.unique().tolist()) <= set(masks.unique().tolist())  # picked, not mixed
    assert (small_masks[:, :, :4] == IGNORE_INDEX).all()  # ignore stays ignore
    for image, mask in zip(small_images, small_masks, strict=True):
        assert misaligned_pixels(image, mask) == 0
    same_images, same_masks = shrink_batch(images, masks, 1.0)
    assert same_images is images and same_masks is masks  # 1: as it is, not rounded to 16s
    tiny_images, _ = shrink_batch(images[:, :, :20, :20], masks[:, :20, :20], 0.5)
    assert tiny_images.shape[-2:] == (16, 16)  # at least one multiple
