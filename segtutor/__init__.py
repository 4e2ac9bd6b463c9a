"""segtutor: semantic segmentation with a U-Net in PyTorch, the reference code of the course.

Introduced in `01_data.ipynb`. One module per concept, each introduced in a notebook. The
layers, from the files up (a module uses only those above it in this list;
tests/test_architecture.py checks it):

- Data: `formats` (file formats: images, masks, dataset.json), `checks` (every problem of a
  dataset folder, found at once), `data` (`SegmentationDataset`, splits, loaders),
  `transforms` (paired augmentation), `synth` (the sample datasets; `synth_images` draws
  each image) (01_data)
- Model: `model`, the U-Net from named parts (02_unet); `architectures`, its relatives
  (`build_model`, `MODELS`)
- Learn: `losses` (03_losses), `metrics` (05_evaluation), `config` + `train` (`TrainConfig`,
  `train_one_epoch`, `validate`, `fit`), `checkpoint`, `runtime` (seeds, device, precision)
  (04_training), `inference` (predictions, per-image scores) (05_evaluation)
- `recipe`: a dataset folder and a few choices -> model, loaders, config (04_training)
- Show: `viz` (figures), `widgets` (viewers for JupyterLab) (06_visualisation); `doctor`
  (the `check-data` report, 01_data)
- Face: `commands/`, one module per verb of `python -m segtutor`
- `deploy`: an exported model run with numpy, Pillow and onnxruntime only (06_visualisation)

The names below are re-exported so that `import segtutor as st; st.UNet(...)` and
`from segtutor import fit` work. They are imported lazily, the first time one is asked for
(PEP 562: a module-level `__getattr__`), not when the package is: Python runs this file before
any of its modules, so an eager `from segtutor.model import UNet` here would make
`python -m segtutor.deploy` import PyTorch, on the very machine that has none (the point of
`deploy`), and would make `import segtutor.settings` cost a PyTorch import too. `_SOURCES` says
where each name lives; the `TYPE_CHECKING` block says the same to type checkers and editors,
which do not run `__getattr__`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # never true when the code runs
    from segtutor.architectures import MODELS, build_model
    from segtutor.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
    from segtutor.checks import scan
    from segtutor.config import History, TrainConfig
    from segtutor.data import SegmentationDataset, load_splits, make_loader
    from segtutor.errors import CheckpointError, DataError
    from segtutor.formats import read_metadata
    from segtutor.inference import predict, predict_logits
    from segtutor.losses import CEDiceLoss, DiceLoss, build_loss, class_weights
    from segtutor.metrics import ConfusionMatrix, confusion_matrix
    from segtutor.model import UNet, build_unet, count_flops, count_parameters
    from segtutor.recipe import RecipeOptions, Run, prepare
    from segtutor.runtime import choose_device, seed_everything
    from segtutor.settings import IGNORE_INDEX, quick_mode
    from segtutor.torchvision_data import from_torchvision
    from segtutor.train import evaluate, fit, should_stop, train_one_epoch, validate
    from segtutor.transforms import eval_transforms, train_transforms

__version__ = "0.1.0"

# name -> the module that defines it (the same as the imports above)
_SOURCES = {
    "MODELS": "segtutor.architectures",
    "build_model": "segtutor.architectures",
    "load_checkpoint": "segtutor.checkpoint",
    "model_from_checkpoint": "segtutor.checkpoint",
    "save_checkpoint": "segtutor.checkpoint",
    "scan": "segtutor.checks",
    "History": "segtutor.config",
    "TrainConfig": "segtutor.config",
    "SegmentationDataset": "segtutor.data",
    "load_splits": "segtutor.data",
    "make_loader": "segtutor.data",
    "CheckpointError": "segtutor.errors",
    "DataError": "segtutor.errors",
    "read_metadata": "segtutor.formats",
    "predict": "segtutor.inference",
    "predict_logits": "segtutor.inference",
    "CEDiceLoss": "segtutor.losses",
    "DiceLoss": "segtutor.losses",
    "build_loss": "segtutor.losses",
    "class_weights": "segtutor.losses",
    "ConfusionMatrix": "segtutor.metrics",
    "confusion_matrix": "segtutor.metrics",
    "UNet": "segtutor.model",
    "build_unet": "segtutor.model",
    "count_flops": "segtutor.model",
    "count_parameters": "segtutor.model",
    "RecipeOptions": "segtutor.recipe",
    "Run": "segtutor.recipe",
    "prepare": "segtutor.recipe",
    "choose_device": "segtutor.runtime",
    "seed_everything": "segtutor.runtime",
    "IGNORE_INDEX": "segtutor.settings",
    "quick_mode": "segtutor.settings",
    "from_torchvision": "segtutor.torchvision_data",
    "evaluate": "segtutor.train",
    "fit": "segtutor.train",
    "should_stop": "segtutor.train",
    "train_one_epoch": "segtutor.train",
    "validate": "segtutor.train",
    "eval_transforms": "segtutor.transforms",
    "train_transforms": "segtutor.transforms",
}

__all__ = [
    "CEDiceLoss",
    "CheckpointError",
    "ConfusionMatrix",
    "DataError",
    "DiceLoss",
    "History",
    "IGNORE_INDEX",
    "MODELS",
    "RecipeOptions",
    "Run",
    "SegmentationDataset",
    "TrainConfig",
    "UNet",
    "build_loss",
    "build_model",
    "build_unet",
    "choose_device",
    "class_weights",
    "confusion_matrix",
    "count_flops",
    "count_parameters",
    "eval_transforms",
    "evaluate",
    "fit",
    "from_torchvision",
    "load_checkpoint",
    "load_splits",
    "make_loader",
    "model_from_checkpoint",
    "predict",
    "predict_logits",
    "prepare",
    "quick_mode",
    "read_metadata",
    "save_checkpoint",
    "scan",
    "seed_everything",
    "should_stop",
    "train_one_epoch",
    "train_transforms",
    "validate",
]


def __getattr__(name: str) -> Any:
    """`segtutor.UNet`: import `segtutor.model` the first time, then keep `UNet` here.

    Python calls this only for a name the package does not have yet (PEP 562).
    """
    if name not in _SOURCES:
        raise AttributeError(f"module 'segtutor' has no attribute {name!r}")
    value = getattr(importlib.import_module(_SOURCES[name]), name)
    globals()[name] = value  # found directly next time, without calling this again
    return value


def __dir__() -> list[str]:
    """What `dir(segtutor)` and tab completion list: the re-exports too, imported or not."""
    return sorted(set(globals()) | set(__all__))
