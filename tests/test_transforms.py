"""Tests for segtutor.transforms: image and mask move together, masks keep their labels."""

import numpy as np
import PIL.Image
import pytest
import torch
from torchvision import tv_tensors

from segtutor.settings import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD
from segtutor.transforms import (
    BatchAugment,
    denormalize,
    eval_transforms,
    jitter_batch,
    rotate_batch,
    shrink_batch,
    train_transforms,
)

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


# --- BatchAugment: rotation, jitter and normalisation on whole batches --------------------------


def unit_samples(seeds, size=(64, 80)):
    """`labelled_pair`s as the recipe's datasets hand them to BatchAugment: images in [0, 1]."""
    to_unit = eval_transforms(mean=None, std=None)
    return [to_unit(*labelled_pair(seed, size=size)) for seed in seeds]


def test_batch_rotation_keeps_each_image_and_its_mask_aligned():
    augment = BatchAugment(rotation=25.0, color_jitter=0, mean=None, std=None)
    torch.manual_seed(0)
    images, masks = augment(unit_samples(range(8)))  # 64x80: not square
    assert images.shape == (8, 3, 64, 80) and masks.shape == (8, 64, 80)
    assert masks.dtype == torch.int64
    assert set(masks.unique().tolist()) <= {0, 1, 2, 3, IGNORE_INDEX}
    assert all(misaligned_pixels(i, m) == 0 for i, m in zip(images, masks, strict=True))
    # every image turned by its own angle: the ignored corners differ from image to image
    corners = {int((m == IGNORE_INDEX).sum()) for m in masks}
    assert len(corners) > 4
    # and the check would see an image and a mask turned by different angles
    plain_images, plain_masks = BatchAugment(rotation=0, color_jitter=0, mean=None, std=None)(
        unit_samples(range(8))
    )
    torch.manual_seed(5)
    turned_images, _ = rotate_batch(plain_images, plain_masks, 25.0)
    torch.manual_seed(6)
    _, turned_masks = rotate_batch(plain_images, plain_masks, 25.0)
    assert misaligned_pixels(turned_images[0], turned_masks[0]) > 0


def test_batch_rotation_is_a_rotation_on_non_square_images():
    # A disc stays a disc of the same area: a matrix that forgot the aspect ratio would shear it.
    height, width = 60, 120
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    disc = ((ys - 29.5) ** 2 + (xs - 59.5) ** 2 <= 20**2).long()
    masks = disc.expand(16, height, width).clone()
    images = disc.float().expand(16, 3, height, width).clone()
    torch.manual_seed(1)
    _, out = rotate_batch(images, masks, 30.0)
    for mask in out:
        rows, cols = torch.nonzero(mask == 1, as_tuple=True)
        assert abs(len(rows) - int(disc.sum())) < 0.03 * int(disc.sum())
        assert abs((rows.max() - rows.min()) - (cols.max() - cols.min())) <= 2
        assert (mask == IGNORE_INDEX).any()  # 30 degrees uncovers the corners


def test_batch_rotation_fills_the_image_with_black_and_the_mask_with_ignore():
    images = torch.full((4, 3, 64, 64), 0.8)
    masks = torch.ones(4, 64, 64, dtype=torch.int64)
    masks[:, 30:34, 30:34] = IGNORE_INDEX  # ignored pixels inside stay ignored
    torch.manual_seed(2)
    out_images, out_masks = rotate_batch(images, masks, 45.0)
    assert set(out_masks.unique().tolist()) == {1, IGNORE_INDEX}
    assert (out_masks[:, 31:33, 31:33] == IGNORE_INDEX).all()
    outside = out_masks == IGNORE_INDEX
    outside[:, 28:36, 28:36] = False
    assert outside.any()
    assert out_images.permute(1, 0, 2, 3)[:, outside].abs().max() < 0.5  # near black there
    assert torch.equal(rotate_batch(images, masks, 0.0)[1], masks)  # 0 degrees: as it was


def test_batch_jitter_gives_each_image_its_own_factors_and_stays_in_range():
    generator = torch.Generator().manual_seed(3)
    image = torch.rand(1, 3, 32, 32, generator=generator) * 0.8 + 0.1
    images = image.expand(6, 3, 32, 32).clone()
    torch.manual_seed(3)
    out = jitter_batch(images, 0.5)
    assert out.min() >= 0 and out.max() <= 1
    assert len({round(float(o.mean()), 4) for o in out}) == 6  # six different results
    torch.testing.assert_close(jitter_batch(images, 0.0), images)  # strength 0: unchanged


def test_batch_augment_normalises_and_refuses_images_normalised_already():
    samples = unit_samples(range(4), size=(32, 32))
    images, _ = BatchAugment(rotation=0, color_jitter=0)(samples)
    expected = torch.stack(
        [eval_transforms()(*labelled_pair(s, size=(32, 32)))[0] for s in range(4)]
    )
    torch.testing.assert_close(images, expected)
    normalised = [eval_transforms()(*labelled_pair(s, size=(32, 32))) for s in range(4)]
    with pytest.raises(ValueError, match="mean=None, std=None"):
        BatchAugment()(normalised)
