"""Interactive viewers for JupyterLab: a dataset, a model's mistakes, augmentations, live curves.

Introduced in the visualisation notebook (06_visualisation); the data, training and evaluation
notebooks use them too.

- `DatasetViewer(dataset)`: browse images with their masks overlaid, hide classes, count pixels.
- `PredictionViewer(model, dataset)`: image / ground truth / prediction / error map, per-image IoU,
  worst images first, one class at a time, threshold or confidence for binary models.
- `AugmentationExplorer(dataset)`: pick augmentations and their strength, resample, and see the
  mask's outline follow the transformed image.
- `LiveTrainingPlot()`: a `fit` callback that redraws the loss and mIoU curves in place.

How they are built: every picture is a numpy composite made from the plain functions of
`segtutor.viz` (`colorize`, `error_map`, ...), encoded as a PNG with PIL and put into one
`ipywidgets.Image`. Moving a slider redraws only that picture (no matplotlib figure per move), so
the viewers stay quick on a laptop CPU. Each viewer exposes its controls as attributes
(`viewer.slider`, `viewer.opacity`, `viewer.class_toggles[c]`, ...) and what it shows
(`viewer.index`, `viewer.current_image()`), which is how the tests drive them.

Where widgets cannot run (a plain terminal, a notebook converted to HTML, a notebook reopened
without its kernel), a viewer shows a static picture of its current view with a note: its
`_repr_mimebundle_` carries that picture next to the widget, and `.show()` outside a kernel
returns a matplotlib figure.

Example:
    >>> viewer = DatasetViewer(SegmentationDataset("../data_samples/scenes/val"))
    >>> viewer            # the last expression of a cell: the interactive viewer
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as W
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from segtutor import inference
from segtutor.config import Callback, History
from segtutor.metrics import mean_ignoring_nan
from segtutor.settings import IGNORE_INDEX
from segtutor.transforms import eval_transforms, train_transforms
from segtutor.viz import (
    ERROR_COLORS,
    IGNORE_COLOR,
    colorize,
    error_map,
    make_palette,
    plot_history,
    to_uint8_image,
)

__all__ = [
    "CLASS_ERROR_COLORS",
    "STATIC_NOTE",
    "AugmentationExplorer",
    "DatasetViewer",
    "LiveTrainingPlot",
    "PredictionViewer",
]

Color = tuple[int, int, int]

STATIC_NOTE = (
    "Static picture: this viewer is interactive only in a running Jupyter kernel with ipywidgets "
    "(JupyterLab or Notebook). Run the cell to use its controls."
)

# The error map of ONE class (PredictionViewer with a class picked): the mistakes in
# segtutor.viz's error colours, the hits in neutral grey, everything else dark.
CLASS_ERROR_COLORS: dict[str, Color] = {
    "true negative": (0, 0, 0),
    "true positive": (128, 128, 128),
    "false positive": ERROR_COLORS["false positive"],
    "false negative": ERROR_COLORS["false negative"],
    "ignored": IGNORE_COLOR,
}

_GAP = 2  # pixels between panels, at the images' own resolution
_GAP_COLOR = (255, 255, 255)
_TITLE_HEIGHT = 16  # pixels of the title strip above displayed pictures
_STATIC_MAX_WIDTH = 512  # the static fallback picture stored in notebooks stays this small


# ----------------------------------------------------------------------------------------------
# Pictures: numpy composites -> PNG bytes


def _hstack(panels: Sequence[np.ndarray]) -> np.ndarray:
    """Panels `(H, W_i, 3)` side by side with a thin white gap; uint8 `(H, sum W_i + gaps, 3)`."""
    height = max(p.shape[0] for p in panels)
    gap = np.full((height, _GAP, 3), _GAP_COLOR, np.uint8)
    parts: list[np.ndarray] = []
    for panel in panels:
        if panel.shape[0] < height:  # pad at the bottom: panels of different heights
            pad = np.full((height - panel.shape[0], *panel.shape[1:]), _GAP_COLOR, np.uint8)
            panel = np.concatenate([panel, pad])
        parts += [panel, gap]
    return np.concatenate(parts[:-1], axis=1)


def _vstack(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Rows of the same width one above the other with a thin white gap."""
    gap = np.full((_GAP, rows[0].shape[1], 3), _GAP_COLOR, np.uint8)
    parts: list[np.ndarray] = []
    for row in rows:
        parts += [row, gap]
    return np.concatenate(parts[:-1], axis=0)


def _blend(image: np.ndarray, colors: np.ndarray, where: np.ndarray, alpha: float) -> np.ndarray:
    """`image` with `colors` mixed in at weight `alpha` where `where` is True; uint8 `(H, W, 3)`."""
    out = image.copy()
    mixed = (1 - alpha) * image[where].astype(np.float32) + alpha * colors[where]
    out[where] = mixed.round().astype(np.uint8)
    return out


def _boundaries(mask: np.ndarray) -> np.ndarray:
    """True on pixels whose right or lower neighbour has another label: the outline of each region.

    Shape `(H, W)` bool, for a mask `(H, W)`.
    """
    edge = np.zeros(mask.shape, dtype=bool)
    changes_right = mask[:, 1:] != mask[:, :-1]
    changes_down = mask[1:, :] != mask[:-1, :]
    edge[:, :-1] |= changes_right
    edge[:, 1:] |= changes_right
    edge[:-1, :] |= changes_down
    edge[1:, :] |= changes_down
    return edge


def _picture(rows: Sequence[tuple[list[np.ndarray], list[str]]], scale: float) -> Image.Image:
    """Rows of panels, each panel resized by `scale` with its title above: a PIL image to encode."""
    # Nearest keeps class colours pure when enlarging; box filtering when shrinking.
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BOX
    pictures = []
    for panels, titles in rows:
        scaled = []
        for panel in panels:
            h, w = panel.shape[:2]
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            scaled.append(np.asarray(Image.fromarray(panel).resize(size, resample)))
        body = _hstack(scaled)
        picture = Image.new("RGB", (body.shape[1], body.shape[0] + _TITLE_HEIGHT), _GAP_COLOR)
        picture.paste(Image.fromarray(body), (0, _TITLE_HEIGHT))
        draw = ImageDraw.Draw(picture)
        x = 0
        for panel, title in zip(scaled, titles, strict=True):
            draw.text((x + 2, 2), title, fill=(0, 0, 0))
            x += panel.shape[1] + _GAP
        pictures.append(picture)
    out = Image.new("RGB", (max(p.width for p in pictures), sum(p.height for p in pictures)),
                    _GAP_COLOR)
    y = 0
    for picture in pictures:
        out.paste(picture, (0, y))
        y += picture.height
    return out


def _png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)  # fast: redrawn on every slider move
    return buffer.getvalue()


def _swatch(color: Sequence[int], size: int = 12) -> str:
    """HTML for a small square of one colour (legends, tables)."""
    r, g, b = (int(c) for c in color)
    return (f'<span style="display:inline-block;width:{size}px;height:{size}px;'
            f'background:rgb({r},{g},{b});border:1px solid #888;vertical-align:middle"></span>')


def _legend_html(items: dict[str, Color]) -> str:
    return " &nbsp; ".join(f"{_swatch(c)} {name}" for name, c in items.items())


def _in_kernel() -> bool:
    """True inside a running IPython kernel (JupyterLab, Notebook, VS Code), where widgets work."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


# ----------------------------------------------------------------------------------------------
# The shared part of the three viewers


class _Viewer:
    """What every viewer has: one `widget` (the whole viewer), a picture, a static fallback.

    A subclass builds `self.widget` around `self.image_widget` and implements `_rows()`: the
    panels shown, as rows of `(panels, titles)`, at the images' own resolution.
    """

    def __init__(self, width: int):
        self.width = width  # display width in pixels of one panel (the picture has several)
        self.image_widget = W.Image(format="png")
        self.widget: W.Box = W.VBox()
        self._cached: tuple[int, np.ndarray, np.ndarray] | None = None  # the last sample read

    def _rows(self) -> list[tuple[list[np.ndarray], list[str]]]:
        raise NotImplementedError

    def _sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw pair as numpy, image uint8 `(H, W, 3)` and mask int64 `(H, W)`; the last
        one is kept, so redrawing the same sample with other settings reads no file."""
        if self._cached is None or self._cached[0] != index:
            image, mask = self.dataset.read_sample(index)
            self._cached = (index, to_uint8_image(image), np.asarray(mask, dtype=np.int64))
        return self._cached[1], self._cached[2]

    def current_image(self) -> np.ndarray:
        """The picture shown, at the images' own resolution, without titles; uint8 `(H, W, 3)`."""
        return _vstack([_hstack(panels) for panels, _ in self._rows()])

    def _render(self) -> None:
        """Redraw the picture: the only place where PNG bytes reach the browser."""
        rows = self._rows()
        self.image_widget.value = _png(_picture(rows, self.width / rows[0][0][0].shape[1]))

    def _static_picture(self) -> Image.Image:
        rows = self._rows()
        scale = self.width / rows[0][0][0].shape[1]
        widest = max(sum(p.shape[1] for p in panels) for panels, _ in rows)
        return _picture(rows, min(scale, _STATIC_MAX_WIDTH / widest))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict:
        """The widget, plus a static picture with a note for wherever the widget cannot render.

        JupyterLab shows the widget; nbconvert's HTML, a notebook reopened without its kernel, or
        a frontend without ipywidgets fall back to the `text/html` picture and note.
        """
        bundle = self.widget._repr_mimebundle_(**kwargs)
        png = base64.b64encode(_png(self._static_picture())).decode("ascii")
        bundle["text/plain"] = f"{type(self).__name__}: {STATIC_NOTE}"
        bundle["text/html"] = (f'<p style="font-style:italic">{STATIC_NOTE}</p>'
                               f'<img src="data:image/png;base64,{png}">')
        return bundle

    def static_figure(self) -> Figure:
        """The current view as a matplotlib figure titled with the static note."""
        picture = np.asarray(self._static_picture())
        height, width = picture.shape[:2]
        fig = Figure(figsize=(width / 80, height / 80 + 0.6), dpi=80, layout="constrained")
        ax = fig.subplots()
        ax.imshow(picture, interpolation="nearest")
        ax.set_axis_off()
        fig.suptitle(f"{type(self).__name__}: static picture (widgets need a Jupyter kernel)",
                     fontsize=9)
        return fig

    def show(self) -> Figure | None:
        """Display the viewer in Jupyter; elsewhere print the note and return a static figure.

        Returns:
            None in a Jupyter kernel; otherwise a `Figure` (save it with `fig.savefig(path)`).
        """
        if _in_kernel():
            from IPython.display import display

            display(self)
            return None
        print(f"{type(self).__name__}: {STATIC_NOTE}")
        return self.static_figure()


def _browse_controls(count: int, description: str, continuous: bool
                     ) -> tuple[W.IntSlider, W.Button, W.Button]:
    slider = W.IntSlider(value=0, min=0, max=max(count - 1, 0), description=description,
                         continuous_update=continuous, layout=W.Layout(width="360px"))
    previous = W.Button(description="previous", icon="arrow-left", layout=W.Layout(width="100px"))
    following = W.Button(description="next", icon="arrow-right", layout=W.Layout(width="100px"))
    previous.on_click(lambda _: setattr(slider, "value", max(slider.min, slider.value - 1)))
    following.on_click(lambda _: setattr(slider, "value", min(slider.max, slider.value + 1)))
    return slider, previous, following


# ----------------------------------------------------------------------------------------------
# DatasetViewer


class DatasetViewer(_Viewer):
    """Browse a dataset: each image with its mask overlaid, one class at a time if you like.

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
        >>> viewer.slider.value = 3; viewer.class_toggles[2].value = False
    """

    def __init__(self, dataset: Any, *, index: int = 0, alpha: float = 0.5,
                 layout: str = "overlay", width: int = 256):
        super().__init__(width)
        if len(dataset) == 0:
            raise ValueError("the dataset is empty: nothing to show")
        self.dataset = dataset
        self.class_names = list(dataset.class_names)
        self.palette = list(dataset.palette or make_palette(len(self.class_names)))

        self.slider, self.prev_button, self.next_button = _browse_controls(
            len(dataset), "sample", continuous=True)
        self.stem_box = W.Combobox(options=list(dataset.stems), placeholder="jump to a stem",
                                   ensure_option=True, description="stem",
                                   layout=W.Layout(width="260px"))
        self.opacity = W.FloatSlider(value=alpha, min=0, max=1, step=0.05, description="opacity",
                                     layout=W.Layout(width="300px"))
        self.layout_toggle = W.ToggleButtons(options=["overlay", "side by side"], value=layout,
                                             style={"button_width": "100px"})
        self.class_toggles = [
            W.Checkbox(value=not (c == 0 and len(self.class_names) > 1), description=name,
                       indent=False, layout=W.Layout(width="auto"))
            for c, name in enumerate(self.class_names)
        ]
        self.ignore_toggle = W.Checkbox(value=True, description=f"ignore ({IGNORE_INDEX})",
                                        indent=False, layout=W.Layout(width="auto"))
        self.title = W.HTML()
        self.counts = W.HTML()

        legend = [W.HBox([W.HTML(_swatch(color)), toggle], layout=W.Layout(margin="0 8px 0 0"))
                  for color, toggle in zip([*self.palette, IGNORE_COLOR],
                                           [*self.class_toggles, self.ignore_toggle],
                                           strict=False)]
        self.widget = W.VBox([
            W.HBox([self.prev_button, self.slider, self.next_button, self.stem_box]),
            W.HBox([self.opacity, self.layout_toggle]),
            W.HBox(legend, layout=W.Layout(flex_flow="row wrap")),
            self.title,
            W.HBox([self.image_widget, self.counts], layout=W.Layout(align_items="flex-start")),
        ])

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
            return [([_blend(image, colors, shown, self.opacity.value)], [stem])]
        return [([image, _blend(image, colors, shown, 1.0)], [stem, "mask"])]

    def _render(self) -> None:
        image, mask = self.sample()
        self.opacity.disabled = self.layout_toggle.value != "overlay"
        self.title.value = (f"<b>{self.dataset.stems[self.index]}</b> &nbsp; index {self.index} "
                            f"({len(self.dataset)} samples) &nbsp; "
                            f"{image.shape[1]}x{image.shape[0]} px")
        self.counts.value = self._counts_table(mask)
        super()._render()

    def _counts_table(self, mask: np.ndarray) -> str:
        """HTML table: pixels per class in this image (and ignored pixels when there are any)."""
        counts = np.bincount(mask.ravel(), minlength=256)
        total = mask.size
        rows = [(name, color, counts[c]) for c, (name, color)
                in enumerate(zip(self.class_names, self.palette, strict=False))]
        if counts[IGNORE_INDEX]:
            rows.append((f"ignore ({IGNORE_INDEX})", IGNORE_COLOR, counts[IGNORE_INDEX]))
        body = "".join(
            f"<tr><td>{_swatch(color)} {name}</td><td style='text-align:right'>{n}</td>"
            f"<td style='text-align:right'>{n / total:.1%}</td></tr>" for name, color, n in rows)
        return ("<table style='font-size:12px;margin-left:12px'><tr><th>class</th>"
                f"<th>pixels</th><th>share</th></tr>{body}</table>")


# ----------------------------------------------------------------------------------------------
# PredictionViewer


class PredictionViewer(_Viewer):
    """A model's predictions next to the truth: image / ground truth / prediction / errors.

    Controls (attributes): `slider`, `prev_button`, `next_button` (browse), `sort` ("dataset
    order" or "worst IoU first": predicts every image once, with a progress note in `status`),
    `class_dropdown` (None = all classes, or one class index: its own error map and IoU),
    `view` ("errors" or "confidence": the softmax's highest probability per pixel) and, for a
    two-class model, `threshold` (a pixel is class 1 when its probability is at least this).

    Error colours: with all classes, `segtutor.viz.error_map` (false positive, false negative,
    wrong class); with one class, `CLASS_ERROR_COLORS` (true positives grey, false positives and
    false negatives in the same colours as before).

    Predictions are computed for the shown image only, when it is first shown, and cached
    (class probabilities per image), so browsing back costs nothing.

    Args:
        model: a segmentation model returning logits `(N, C, H, W)`.
        dataset: a `SegmentationDataset` whose `read_sample(i)` gives the raw pair.
        transform: turns the raw `(image, mask)` into the model's input, as for validation;
            default `eval_transforms()` (ImageNet normalisation, own size). Pass
            `eval_transforms(size)` for a model trained on resized images: the logits are
            resized back to the mask's size either way.
        index: the first sample shown.
        width: display width of one panel in pixels.
    """

    def __init__(self, model: torch.nn.Module, dataset: Any, *,
                 transform: Callable | None = None, index: int = 0, width: int = 192):
        super().__init__(width)
        if len(dataset) == 0:
            raise ValueError("the dataset is empty: nothing to show")
        self.model = model
        self.dataset = dataset
        self.transform = transform or eval_transforms()
        self.num_classes = int(dataset.num_classes)
        self.class_names = list(dataset.class_names)
        self.palette = list(dataset.palette or make_palette(self.num_classes))
        self.order = list(range(len(dataset)))  # slider position -> dataset index
        self._probs: dict[int, torch.Tensor] = {}  # dataset index -> softmax (C, H, W)

        self.slider, self.prev_button, self.next_button = _browse_controls(
            len(dataset), "rank", continuous=False)  # a model run per step: update on release
        self.sort = W.ToggleButtons(options=["dataset order", "worst IoU first"],
                                    style={"button_width": "120px"})
        self.class_dropdown = W.Dropdown(
            options=[("all classes", None), *[(n, c) for c, n in enumerate(self.class_names)]],
            value=None, description="class", layout=W.Layout(width="220px"))
        self.view = W.ToggleButtons(options=["errors", "confidence"],
                                    style={"button_width": "90px"})
        self.threshold = W.FloatSlider(value=0.5, min=0.05, max=0.95, step=0.05,
                                       description="threshold", layout=W.Layout(width="300px"))
        self.status = W.HTML()
        self.title = W.HTML()
        self.scores = W.HTML()
        self.legend = W.HTML()

        self.binary = self.num_classes == 2
        self.threshold.layout.display = None if self.binary else "none"
        self.widget = W.VBox([
            W.HBox([self.prev_button, self.slider, self.next_button, self.sort]),
            W.HBox([self.class_dropdown, self.view, self.threshold]),
            self.status,
            self.title,
            W.HBox([self.image_widget, self.scores], layout=W.Layout(align_items="flex-start")),
            self.legend,
        ])

        self.slider.value = index
        self.slider.observe(lambda _: self._render(), names="value")
        self.view.observe(lambda _: self._render(), names="value")
        # Sorting worst first goes to the worst image; a new class sorts by that class's IoU
        # and goes to its worst image; a new threshold re-sorts but stays on the shown image.
        self.sort.observe(lambda _: self._reorder(go_to_worst=True), names="value")
        self.class_dropdown.observe(lambda _: self._reorder(go_to_worst=True), names="value")
        self.threshold.observe(lambda _: self._reorder(go_to_worst=False), names="value")
        self._render()

    @property
    def index(self) -> int:
        """Position in the dataset of the sample shown (the slider is a rank once sorted)."""
        return self.order[self.slider.value]

    def probabilities(self, index: int) -> torch.Tensor:
        """Softmax of the model's logits for sample `index`, float32 `(C, H, W)`; cached."""
        if index not in self._probs:
            image, mask = self.dataset.read_sample(index)
            inputs, _ = self.transform(image, mask)
            size = tuple(mask.shape[-2:])
            logits = inference.predict_logits(self.model, inputs, size=size)  # (C, H, W)
            if logits.shape[0] != self.num_classes:
                raise ValueError(f"the model predicts {logits.shape[0]} classes but the dataset "
                                 f"has {self.num_classes}: pass the matching model or dataset")
            self._probs[index] = logits.softmax(dim=0)
        return self._probs[index]

    def prediction(self, index: int) -> np.ndarray:
        """Predicted classes for sample `index`, int64 `(H, W)` (at the threshold when binary)."""
        probs = self.probabilities(index)
        if self.binary:
            return (probs[1] >= self.threshold.value).long().numpy()
        return probs.argmax(dim=0).numpy()

    def image_iou(self, index: int) -> np.ndarray:
        """IoU per class of sample `index`, float64 `(C,)`; NaN for a class in neither mask.

        `segtutor.inference.image_iou`, the one per-image score (also `worst_k`'s).
        """
        _, mask = self._sample(index)
        return inference.image_iou(torch.from_numpy(self.prediction(index)),
                                   torch.from_numpy(mask), self.num_classes).numpy()

    def image_score(self, index: int) -> float:
        """What "worst IoU first" sorts by: the picked class's IoU, else the image's mIoU."""
        iou = self.image_iou(index)
        if self.class_dropdown.value is not None:
            return float(iou[self.class_dropdown.value])
        return mean_ignoring_nan(torch.from_numpy(iou))

    def _reorder(self, go_to_worst: bool) -> None:
        """Sort (worst first, unscored images last) or unsort, then show the worst or the same."""
        shown = self.index
        if self.sort.value == "dataset order":
            self.order = list(range(len(self.dataset)))
            self.status.value = ""
        else:
            scores = []
            for k in range(len(self.dataset)):
                if k not in self._probs:  # only the model runs are slow enough to report
                    self.status.value = f"predicting image {k + 1} of {len(self.dataset)}..."
                scores.append(self.image_score(k))
            worst_first = inference.rank_worst(scores)  # the images with a score
            self.order = worst_first + sorted(set(range(len(scores))) - set(worst_first))
            self.status.value = "sorted: the worst image first"
        worst = go_to_worst and self.sort.value != "dataset order"
        position = 0 if worst else self.order.index(shown)
        if self.slider.value != position:
            self.slider.value = position  # its observer redraws
        else:
            self._render()

    def _rows(self) -> list[tuple[list[np.ndarray], list[str]]]:
        image, mask = self._sample(self.index)
        pred = self.prediction(self.index)
        c = self.class_dropdown.value
        if self.view.value == "confidence":
            from matplotlib import colormaps

            confidence = self.probabilities(self.index).max(dim=0).values.numpy()  # (H, W)
            last = (colormaps["viridis"](confidence)[..., :3] * 255).round().astype(np.uint8)
            last_title = "confidence"
        elif c is None:
            last, last_title = error_map(pred, mask), "errors"
        else:
            last, last_title = _class_error_map(pred, mask, c), f"errors: {self.class_names[c]}"
        panels = [image, colorize(mask, self.palette), colorize(pred, self.palette), last]
        return [(panels, ["image", "ground truth", "prediction", last_title])]

    def _render(self) -> None:
        index = self.index
        iou = self.image_iou(index)
        self.title.value = (f"<b>{self.dataset.stems[index]}</b> &nbsp; rank "
                            f"{self.slider.value + 1} of {len(self.dataset)} &nbsp; "
                            f"mIoU {mean_ignoring_nan(torch.from_numpy(iou)):.3f}")
        rows = "".join(
            f"<tr><td>{_swatch(color)} {name}</td><td style='text-align:right'>"
            f"{'-' if np.isnan(v) else f'{v:.3f}'}</td></tr>"
            for name, color, v in zip(self.class_names, self.palette, iou, strict=False))
        self.scores.value = ("<table style='font-size:12px;margin-left:12px'><tr><th>class</th>"
                             f"<th>IoU</th></tr>{rows}</table>")
        if self.view.value == "confidence":
            self.legend.value = "confidence: highest class probability, dark = unsure, yellow = sure"
        elif self.class_dropdown.value is None:
            self.legend.value = _legend_html({k: v for k, v in ERROR_COLORS.items()
                                              if k != "correct"})
        else:
            self.legend.value = _legend_html({k: v for k, v in CLASS_ERROR_COLORS.items()
                                              if k != "true negative"})
        super()._render()


def _class_error_map(pred: np.ndarray, mask: np.ndarray, c: int) -> np.ndarray:
    """The errors of class `c` alone, uint8 `(H, W, 3)` coloured by `CLASS_ERROR_COLORS`."""
    out = np.empty((*mask.shape, 3), dtype=np.uint8)
    out[:] = CLASS_ERROR_COLORS["true negative"]
    out[(pred == c) & (mask == c)] = CLASS_ERROR_COLORS["true positive"]
    out[(pred == c) & (mask != c)] = CLASS_ERROR_COLORS["false positive"]
    out[(pred != c) & (mask == c)] = CLASS_ERROR_COLORS["false negative"]
    out[mask == IGNORE_INDEX] = CLASS_ERROR_COLORS["ignored"]
    return out


# ----------------------------------------------------------------------------------------------
# AugmentationExplorer


class AugmentationExplorer(_Viewer):
    """See what `segtutor.transforms.train_transforms` does to an image AND its mask.

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

    def __init__(self, dataset: Any, *, index: int = 0, num_samples: int = 4,
                 size: int | tuple[int, int] | None = None, seed: int = 0, width: int = 160):
        super().__init__(width)
        if len(dataset) == 0:
            raise ValueError("the dataset is empty: nothing to show")
        self.dataset = dataset
        self.num_samples = num_samples
        self.size = size
        self.seed = seed
        self.palette = list(dataset.palette or make_palette(len(dataset.class_names)))
        self.samples: list[tuple[np.ndarray, np.ndarray]] = []  # the shown draws (image, mask)

        self.slider, self.prev_button, self.next_button = _browse_controls(
            len(dataset), "sample", continuous=False)
        self.crop = W.Checkbox(value=True, description="random crop", indent=False,
                               layout=W.Layout(width="110px"))
        self.crop_scale = W.FloatRangeSlider(value=(0.5, 1.0), min=0.1, max=1.0, step=0.05,
                                             description="crop area", continuous_update=False)
        self.hflip = W.Checkbox(value=True, description="horizontal flip", indent=False,
                                layout=W.Layout(width="130px"))
        self.vflip = W.Checkbox(value=False, description="vertical flip", indent=False,
                                layout=W.Layout(width="110px"))
        self.rotation = W.IntSlider(value=15, min=0, max=180, step=5, description="rotation",
                                    continuous_update=False)
        self.color_jitter = W.FloatSlider(value=0.2, min=0, max=1, step=0.05,
                                          description="colour jitter", continuous_update=False)
        self.show_as = W.ToggleButtons(options=["outline", "overlay"],
                                       style={"button_width": "80px"})
        self.resample_button = W.Button(description="Resample", icon="refresh",
                                        button_style="primary")
        self.resample_button.on_click(lambda _: self.resample())

        self.widget = W.VBox([
            W.HBox([self.prev_button, self.slider, self.next_button]),
            W.HBox([self.crop, self.crop_scale, self.hflip, self.vflip]),
            W.HBox([self.rotation, self.color_jitter]),
            W.HBox([self.show_as, self.resample_button]),
            self.image_widget,
        ])
        self.slider.value = index
        for control in (self.slider, self.crop, self.crop_scale, self.hflip, self.vflip,
                        self.rotation, self.color_jitter):
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
            size, scale=tuple(self.crop_scale.value) if self.crop.value else None,
            hflip=self.hflip.value, vflip=self.vflip.value, rotation=float(self.rotation.value),
            color_jitter=self.color_jitter.value, mean=None, std=None)

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
            return _blend(image, colors, (mask != 0) & (mask != IGNORE_INDEX), 0.5)
        outline = _boundaries(mask) & (mask != IGNORE_INDEX)
        colors[mask == 0] = IGNORE_COLOR  # background's black outline would vanish on dark images
        return _blend(image, colors, outline, 1.0)

    def _rows(self) -> list[tuple[list[np.ndarray], list[str]]]:
        image, mask = self._sample(self.index)
        pairs = [(image, mask), *self.samples]
        draws = [f"draw {k + 1}" for k in range(len(self.samples))]
        return [([self._mark(i, m) for i, m in pairs], ["original", *draws]),
                ([colorize(m, self.palette) for _, m in pairs], ["mask", *[""] * len(draws)])]


# ----------------------------------------------------------------------------------------------
# LiveTrainingPlot


class LiveTrainingPlot(Callback):
    """A `fit` callback that redraws the loss and mIoU curves in place after every epoch.

    In Jupyter the curves are one output, updated through an IPython display handle (the same
    `display_id`), so the notebook stores ONE figure, the last one, not one per epoch. Outside
    a kernel nothing is drawn during training; the last figure is in `.figure` either way.

    Args:
        every: redraw every this many epochs (the last epoch is always drawn).

    Example:
        >>> history = fit(model, train_loader, val_loader, replace(config, progress=False),
        ...               callbacks=[LiveTrainingPlot()])
    """

    def __init__(self, every: int = 1):
        self.every = every
        self.figure: Figure | None = None  # the latest curves
        self.updates = 0  # how many times the figure was drawn
        self._drawn_epochs = 0  # len(history) when the figure was last drawn
        self._handle: Any = None  # IPython DisplayHandle of the one output

    def on_epoch_end(self, epoch: int, history: History) -> None:
        """Redraw the curves (every `every` epochs)."""
        if epoch % self.every == 0:
            self._draw(history)

    def on_train_end(self, history: History) -> None:
        """Draw the final curves if `every` skipped the last epoch."""
        if len(history) != self._drawn_epochs:
            self._draw(history)

    def _draw(self, history: History) -> None:
        self.figure = plot_history(history)
        self.updates += 1
        self._drawn_epochs = len(history)
        if not _in_kernel():
            return
        from IPython.display import Image as PNG
        from IPython.display import display

        # PNG bytes, not the Figure: a Figure made without pyplot has no PNG form in a kernel
        # whose matplotlib backend is not the inline one.
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        picture = PNG(data=buffer.getvalue(), format="png")
        if self._handle is None:
            self._handle = display(picture, display_id=True)
        else:
            self._handle.update(picture)
