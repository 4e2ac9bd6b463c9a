"""Paired transforms: the same random crop, flip and rotation for an image and its mask.

Built on `torchvision.transforms.v2`, which dispatches on the tensor's type: wrapping the image as
`tv_tensors.Image` and the mask as `tv_tensors.Mask` is what makes one call move both the same
way, resize the mask with nearest neighbour (a class index must never be averaged into another
class), and leave the mask alone in photometric steps (colour jitter, normalisation).

Introduced in `01_data.ipynb`.

Example:
    >>> transform = train_transforms((128, 128))
    >>> image, mask = transform(image_uint8, mask_int64)  # (3, 128, 128) float32, (128, 128) int64
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from torch.utils.data import default_collate
from torchvision import tv_tensors
from torchvision.transforms import v2

from segtutor.settings import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "BatchAugment",
    "COLOR_JITTER",
    "PairTransform",
    "ROTATION_DEGREES",
    "Rescale",
    "denormalize",
    "eval_transforms",
    "jitter_batch",
    "rotate_batch",
    "scaled_size",
    "shrink_batch",
    "train_transforms",
]

# Pixels that rotation brings in from outside the picture: black in the image, and "ignore" in
# the mask, so that the loss and the metric skip them instead of learning "corners are background".
ROTATION_FILL = {tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX}
# The default augmentation's strength, for `train_transforms` and `BatchAugment` alike.
ROTATION_DEGREES = 10.0
COLOR_JITTER = 0.2


class PairTransform:
    """Callable `(image, mask) -> (image, mask)` around a `v2.Compose`.

    Introduced in `01_data.ipynb`.

    Accepts the image as a uint8 `(3, H, W)` tensor / `tv_tensors.Image`, a PIL image or an
    `(H, W, 3)` uint8 array, and the mask as an `(H, W)` integer tensor / `tv_tensors.Mask` or
    array. Returns plain tensors: image float32 `(3, H', W')`, mask int64 `(H', W')`.
    """

    def __init__(self, steps: list[Callable]):
        self.pipeline = v2.Compose(steps)

    def __call__(self, image, mask) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.pipeline(_as_image(image), _as_mask(mask))
        # Plain tensors from here on: the model, the loss and the DataLoader need no tv_tensors.
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.pipeline})"


def train_transforms(
    size: int | tuple[int, int] = (128, 128),
    *,
    scale: tuple[float, float] | None = (0.5, 1.0),
    crop: bool = False,
    hflip: bool = True,
    vflip: bool = False,
    rotation: float = ROTATION_DEGREES,
    color_jitter: float = COLOR_JITTER,
    mean: Sequence[float] | None = IMAGENET_MEAN,
    std: Sequence[float] | None = IMAGENET_STD,
) -> PairTransform:
    """Random augmentation for training; every geometric step moves image and mask together.

    Introduced in `01_data.ipynb`.

    Args:
        size: output `(H, W)` (or one int for a square).
        scale: area range of the random crop, as a fraction of the image; `None` resizes the
            whole image to `size` instead of cropping.
        crop: cut a random `size` window at the image's own scale instead (padding images that
            are smaller with 0 and their masks with 255); for large images or images of varied
            sizes, predicted later at full resolution. `scale` is then unused.
        hflip, vflip: random horizontal / vertical flips (probability 0.5 each).
        rotation: maximum rotation in degrees; uncovered mask pixels become 255 (ignore). 0 = off.
        color_jitter: strength of brightness, contrast and saturation jitter (image only). 0 = off.
        mean, std: per-channel normalisation; `None` keeps the image in `[0, 1]`.

    Returns:
        A `PairTransform`: `(image, mask) -> (image (3, H, W) float32, mask (H, W) int64)`.
    """
    size = _pair(size)
    steps: list[Callable] = []
    if crop:
        steps.append(v2.RandomCrop(size, pad_if_needed=True, fill=ROTATION_FILL))
    elif scale is None:
        steps.append(v2.Resize(size, antialias=True))
    else:
        steps.append(v2.RandomResizedCrop(size, scale=scale, antialias=True))
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    if vflip:
        steps.append(v2.RandomVerticalFlip())
    if rotation:
        # Bilinear is for the image only: v2 always rotates a Mask with nearest neighbour.
        steps.append(
            v2.RandomRotation(
                rotation, interpolation=v2.InterpolationMode.BILINEAR, fill=ROTATION_FILL
            )
        )
    if color_jitter:
        # No hue jitter: colour can carry meaning (stains, materials), and hue is the slowest
        # of the four on a CPU.
        steps.append(
            v2.ColorJitter(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter)
        )
    steps += _to_float(mean, std)
    return PairTransform(steps)


class BatchAugment:
    """A DataLoader `collate_fn` that rotates, colour-jitters and normalises whole batches.

    Introduced in `04_training.ipynb`. `train_transforms` does every step image by image, and
    its rotation and colour jitter are many small operations: on the bundled scenes' 96-pixel
    crops they took 0.9 of its 1.1 ms per image (2-core AMD EPYC). Here each sample's cheap
    steps (crop, flips) stay in the dataset's transform, which hands over images in `[0, 1]`
    (`train_transforms(size, rotation=0, color_jitter=0, mean=None, std=None)`), and this
    collates them and does the rest once per batch, with each image's own random angle and
    factors: the same augmentation, a few calls per batch instead of many per image
    (docs/benchmarks.md, "A cheaper step, and 24 epochs", has the time and the scores).

    Rotation: a uniform angle in `[-rotation, rotation]` degrees about the centre, bilinear
    for the image and nearest for the mask; pixels brought in from outside are 0 (black) in
    the image and `IGNORE_INDEX` in the mask, as in `train_transforms`. Colour jitter:
    brightness, then contrast, then saturation, each factor uniform in
    `[1 - color_jitter, 1 + color_jitter]` (torchvision's `ColorJitter` takes them in a random
    order). Then `(image - mean) / std`.

    Args:
        rotation: maximum rotation in degrees; 0 = off.
        color_jitter: strength of brightness, contrast and saturation jitter; 0 = off.
        mean, std: per-channel normalisation; `None` leaves the images in `[0, 1]`.

    Shape:
        a list of `(image (3, H, W) float in [0, 1], mask (H, W) int64)` samples of one size
        -> images (N, 3, H, W) float32, masks (N, H, W) int64

    Raises:
        ValueError: an image is outside `[0, 1]`, i.e. the dataset's transform normalised it
            already (it would be normalised twice).
    """

    def __init__(
        self,
        rotation: float = ROTATION_DEGREES,
        color_jitter: float = COLOR_JITTER,
        mean: Sequence[float] | None = IMAGENET_MEAN,
        std: Sequence[float] | None = IMAGENET_STD,
    ):
        self.rotation = rotation
        self.color_jitter = color_jitter
        self.mean, self.std = mean, std

    def __call__(self, samples) -> tuple[torch.Tensor, torch.Tensor]:
        images, masks = default_collate(samples)
        if images.is_floating_point() and (images.min() < 0 or images.max() > 1):
            raise ValueError(
                "BatchAugment takes images in [0, 1], but these are outside it: the dataset's "
                "transform normalises already. Give it mean=None, std=None, or use "
                "the default collate"
            )
        images = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        if self.rotation:
            images, masks = rotate_batch(images, masks, self.rotation)
        if self.color_jitter:
            images = jitter_batch(images, self.color_jitter)
        if self.mean is not None and self.std is not None:
            mean = torch.as_tensor(self.mean, dtype=images.dtype).view(1, -1, 1, 1)
            std = torch.as_tensor(self.std, dtype=images.dtype).view(1, -1, 1, 1)
            images = (images - mean) / std
        return images, masks

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(rotation={self.rotation}, color_jitter={self.color_jitter}, "
            f"mean={self.mean}, std={self.std})"
        )


def rotate_batch(
    images: torch.Tensor, masks: torch.Tensor, degrees: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image and its mask rotated by its own random angle in `[-degrees, degrees]`.

    Introduced in `04_training.ipynb` (`BatchAugment`). One `affine_grid` and two
    `grid_sample` calls for the whole batch: bilinear for images, nearest for masks, whose
    uncovered pixels become `IGNORE_INDEX` (the images' become 0).

    Shape:
        images (N, C, H, W) float, masks (N, H, W) int64 -> the same shapes
    """
    n, _, height, width = images.shape
    angles = (torch.rand(n) * 2 - 1) * math.radians(degrees)
    cos, sin = angles.cos(), angles.sin()
    # affine_grid works in coordinates scaled to [-1, 1] along each side: a rotation in pixels
    # becomes this matrix when height and width differ.
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * height / width
    theta[:, 1, 0], theta[:, 1, 1] = sin * width / height, cos
    grid = F.affine_grid(theta.to(images), [n, 1, height, width], align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", align_corners=False)
    # Labels shifted by one, so that the 0 grid_sample puts outside the picture marks "uncovered".
    shifted = F.grid_sample(
        (masks[:, None] + 1).to(grid.dtype), grid, mode="nearest", align_corners=False
    )
    shifted = shifted[:, 0].round().long()
    return images, torch.where(shifted == 0, IGNORE_INDEX, shifted - 1)


def jitter_batch(images: torch.Tensor, strength: float) -> torch.Tensor:
    """Brightness, contrast and saturation of each image scaled by its own random factor.

    Introduced in `04_training.ipynb` (`BatchAugment`). Each factor is uniform in
    `[1 - strength, 1 + strength]`; as torchvision's `ColorJitter` does, brightness scales the
    pixels, contrast blends with the image's mean grey, saturation with each pixel's grey.

    Shape:
        images (N, 3, H, W) float in [0, 1] -> the same, clamped to [0, 1]
    """
    n = images.shape[0]
    low = max(0.0, 1 - strength)
    factors = torch.empty(3, n, 1, 1, 1).uniform_(low, 1 + strength).to(images)
    brightness, contrast, saturation = factors
    images = (images * brightness).clamp(0, 1)
    grey_mean = _grey(images).mean(dim=(-3, -2, -1), keepdim=True)
    images = (images * contrast + grey_mean * (1 - contrast)).clamp(0, 1)
    return (images * saturation + _grey(images) * (1 - saturation)).clamp(0, 1)


def _grey(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W): ITU-R 601 luma, the weights torchvision's grayscale uses."""
    weights = torch.tensor([0.2989, 0.587, 0.114], dtype=images.dtype, device=images.device)
    return (images * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)


def eval_transforms(
    size: int | tuple[int, int] | None = None,
    *,
    scale: float = 1.0,
    mean: Sequence[float] | None = IMAGENET_MEAN,
    std: Sequence[float] | None = IMAGENET_STD,
) -> PairTransform:
    """Deterministic transform for validation and prediction: optional resize, then normalise.

    Introduced in `01_data.ipynb`.

    Args:
        size: output `(H, W)`; `None` keeps each image's own size (the U-Net is fully
            convolutional, so it does not need one size; a DataLoader batch does).
        scale: with `size` None, resize each image by this factor (`Rescale`): the working
            scale a model trained at (`TrainConfig.working_scale`).
        mean, std: per-channel normalisation; `None` keeps the image in `[0, 1]`.

    Returns:
        A `PairTransform`: `(image, mask) -> (image (3, H, W) float32, mask (H, W) int64)`.
    """
    steps: list[Callable] = []
    if size is not None:
        steps.append(v2.Resize(_pair(size), antialias=True))
    elif scale != 1:
        steps.append(Rescale(scale))
    steps += _to_float(mean, std)
    return PairTransform(steps)


class Rescale(v2.Transform):
    """Resize by a factor, keeping the aspect ratio: images smoothly, masks by nearest neighbour.

    Introduced in `04_training.ipynb`: a photo larger than its objects need is shrunk to the
    working scale (`segtutor.sizing.working_scale`) before it is cropped or predicted.
    """

    def __init__(self, scale: float):
        super().__init__()
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.scale = scale

    def transform(self, inpt, params):
        size = list(scaled_size(*inpt.shape[-2:], self.scale))
        return self._call_kernel(v2.functional.resize, inpt, size, antialias=True)


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """`(height, width)` times `scale`, rounded, at least one pixel each.

    Introduced in `04_training.ipynb`.
    """
    return max(1, round(height * scale)), max(1, round(width * scale))


def shrink_batch(
    images: torch.Tensor, masks: torch.Tensor, scale: float, multiple: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole training batch shrunk by `scale`: images smoothly, masks by nearest label.

    Introduced in `04_training.ipynb` (progressive resizing, `TrainConfig.progressive_scale`).
    Each side becomes `scale` times its length rounded to a multiple of `multiple` (16 fits the
    U-Net's four halvings, so it needs no padding), at least `multiple`, at most as it was;
    `scale` 1 returns the batch as it is. One call on the batch's tensors: nothing is decoded or cropped again.

    Shape:
        images (N, 3, H, W) float, masks (N, H, W) int64 -> (N, 3, h, w), (N, h, w)
    """
    if scale == 1.0:
        return images, masks
    height, width = images.shape[-2:]
    size = [
        min(side, max(multiple, round(side * scale / multiple) * multiple))
        for side in (height, width)
    ]
    if size == [height, width]:
        return images, masks
    images = torch.nn.functional.interpolate(
        images, size=size, mode="bilinear", antialias=True, align_corners=False
    )
    # nearest: a label is picked, never averaged into another class (255, "ignore", stays 255)
    masks = torch.nn.functional.interpolate(masks[:, None].float(), size=size, mode="nearest")
    return images, masks[:, 0].to(torch.int64)


def denormalize(
    images: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """Undo `Normalize` for plotting: `(N, 3, H, W)` or `(3, H, W)` -> same shape in `[0, 1]`.

    Introduced in `06_visualisation.ipynb`.
    """
    mean_t = torch.as_tensor(mean, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    return (images * std_t + mean_t).clamp(0, 1)


def _to_float(mean, std) -> list[Callable]:
    # ToDtype with a plain dtype converts images only; the mask keeps its int64 class indices.
    steps: list[Callable] = [v2.ToDtype(torch.float32, scale=True)]
    if mean is not None and std is not None:
        steps.append(v2.Normalize(mean=list(mean), std=list(std)))
    return steps


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _as_image(image) -> tv_tensors.Image:
    if isinstance(image, tv_tensors.Image):
        return image
    if isinstance(image, PIL.Image.Image):
        image = np.array(image.convert("RGB"))  # a writable copy for torch
    if isinstance(image, np.ndarray):  # (H, W, 3) -> (3, H, W)
        return tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1))
    return tv_tensors.Image(image)


def _as_mask(mask) -> tv_tensors.Mask:
    if isinstance(mask, PIL.Image.Image):
        mask = np.asarray(mask)
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(mask.astype(np.int64))
    if mask.ndim == 3:  # (1, H, W) -> (H, W): one class index per pixel, no channel axis
        mask = mask.squeeze(0)
    return tv_tensors.Mask(mask.as_subclass(torch.Tensor).long())
