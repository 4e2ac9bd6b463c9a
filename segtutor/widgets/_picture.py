"""What the viewers share: numpy composites made into PNG bytes, and the `Viewer` base class.

Introduced in `06_visualisation.ipynb`, behind the viewers; private to `segtutor.widgets` (the
viewers' modules import from here, learners import the viewers). Every picture is a numpy
composite of panels made from the plain functions of `segtutor.viz`, encoded as a PNG with PIL and
put into one `ipywidgets.Image`: moving a slider redraws only that picture, no matplotlib figure
per move. `Viewer` adds the static fallback (a picture and a note) where widgets cannot run.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import ipywidgets as W
import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from segtutor.viz import to_uint8_image

__all__ = [
    "STATIC_NOTE",
    "Color",
    "Viewer",
    "blend",
    "boundaries",
    "browse_controls",
    "compose",
    "hstack",
    "in_kernel",
    "legend_html",
    "swatch",
    "to_png",
    "vstack",
]

Color = tuple[int, int, int]

STATIC_NOTE = (
    "Static picture: this viewer is interactive only in a running Jupyter kernel with ipywidgets "
    "(JupyterLab or Notebook). Run the cell to use its controls."
)

_GAP = 2  # pixels between panels, at the images' own resolution
_GAP_COLOR = (255, 255, 255)
_TITLE_HEIGHT = 16  # pixels of the title strip above displayed pictures
_STATIC_MAX_WIDTH = 512  # the static fallback picture stored in notebooks stays this small


# --- pictures: numpy composites -> PNG bytes -------------------------------------------------


def hstack(panels: Sequence[np.ndarray]) -> np.ndarray:
    """Panels `(H, W_i, 3)` side by side with a thin white gap; uint8 `(H, sum W_i + gaps, 3)`.

    Introduced in `06_visualisation.ipynb`.
    """
    height = max(p.shape[0] for p in panels)
    gap = np.full((height, _GAP, 3), _GAP_COLOR, np.uint8)
    parts: list[np.ndarray] = []
    for panel in panels:
        if panel.shape[0] < height:  # pad at the bottom: panels of different heights
            pad = np.full((height - panel.shape[0], *panel.shape[1:]), _GAP_COLOR, np.uint8)
            panel = np.concatenate([panel, pad])
        parts += [panel, gap]
    return np.concatenate(parts[:-1], axis=1)


def vstack(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Rows of the same width one above the other with a thin white gap.

    Introduced in `06_visualisation.ipynb`.
    """
    gap = np.full((_GAP, rows[0].shape[1], 3), _GAP_COLOR, np.uint8)
    parts: list[np.ndarray] = []
    for row in rows:
        parts += [row, gap]
    return np.concatenate(parts[:-1], axis=0)


def blend(image: np.ndarray, colors: np.ndarray, where: np.ndarray, alpha: float) -> np.ndarray:
    """`image` with `colors` mixed in at weight `alpha` where `where` is True; uint8 `(H, W, 3)`.

    Introduced in `06_visualisation.ipynb`.
    """
    out = image.copy()
    mixed = (1 - alpha) * image[where].astype(np.float32) + alpha * colors[where]
    out[where] = mixed.round().astype(np.uint8)
    return out


def boundaries(mask: np.ndarray) -> np.ndarray:
    """True on pixels whose right or lower neighbour has another label: the outline of each region.

    Introduced in `06_visualisation.ipynb`.

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


def compose(rows: Sequence[tuple[list[np.ndarray], list[str]]], scale: float) -> Image.Image:
    """Rows of panels, each panel resized by `scale` with its title above: a PIL image to encode.

    Introduced in `06_visualisation.ipynb`.
    """
    # Nearest keeps class colours pure when enlarging; box filtering when shrinking.
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BOX
    pictures = []
    for panels, titles in rows:
        scaled = []
        for panel in panels:
            h, w = panel.shape[:2]
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            scaled.append(np.asarray(Image.fromarray(panel).resize(size, resample)))
        body = hstack(scaled)
        picture = Image.new("RGB", (body.shape[1], body.shape[0] + _TITLE_HEIGHT), _GAP_COLOR)
        picture.paste(Image.fromarray(body), (0, _TITLE_HEIGHT))
        draw = ImageDraw.Draw(picture)
        x = 0
        for panel, title in zip(scaled, titles, strict=True):
            draw.text((x + 2, 2), title, fill=(0, 0, 0))
            x += panel.shape[1] + _GAP
        pictures.append(picture)
    out = Image.new(
        "RGB", (max(p.width for p in pictures), sum(p.height for p in pictures)), _GAP_COLOR
    )
    y = 0
    for picture in pictures:
        out.paste(picture, (0, y))
        y += picture.height
    return out


def to_png(picture: Image.Image) -> bytes:
    """The PNG bytes of `picture`, what an `ipywidgets.Image` shows.

    Introduced in `06_visualisation.ipynb`.
    """
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)  # fast: redrawn on every slider move
    return buffer.getvalue()


def swatch(color: Sequence[int], size: int = 12) -> str:
    """HTML for a small square of one colour (legends, tables).

    Introduced in `06_visualisation.ipynb`.
    """
    r, g, b = (int(c) for c in color)
    return (
        f'<span style="display:inline-block;width:{size}px;height:{size}px;'
        f'background:rgb({r},{g},{b});border:1px solid #888;vertical-align:middle"></span>'
    )


def legend_html(items: dict[str, Color]) -> str:
    """HTML for a one-line legend: a swatch and a name per entry.

    Introduced in `06_visualisation.ipynb`.
    """
    return " &nbsp; ".join(f"{swatch(c)} {name}" for name, c in items.items())


def in_kernel() -> bool:
    """True inside a running IPython kernel (JupyterLab, Notebook, VS Code), where widgets work.

    Introduced in `06_visualisation.ipynb`.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


# --- the shared part of the three viewers --------------------------------------------------


class Viewer:
    """What every viewer has: one `widget` (the whole viewer), a picture, a static fallback.

    Introduced in `06_visualisation.ipynb` (`show()`, `static_figure()`, `current_image()`).

    A subclass builds `self.widget` around `self.image_widget` and implements `_rows()`: the
    panels shown, as rows of `(panels, titles)`, at the images' own resolution.
    """

    dataset: Any  # set by the subclass: anything with `read_sample(i)` (a SegmentationDataset)

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
        return vstack([hstack(panels) for panels, _ in self._rows()])

    def _render(self) -> None:
        """Redraw the picture: the only place where PNG bytes reach the browser."""
        rows = self._rows()
        self.image_widget.value = to_png(compose(rows, self.width / rows[0][0][0].shape[1]))

    def _static_picture(self) -> Image.Image:
        rows = self._rows()
        scale = self.width / rows[0][0][0].shape[1]
        widest = max(sum(p.shape[1] for p in panels) for panels, _ in rows)
        return compose(rows, min(scale, _STATIC_MAX_WIDTH / widest))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict:
        """The widget, plus a static picture with a note for wherever the widget cannot render.

        JupyterLab shows the widget; nbconvert's HTML, a notebook reopened without its kernel, or
        a frontend without ipywidgets fall back to the `text/html` picture and note.
        """
        bundle = self.widget._repr_mimebundle_(**kwargs)
        png = base64.b64encode(to_png(self._static_picture())).decode("ascii")
        bundle["text/plain"] = f"{type(self).__name__}: {STATIC_NOTE}"
        bundle["text/html"] = (
            f'<p style="font-style:italic">{STATIC_NOTE}</p><img src="data:image/png;base64,{png}">'
        )
        return bundle

    def static_figure(self) -> Figure:
        """The current view as a matplotlib figure titled with the static note."""
        picture = np.asarray(self._static_picture())
        height, width = picture.shape[:2]
        fig = Figure(figsize=(width / 80, height / 80 + 0.6), dpi=80, layout="constrained")
        ax = fig.subplots()
        ax.imshow(picture, interpolation="nearest")
        ax.set_axis_off()
        fig.suptitle(
            f"{type(self).__name__}: static picture (widgets need a Jupyter kernel)", fontsize=9
        )
        return fig

    def show(self) -> Figure | None:
        """Display the viewer in Jupyter; elsewhere print the note and return a static figure.

        Returns:
            None in a Jupyter kernel; otherwise a `Figure` (save it with `fig.savefig(path)`).
        """
        if in_kernel():
            from IPython.display import display

            display(self)
            return None
        print(f"{type(self).__name__}: {STATIC_NOTE}")
        return self.static_figure()


def browse_controls(
    count: int, description: str, continuous: bool
) -> tuple[W.IntSlider, W.Button, W.Button]:
    """The slider over `count` items and its previous / next buttons, wired to it.

    Introduced in `06_visualisation.ipynb`.
    """
    slider = W.IntSlider(
        value=0,
        min=0,
        max=max(count - 1, 0),
        description=description,
        continuous_update=continuous,
        layout=W.Layout(width="360px"),
    )
    previous = W.Button(description="previous", icon="arrow-left", layout=W.Layout(width="100px"))
    following = W.Button(description="next", icon="arrow-right", layout=W.Layout(width="100px"))
    previous.on_click(lambda _: setattr(slider, "value", max(slider.min, slider.value - 1)))
    following.on_click(lambda _: setattr(slider, "value", min(slider.max, slider.value + 1)))
    return slider, previous, following
