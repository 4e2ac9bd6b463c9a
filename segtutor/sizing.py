"""How large the model sees the data: a working scale read off the labelled regions.

Introduced in `04_training.ipynb`.

A U-Net looks at a window of a fixed number of pixels (the crop it trains on, its receptive
field). At native resolution a 96-pixel crop of a street photo shows a patch of cloth with nothing
around it to tell a shirt from a dress, while a 96-pixel crop of a microscope slide holds a dozen
whole nuclei. So the recipe shrinks images whose labelled regions are wide, and leaves alone
images whose regions are already small: the working scale brings the typical region to about
`TARGET_REGION_PX` pixels across, and never enlarges.

How wide the regions are is measured without finding connected components: a region of area A
whose boundary is P pixel edges long is about 4A/P wide (exactly L for an L x L square; the
harmonic mean of the sides for a rectangle; twice the thickness of a thin strip). Summing A and P
over many regions gives the width of a typical one, many small nuclei or one large coat alike.
The most common class (the background, usually) is left out: its "regions" are the gaps between
the others. docs/benchmarks.md has the measurements that chose `TARGET_REGION_PX`.

Example:
    >>> width = region_width(masks)  # masks: int arrays (H, W), 255 = ignore
    >>> scale = working_scale(width, short_side=550, input_size=96)
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

__all__ = ["TARGET_REGION_PX", "region_width", "sample_masks", "working_scale"]

# The width in working pixels that a typical labelled region is brought to (docs/benchmarks.md).
TARGET_REGION_PX = 24


def region_width(masks: Iterable[np.ndarray], ignore_index: int = 255) -> float:
    """The width in pixels of a typical labelled region, the most common class left out.

    Introduced in `04_training.ipynb`.

    Args:
        masks: class-index arrays `(H, W)`; `ignore_index` pixels count for no class.

    Returns:
        4 x (area of the regions) / (length of their boundaries), summed over the masks and over
        every class but the most common one; `math.inf` when no such region has a boundary
        (one class only: nothing suggests shrinking the images).
    """
    area: dict[int, int] = {}
    edges: dict[int, int] = {}
    for mask in masks:
        mask = np.asarray(mask)
        classes, counts = np.unique(mask, return_counts=True)
        for c, n in zip(classes.tolist(), counts.tolist(), strict=True):
            area[c] = area.get(c, 0) + n
        for a, b in ((mask[:, 1:], mask[:, :-1]), (mask[1:, :], mask[:-1, :])):
            changed = a != b
            # each boundary edge belongs to the regions on both of its sides
            for side in (a[changed], b[changed]):
                classes, counts = np.unique(side, return_counts=True)
                for c, n in zip(classes.tolist(), counts.tolist(), strict=True):
                    edges[c] = edges.get(c, 0) + n
    area.pop(ignore_index, None)
    if len(area) < 2:
        return math.inf
    dominant = max(area, key=lambda c: area[c])
    total_area = sum(n for c, n in area.items() if c != dominant)
    total_edges = sum(edges.get(c, 0) for c in area if c != dominant)
    return 4 * total_area / total_edges if total_edges else math.inf


def working_scale(
    width: float, short_side: float, input_size: int, target: float = TARGET_REGION_PX
) -> float:
    """The factor images are resized by before training and prediction, at most 1.

    Introduced in `04_training.ipynb`.

    Args:
        width: the typical region's width in native pixels (`region_width`).
        short_side: the images' typical shorter side in native pixels (the median, say).
        input_size: the side of the training crops: an image is never shrunk below it.
        target: the width in working pixels a typical region is brought to.

    Returns:
        `min(1, max(target / width, input_size / short_side))`, rounded to two decimals.
    """
    scale = max(target / width, input_size / short_side) if width > 0 else 1.0
    return min(1.0, round(scale, 2))


def sample_masks(read_mask, count: int, limit: int = 200) -> list[np.ndarray]:
    """Up to `limit` masks, evenly spaced over `count`, read by `read_mask(index)`.

    Introduced in `04_training.ipynb`: measuring the regions on a spread sample is as good as
    on all masks and decodes far fewer files.
    """
    step = max(1, math.ceil(count / limit))
    return [np.asarray(read_mask(i)) for i in range(0, count, step)]
