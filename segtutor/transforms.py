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

from collections.abc import Callable, Sequence

import numpy as np
import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from segtutor.settings import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "PairTransform",
    "Rescale",
    "denormalize",
    "eval_transforms",
    "scaled_size",
    "shrink_batch",
    "train_transforms",
]

# Pixels that rotation brings in from outside the picture: black in the image, and "ignore" in
# the mask, so that the loss and the metric skip them instead of learning "corners are background".
ROTATION_FILL = {tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX}


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
    rotation: float = 10.0,
    color_jitter: float = 0.2,
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
