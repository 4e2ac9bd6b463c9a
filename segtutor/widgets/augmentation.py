"""`AugmentationExplorer`: what the training augmentations do to an image and its mask.

Introduced in `06_visualisation.ipynb`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as W
import numpy as np
import torch

from segtutor.settings import IGNORE_INDEX
from segtutor.transforms import train_transforms
from segtutor.viz import IGNORE_COLOR, colorize, make_palette, to_uint8_image
from segtutor.widgets._picture import Viewer, blend, boundaries, browse_controls

__all__ = ["AugmentationExplorer"]


class AugmentationExplorer(Viewer):
    """See what `segtutor.transforms.train_transforms` does to an image AND its mask.

    Introduced in `06_visualisation.ipynb`.

    The top row shows the original and `num_samples` random draws, each image with its mask's
    outline (or overlay) drawn on it: if the outline sits on the objects, image and mask moved
    together. The bottom row shows the transformed masks (255 = ignore, e.g. corners brought in
    by rotation, in white).

    Controls (attributes): `slider` (which image), `crop`/`crop_scale` (random resized crop and
    its area range), `hflip`, `vflip`, `rotation` (degrees), `color_jitter` (strength),
    `show_as` ("outline" or "overlay"), `resample_button` (new random draws).
    The draws are seeded (`seed`, increased by Resample), so a setting can be compared with
    another on the same draws, and the global random state is left alone.

    Args:
        dataset: a `SegmentationDataset`.
        index: the image to start with.
        num_samples: random draws shown side by side.
        size: output `(H, W)` of the transforms; default the image's own size.
        seed: the first seed.
        width: display width of one panel in pixels.
    """

    def __init__(
        self,
        dataset: Any,
        *,
        index: int = 0,
        num_samples: int = 4,
        size: int | tuple[int, int] | None = None,
        seed: int = 0,
        width: int = 160,
    ):
        super().__init__(width)
        if len(dataset) == 0:
            raise ValueError("the dataset is empty: nothing to show")
        self.dataset = dataset
        self.num_samples = num_samples
        self.size = size
        self.seed = seed
        self.palette = list(dataset.palette or make_palette(len(dataset.class_names)))
        self.samples: list[tuple[np.ndarray, np.ndarray]] = []  # the shown draws (image, mask)

        self.slider, self.prev_button, self.next_button = browse_controls(
            len(dataset), "sample", continuous=False
        )
        self.crop = W.Checkbox(
            value=True, description="random crop", indent=False, layout=W.Layout(width="110px")
        )
        self.crop_scale = W.FloatRangeSlider(
            value=(0.5, 1.0),
            min=0.1,
            max=1.0,
            step=0.05,
            description="crop area",
            continuous_update=False,
        )
        self.hflip = W.Checkbox(
            value=True, description="horizontal flip", indent=False, layout=W.Layout(width="130px")
        )
        self.vflip = W.Checkbox(
            value=False, description="vertical flip", indent=False, layout=W.Layout(width="110px")
        )
        self.rotation = W.IntSlider(
            value=15, min=0, max=180, step=5, description="rotation", continuous_update=False
        )
        self.color_jitter = W.FloatSlider(
            value=0.2, min=0, max=1, step=0.05, description="colour jitter", continuous_update=False
        )
        self.show_as = W.ToggleButtons(
            options=["outline", "overlay"], style={"button_width": "80px"}
        )
        self.resample_button = W.Button(
            description="Resample", icon="refresh", button_style="primary"
        )
        self.resample_button.on_click(lambda _: self.resample())

        self.widget = W.VBox(
            [
                W.HBox([self.prev_button, self.slider, self.next_button]),
                W.HBox([self.crop, self.crop_scale, self.hflip, self.vflip]),
                W.HBox([self.rotation, self.color_jitter]),
                W.HBox([self.show_as, self.resample_button]),
                self.image_widget,
            ]
        )
        self.slider.value = index
        for control in (
            self.slider,
            self.crop,
            self.crop_scale,
            self.hflip,
            self.vflip,
            self.rotation,
            self.color_jitter,
        ):
            control.observe(lambda _: self._draw(), names="value")
        self.show_as.observe(lambda _: self._render(), names="value")
        self._draw()

    @property
    def index(self) -> int:
        """Position in the dataset of the image transformed."""
        return self.slider.value

    def transform(self) -> Callable:
        """The `train_transforms` the controls describe (kept in [0, 1]: nothing to undo)."""
        image, _ = self._sample(self.index)
        size = self.size if self.size is not None else image.shape[:2]
        return train_transforms(
            size,
            scale=tuple(self.crop_scale.value) if self.crop.value else None,
            hflip=self.hflip.value,
            vflip=self.vflip.value,
            rotation=float(self.rotation.value),
            color_jitter=self.color_jitter.value,
            mean=None,
            std=None,
        )

    def resample(self) -> None:
        """New random draws (the Resample button)."""
        self.seed += 1
        self._draw()

    def _draw(self) -> None:
        """Transform the image `num_samples` times with this seed, then show the draws."""
        image, mask = self._sample(self.index)
        transform = self.transform()
        with torch.random.fork_rng(devices=[]):  # leave the caller's random state as it was
            torch.manual_seed(self.seed)
            draws = [transform(image, mask) for _ in range(self.num_samples)]
        self.samples = [(to_uint8_image(i), m.numpy()) for i, m in draws]
        self._render()

    def _mark(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The image with its mask's outline (or a half-opaque overlay) in class colours."""
        colors = colorize(mask, self.palette)
        if self.show_as.value == "overlay":
            return blend(image, colors, (mask != 0) & (mask != IGNORE_INDEX), 0.5)
        outline = boundaries(mask) & (mask != IGNORE_INDEX)
        colors[mask == 0] = IGNORE_COLOR  # background's black outline would vanish on dark images
        return blend(image, colors, outline, 1.0)

    def _rows(self) -> list[tuple[list[np.ndarray], list[str]]]:
        image, mask = self._sample(self.index)
        pairs = [(image, mask), *self.samples]
        draws = [f"draw {k + 1}" for k in range(len(self.samples))]
        return [
            ([self._mark(i, m) for i, m in pairs], ["original", *draws]),
            ([colorize(m, self.palette) for _, m in pairs], ["mask", *[""] * len(draws)]),
        ]
