"""segtutor: semantic segmentation with a U-Net in PyTorch, the reference code of the course.

Introduced in `01_data.ipynb`. One module per concept, each introduced in a notebook. The
layers, from the files up (a module uses only those above it in this list;
tests/test_architecture.py checks it):

- Data: `formats` (file formats: images, masks, dataset.json), `checks` (every problem of a
  dataset folder, found at once), `data` (`SegmentationDataset`, splits, loaders),
  `transforms` (paired augmentation), `synth` (the sample datasets; `synth_images` draws
  each image) (01_data)
- Model: `model`, the U-Net from named parts (02_unet)
- Learn: `losses` (03_losses), `metrics` (05_evaluation), `config` + `train` (`TrainConfig`,
  `train_one_epoch`, `validate`, `fit`), `checkpoint`, `runtime` (seeds, device, precision)
  (04_training), `inference` (predictions, per-image scores) (05_evaluation)
- `recipe`: a dataset folder and a few choices -> model, loaders, config (04_training)
- Show: `viz` (figures), `widgets` (viewers for JupyterLab) (06_visualisation); `doctor`
  (the `check-data` report, 01_data)
- Face: `commands/`, one module per verb of `python -m segtutor`

The names below are re-exported so that `import segtutor as st; st.UNet(...)` works.
"""

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

__all__ = [
    "CEDiceLoss",
    "CheckpointError",
    "ConfusionMatrix",
    "DataError",
    "DiceLoss",
    "History",
    "RecipeOptions",
    "Run",
    "IGNORE_INDEX",
    "SegmentationDataset",
    "TrainConfig",
    "UNet",
    "build_loss",
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
