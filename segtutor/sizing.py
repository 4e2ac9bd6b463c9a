"""How large the model sees the data: a working scale read off the labelled regions.

Introduced in `04_training.ipynb`.

A U-Net looks at a window of a fixed number of pixels (the crop it trains on, its receptive
field). At native resolution a 96-pixel crop of a street photo shows a patch of cloth with nothing
around it to tell a shirt from a dress, while a 96-pixel crop of a microscope slide holds a dozen
whole nuclei. So the recipe shrinks images whose labelled regions are wide, and leaves alone
images whose regions are already small: the working scale brings the typical region (all classes
but the background together: a whole person, one nucleus) to about `TARGET_REGION_PX` pixels
across, never enlarges, and never makes an image smaller than a crop.

How wide the regions are is measured without finding connected components: a region of area A
whose outline is P pixel edges long is about 4A/P wide (exactly L for an L x L square; the
harmonic mean of the sides for a rectangle; twice the thickness of a thin strip). Summing A and P
over many regions gives the width of a typical one, many small nuclei or one large person alike.
docs/benchmarks.md has the measurements that chose `TARGET_REGION_PX`, on two real datasets.

Example:
    >>> width = region_width(masks)  # masks: int arrays (H, W), 255 = ignore
    >>> scale = working_scale(width, short_side=550, input_size=96)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["TARGET_REGION_PX", "region_width", "sample_masks", "working_scale"]

# The width in working pixels that a typical labelled region is brought to (docs/benchmarks.md).
TARGET_REGION_PX = 24


def region_width(masks: Sequence[np.ndarray], ignore_index: int = 255) -> float:
    """The width in pixels of a typical labelled region: the classes but the most common one,
    taken together.

    Introduced in `04_training.ipynb`.

    Args:
        masks: class-index arrays `(H, W)`; `ignore_index` pixels belong to no region.

    Returns:
        4 x (area of the regions) / (length of their outlines), summed over the masks; the
        regions are where any class but the most common one is (shirt, skirt and shoes of one
        person make one region: their shape is what a crop must hold). `math.inf` when there
        is no such region: nothing suggests shrinking the images.
    """
    counts: dict[int, int] = {}
    for mask in masks:
        classes, numbers = np.unique(np.asarray(mask), return_counts=True)
        for c, n in zip(classes.tolist(), numbers.tolist(), strict=True):
            counts[c] = counts.get(c, 0) + n
    counts.pop(ignore_index, None)
    if len(counts) < 2:
        return math.inf
    dominant = max(counts, key=lambda c: counts[c])
    area = edges = 0
    for mask in masks:
        mask = np.asarray(mask)
        # 0 background, 1 region, 2 ignored: an edge is a change between neighbours that
        # touches a region pixel
        label = np.where(mask == ignore_index, 2, (mask != dominant).astype(np.int8))
        area += int((label == 1).sum())
        for a, b in ((label[:, 1:], label[:, :-1]), (label[1:, :], label[:-1, :])):
            edges += int(((a != b) & ((a == 1) | (b == 1))).sum())
    return 4 * area / edges if edges else math.inf


def working_scale(
    width: float, short_side: float, input_size: int, target: float = TARGET_REGION_PX
) -> float:
    """The factor images are resized by before training and prediction, at most 1.

    Introduced in `04_training.ipynb`.

    Args:
        width: the typical region's width in native pixels (`region_width`).
        short_side: the shortest image side in native pixels: no image is shrunk below a crop.
        input_size: the side of the training crops.
        target: the width in working pixels a typical region is brought to.

    Returns:
        `min(1, max(target / width, input_size / short_side))`, rounded up to two decimals;
        1 when `width` is infinite (no region to measure).
    """
    if not 0 < width < math.inf:
        return 1.0  # no region measured: nothing suggests shrinking
    scale = max(target / width, input_size / short_side)
    return min(1.0, math.ceil(scale * 100 - 1e-9) / 100)


def sample_masks(read_mask, count: int, limit: int = 200) -> list[np.ndarray]:
    """Up to `limit` masks, evenly spaced over `count`, read by `read_mask(index)`.

    Introduced in `04_training.ipynb`: measuring the regions on a spread sample is as good as
    on all masks and decodes far fewer files.
    """
    step = max(1, math.ceil(count / limit))
    return [np.asarray(read_mask(i)) for i in range(0, count, step)]
