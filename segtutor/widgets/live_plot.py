"""`LiveTrainingPlot`: a `fit` callback that redraws the training curves in place.

Introduced in `04_training.ipynb`. The training loop knows nothing of plotting: it calls this
callback after every epoch, like any other.
"""

from __future__ import annotations

import io
from typing import Any

from matplotlib.figure import Figure

from segtutor.config import Callback, History
from segtutor.viz import plot_history
from segtutor.widgets._picture import in_kernel

__all__ = ["LiveTrainingPlot"]


class LiveTrainingPlot(Callback):
    """A `fit` callback that redraws the loss and mIoU curves in place after every epoch.

    Introduced in `04_training.ipynb`.

    In Jupyter the curves are one output, updated through an IPython display handle (the same
    `display_id`), so the notebook stores ONE figure, the last one, not one per epoch. Outside
    a kernel nothing is drawn during training; the last figure is in `.figure` either way.

    Args:
        every: redraw every this many epochs (the last epoch is always drawn).

    Example:
        >>> history = fit(
        ...     model,
        ...     train_loader,
        ...     val_loader,
        ...     replace(config, progress=False),
        ...     callbacks=[LiveTrainingPlot()],
        ... )
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
        if not in_kernel():
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
