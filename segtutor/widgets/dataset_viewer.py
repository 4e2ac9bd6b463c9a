"""`DatasetViewer`: browse a dataset's images with their masks overlaid.

Introduced in `06_visualisation.ipynb`.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as W
import numpy as np

from segtutor.settings import IGNORE_INDEX
from segtutor.viz import IGNORE_COLOR, colorize, make_palette
from segtutor.widgets._picture import Viewer, blend, browse_controls, swatch

__all__ = ["DatasetViewer"]


class DatasetViewer(Viewer):
    """Browse a dataset: each image with its mask overlaid, one class at a time if you like.

    Introduced in `06_visualisation.ipynb`.

    Controls (attributes): `slider`, `prev_button`, `next_button` (browse), `stem_box` (type or
    pick a file stem and press Enter), `opacity` (0 = the raw image, 1 = solid class colours),
    `class_toggles[c]` (show or hide class c; the legend), `ignore_toggle` (pixels 255, drawn
    in `segtutor.viz.IGNORE_COLOR`), `layout_toggle` ("overlay" or "side by side": the raw image
    next to the visible classes drawn solid), and `counts` (pixels per class in this image).

    Class 0 starts hidden when there are several classes: like `segtutor.viz.overlay`, the
    overlay tints the objects and leaves the background as it is.

    Args:
        dataset: a `segtutor.data.SegmentationDataset` (anything with `read_sample(i)`, `stems`,
            `class_names`, `palette`, `num_classes`).
        index: the first sample shown.
        alpha: the starting opacity.
        layout: "overlay" or "side by side".
        width: display width of one panel in pixels (masks are enlarged without blurring).

    Example:
        >>> viewer = DatasetViewer(SegmentationDataset("../data_samples/scenes/val"))
        >>> viewer.slider.value = 3
        ... viewer.class_toggles[2].value = False
    """

    def __init__(
        self,
        dataset: Any,
        *,
        index: int = 0,
        alpha: float = 0.5,
        layout: str = "overlay",
        width: int = 256,
    ):
        super().__init__(width)
        if len(dataset) == 0:
            raise ValueError("the dataset is empty: nothing to show")
        self.dataset = dataset
        self.class_names = list(dataset.class_names)
        self.palette = list(dataset.palette or make_palette(len(self.class_names)))

        self.slider, self.prev_button, self.next_button = browse_controls(
            len(dataset), "sample", continuous=True
        )
        self.stem_box = W.Combobox(
            options=list(dataset.stems),
            placeholder="jump to a stem",
            ensure_option=True,
            description="stem",
            layout=W.Layout(width="260px"),
        )
        self.opacity = W.FloatSlider(
            value=alpha,
            min=0,
            max=1,
            step=0.05,
            description="opacity",
            layout=W.Layout(width="300px"),
        )
        self.layout_toggle = W.ToggleButtons(
            options=["overlay", "side by side"], value=layout, style={"button_width": "100px"}
        )
        self.class_toggles = [
            W.Checkbox(
                value=not (c == 0 and len(self.class_names) > 1),
                description=name,
                indent=False,
                layout=W.Layout(width="auto"),
            )
            for c, name in enumerate(self.class_names)
        ]
        self.ignore_toggle = W.Checkbox(
            value=True,
            description=f"ignore ({IGNORE_INDEX})",
            indent=False,
            layout=W.Layout(width="auto"),
        )
        self.title = W.HTML()
        self.counts = W.HTML()

        legend = [
            W.HBox([W.HTML(swatch(color)), toggle], layout=W.Layout(margin="0 8px 0 0"))
            for color, toggle in zip(
                [*self.palette, IGNORE_COLOR],
                [*self.class_toggles, self.ignore_toggle],
                strict=False,
            )
        ]
        self.widget = W.VBox(
            [
                W.HBox([self.prev_button, self.slider, self.next_button, self.stem_box]),
                W.HBox([self.opacity, self.layout_toggle]),
                W.HBox(legend, layout=W.Layout(flex_flow="row wrap")),
                self.title,
                W.HBox([self.image_widget, self.counts], layout=W.Layout(align_items="flex-start")),
            ]
        )

        self.slider.value = index
        self.slider.observe(lambda _: self._render(), names="value")
        self.stem_box.observe(self._on_stem, names="value")
        for control in (self.opacity, self.layout_toggle, self.ignore_toggle, *self.class_toggles):
            control.observe(lambda _: self._render(), names="value")
        self._render()

    @property
    def index(self) -> int:
        """Position in the dataset of the sample shown."""
        return self.slider.value

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """The shown pair: image uint8 `(H, W, 3)`, mask int64 `(H, W)`."""
        return self._sample(self.index)

    def visible_classes(self) -> list[int]:
        """Class indices whose toggle is on."""
        return [c for c, toggle in enumerate(self.class_toggles) if toggle.value]

    def _on_stem(self, change: dict) -> None:
        if change["new"] in self.dataset.stems:
            self.slider.value = self.dataset.stems.index(change["new"])

    def _rows(self) -> list[tuple[list[np.ndarray], list[str]]]:
        image, mask = self.sample()
        shown = np.isin(mask, self.visible_classes())
        if self.ignore_toggle.value:
            shown |= mask == IGNORE_INDEX
        colors = colorize(mask, self.palette)
        stem = self.dataset.stems[self.index]
        if self.layout_toggle.value == "overlay":
            return [([blend(image, colors, shown, self.opacity.value)], [stem])]
        return [([image, blend(image, colors, shown, 1.0)], [stem, "mask"])]

    def _render(self) -> None:
        image, mask = self.sample()
        self.opacity.disabled = self.layout_toggle.value != "overlay"
        self.title.value = (
            f"<b>{self.dataset.stems[self.index]}</b> &nbsp; index {self.index} "
            f"({len(self.dataset)} samples) &nbsp; "
            f"{image.shape[1]}x{image.shape[0]} px"
        )
        self.counts.value = self._counts_table(mask)
        super()._render()

    def _counts_table(self, mask: np.ndarray) -> str:
        """HTML table: pixels per class in this image (and ignored pixels when there are any)."""
        counts = np.bincount(mask.ravel(), minlength=256)
        total = mask.size
        rows = [
            (name, color, counts[c])
            for c, (name, color) in enumerate(zip(self.class_names, self.palette, strict=False))
        ]
        if counts[IGNORE_INDEX]:
            rows.append((f"ignore ({IGNORE_INDEX})", IGNORE_COLOR, counts[IGNORE_INDEX]))
        body = "".join(
            f"<tr><td>{swatch(color)} {name}</td><td style='text-align:right'>{n}</td>"
            f"<td style='text-align:right'>{n / total:.1%}</td></tr>"
            for name, color, n in rows
        )
        return (
            "<table style='font-size:12px;margin-left:12px'><tr><th>class</th>"
            f"<th>pixels</th><th>share</th></tr>{body}</table>"
        )
