"""`UploadPredictor`: upload a photograph, see a chosen model's prediction and class areas.

Introduced in `06_visualisation.ipynb`. The photo goes through `segtutor.inference.Predictor`
(upright, at the model's working scale, window by window when large, optionally averaged with
its mirror image), as `python -m segtutor predict` would predict it.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np

from segtutor.errors import DataError
from segtutor.inference import Predictor, read_photo
from segtutor.viz import make_palette, overlay
from segtutor.widgets._picture import Viewer, swatch

__all__ = ["UploadPredictor"]

_PLACEHOLDER = np.full((96, 128, 3), 230, dtype=np.uint8)  # shown until a photo is uploaded


class UploadPredictor(Viewer):
    """Upload a photo and see a model's prediction drawn over it, with the area of each class.

    Introduced in `06_visualisation.ipynb`.

    Controls (attributes): `upload` (an `ipywidgets.FileUpload` for one image), `model_dropdown`
    (which model), `tta` (average with the mirror image); what it shows: `areas` (an HTML table
    of pixels per class), `status` (the photo's name and size, or why it cannot be read), and
    `pixels`, `preds` (the photo and its class map, None before an upload).

    Args:
        models: a `Predictor`, a checkpoint path, or a dict of names to either.
        width: display width of one panel in pixels.
    """

    def __init__(
        self,
        models: Predictor | str | Path | Mapping[str, Predictor | str | Path],
        *,
        width: int = 320,
    ):
        super().__init__(width)
        if not isinstance(models, Mapping):
            models = {"model": models}
        if not models:
            raise ValueError("give at least one model (a Predictor or a checkpoint path)")
        self.models = {
            name: m if isinstance(m, Predictor) else Predictor.from_checkpoint(m)
            for name, m in models.items()
        }
        self.pixels: np.ndarray | None = None
        self.preds: np.ndarray | None = None
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="photo")
        self.model_dropdown = W.Dropdown(options=list(self.models), description="model")
        self.tta = W.Checkbox(value=False, description="flip TTA", indent=False)
        self.status = W.HTML("Upload a photograph (.png, .jpg, .tif, ...).")
        self.areas = W.HTML()
        self.upload.observe(self._on_upload, names="value")
        self.model_dropdown.observe(lambda _: self._update(), names="value")
        self.tta.observe(lambda _: self._update(), names="value")
        controls = W.HBox([self.upload, self.model_dropdown, self.tta])
        self.widget = W.VBox([controls, self.status, self.image_widget, self.areas])
        self._render()

    @property
    def predictor(self) -> Predictor:
        """The chosen model, with the TTA box applied."""
        chosen = self.models[self.model_dropdown.value]
        return dataclasses.replace(chosen, tta="flip" if self.tta.value else None)

    def _on_upload(self, change: dict[str, Any]) -> None:
        if not change["new"]:
            return
        item = change["new"][-1]  # ipywidgets 8: a tuple of {"name", "content", ...}
        name = item["name"]
        try:
            pixels = read_photo(bytes(item["content"]), name=name)
        except DataError as error:
            self.status.value = f"<b>{html.escape(name)}</b>: " + html.escape(
                str(error.problems[0].message)
            )
            return
        self.pixels, self.name = pixels, name
        self._update()

    def _update(self) -> None:
        if self.pixels is None:
            return
        self.preds = self.predictor.predict(self.pixels).numpy()  # (H, W)
        height, width = self.preds.shape
        self.status.value = f"<b>{html.escape(self.name)}</b>: {width} x {height} pixels"
        self.areas.value = self._areas_html()
        self._render()

    def _names_and_palette(self) -> tuple[list[str], list]:
        predictor = self.models[self.model_dropdown.value]
        n = predictor.num_classes
        names = predictor.class_names or [f"class_{c}" for c in range(n)]
        return names, predictor.palette or make_palette(n)

    def class_areas(self) -> dict[str, int]:
        """Pixels of each class in the current prediction (empty before an upload)."""
        if self.preds is None:
            return {}
        names, _ = self._names_and_palette()
        counts = np.bincount(self.preds.ravel(), minlength=len(names))
        return {name: int(count) for name, count in zip(names, counts, strict=False)}

    def _areas_html(self) -> str:
        names, palette = self._names_and_palette()
        total = max(1, self.preds.size)
        rows = "".join(
            f"<tr><td>{swatch(palette[c])} {html.escape(name)}</td>"
            f"<td style='text-align:right'>{count}</td>"
            f"<td style='text-align:right'>{100 * count / total:.1f}%</td></tr>"
            for c, (name, count) in enumerate(self.class_areas().items())
        )
        return f"<table><tr><th>class</th><th>pixels</th><th>area</th></tr>{rows}</table>"

    def _rows(self) -> list[tuple[list[np.ndarray], list[str]]]:
        if self.pixels is None:
            return [([_PLACEHOLDER], ["upload a photo"])]
        _, palette = self._names_and_palette()
        return [([self.pixels, overlay(self.pixels, self.preds, palette)], ["photo", "prediction"])]
