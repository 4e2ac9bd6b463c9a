"""Interactive viewers for JupyterLab: a dataset, a model's mistakes, augmentations, live curves.

Introduced in `06_visualisation.ipynb` (`LiveTrainingPlot` in `04_training.ipynb`).

- `DatasetViewer(dataset)`: browse images with their masks overlaid, hide classes, count pixels.
- `PredictionViewer(model, dataset)`: image / ground truth / prediction / error map, per-image IoU,
  worst images first, one class at a time, threshold or confidence for binary models.
- `AugmentationExplorer(dataset)`: pick augmentations and their strength, resample, and see the
  mask's outline follow the transformed image.
- `LiveTrainingPlot()`: a `fit` callback that redraws the loss and mIoU curves in place.
- `UploadPredictor(checkpoint)`: upload a photograph, see a model's prediction and class areas.

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

One module per viewer (`dataset_viewer`, `prediction_viewer`, `augmentation`, `live_plot`);
what they share, the pictures and the `Viewer` base with its static fallback, is in `_picture`.

Example:
    >>> viewer = DatasetViewer(SegmentationDataset("../data_samples/scenes/val"))
    >>> viewer  # the last expression of a cell: the interactive viewer
"""

from segtutor.widgets._picture import STATIC_NOTE
from segtutor.widgets.augmentation import AugmentationExplorer
from segtutor.widgets.dataset_viewer import DatasetViewer
from segtutor.widgets.live_plot import LiveTrainingPlot
from segtutor.widgets.prediction_viewer import CLASS_ERROR_COLORS, PredictionViewer
from segtutor.widgets.upload_predict import UploadPredictor

__all__ = [
    "CLASS_ERROR_COLORS",
    "STATIC_NOTE",
    "AugmentationExplorer",
    "DatasetViewer",
    "LiveTrainingPlot",
    "PredictionViewer",
    "UploadPredictor",
]
