"""`PredictionViewer`: a model's predictions next to the truth, worst images first.

Introduced in `06_visualisation.ipynb`. Per-image scores and their ranking are
`segtutor.inference`'s (`image_iou`, `rank_worst`), the same as `worst_k`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as W
import numpy as np
import torch

from segtutor import inference
from segtutor.metrics import mean_ignoring_nan
from segtutor.settings import IGNORE_INDEX
from segtutor.transforms import eval_transforms
from segtutor.viz import ERROR_COLORS, IGNORE_COLOR, colorize, error_map, make_palette
from segtutor.widgets._picture import Color, Viewer, browse_controls, legend_html, swatch

__all__ = ["CLASS_ERROR_COLORS", "PredictionViewer"]

# The error map of ONE class (PredictionViewer with a class picked): the mistakes in
# segtutor.viz's error colours, the hits in neutral grey, everything else dark.
CLASS_ERROR_COLORS: dict[str, Color] = {
    "true negative": (0, 0, 0),
    "true positive": (128, 128, 128),
    "false positive": ERROR_COLORS["false positive"],
    "false negative": ERROR_COLORS["false negative"],
    "ignored": IGNORE_COLOR,
}


class PredictionViewer(Viewer):
    """A model's predictions next to the truth: image / ground truth / prediction / errors.

    Introduced in `06_visualisation.ipynb`.

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

    def __init__(
        self,
        model: torch.nn.Module,
        dataset: Any,
        *,
        transform: Callable | None = None,
        index: int = 0,
        width: int = 192,
    ):
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

        self.slider, self.prev_button, self.next_button = browse_controls(
            len(dataset), "rank", continuous=False
        )  # a model run per step: update on release
        self.sort = W.ToggleButtons(
            options=["dataset order", "worst IoU first"], style={"button_width": "120px"}
        )
        self.class_dropdown = W.Dropdown(
            options=[("all classes", None), *[(n, c) for c, n in enumerate(self.class_names)]],
            value=None,
            description="class",
            layout=W.Layout(width="220px"),
        )
        self.view = W.ToggleButtons(
            options=["errors", "confidence"], style={"button_width": "90px"}
        )
        self.threshold = W.FloatSlider(
            value=0.5,
            min=0.05,
            max=0.95,
            step=0.05,
            description="threshold",
            layout=W.Layout(width="300px"),
        )
        self.status = W.HTML()
        self.title = W.HTML()
        self.scores = W.HTML()
        self.legend = W.HTML()

        self.binary = self.num_classes == 2
        self.threshold.layout.display = None if self.binary else "none"
        self.widget = W.VBox(
            [
                W.HBox([self.prev_button, self.slider, self.next_button, self.sort]),
                W.HBox([self.class_dropdown, self.view, self.threshold]),
                self.status,
                self.title,
                W.HBox([self.image_widget, self.scores], layout=W.Layout(align_items="flex-start")),
                self.legend,
            ]
        )

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
                raise ValueError(
                    f"the model predicts {logits.shape[0]} classes but the dataset "
                    f"has {self.num_classes}: pass the matching model or dataset"
                )
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
        return inference.image_iou(
            torch.from_numpy(self.prediction(index)), torch.from_numpy(mask), self.num_classes
        ).numpy()

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
        self.title.value = (
            f"<b>{self.dataset.stems[index]}</b> &nbsp; rank "
            f"{self.slider.value + 1} of {len(self.dataset)} &nbsp; "
            f"mIoU {mean_ignoring_nan(torch.from_numpy(iou)):.3f}"
        )
        rows = "".join(
            f"<tr><td>{swatch(color)} {name}</td><td style='text-align:right'>"
            f"{'-' if np.isnan(v) else f'{v:.3f}'}</td></tr>"
            for name, color, v in zip(self.class_names, self.palette, iou, strict=False)
        )
        self.scores.value = (
            "<table style='font-size:12px;margin-left:12px'><tr><th>class</th>"
            f"<th>IoU</th></tr>{rows}</table>"
        )
        if self.view.value == "confidence":
            self.legend.value = (
                "confidence: highest class probability, dark = unsure, yellow = sure"
            )
        elif self.class_dropdown.value is None:
            self.legend.value = legend_html(
                {k: v for k, v in ERROR_COLORS.items() if k != "correct"}
            )
        else:
            self.legend.value = legend_html(
                {k: v for k, v in CLASS_ERROR_COLORS.items() if k != "true negative"}
            )
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
