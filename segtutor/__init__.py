"""segtutor: semantic segmentation with a U-Net in PyTorch, the reference code of the course.

One module per concept, each introduced in a notebook:

- `segtutor.data`: folders of images and masks as a checked `SegmentationDataset` (01_data)
- `segtutor.transforms`: paired augmentation for image and mask (01_data)
- `segtutor.model`: the U-Net from named parts (02_unet)
- `segtutor.losses`: cross-entropy, Dice, class weights (03_losses)
- `segtutor.train`: `fit`, checkpoints, `evaluate` (04_training)
- `segtutor.metrics`: IoU, mIoU, Dice from one confusion matrix (05_evaluation)
- `segtutor.viz`: colour masks, overlays, prediction grids, curves (06_visualisation)

The names below are re-exported so that `import segtutor as st; st.UNet(...)` works.
"""

from segtutor.checks import scan
from segtutor.data import SegmentationDataset, load_splits
from segtutor.errors import CheckpointError, DataError
from segtutor.formats import read_metadata
from segtutor.losses import CEDiceLoss, DiceLoss, build_loss, class_weights
from segtutor.metrics import ConfusionMatrix, confusion_matrix
from segtutor.model import UNet, build_unet, count_flops, count_parameters
from segtutor.settings import IGNORE_INDEX, quick_mode
from segtutor.train import (
    History,
    TrainConfig,
    evaluate,
    fit,
    load_checkpoint,
    make_loader,
    model_from_checkpoint,
    predict,
    save_checkpoint,
)
from segtutor.transforms import eval_transforms, train_transforms

__version__ = "0.1.0"

__all__ = [
    "IGNORE_INDEX",
    "CEDiceLoss",
    "CheckpointError",
    "ConfusionMatrix",
    "DataError",
    "DiceLoss",
    "History",
    "SegmentationDataset",
    "TrainConfig",
    "UNet",
    "build_loss",
    "build_unet",
    "class_weights",
    "confusion_matrix",
    "count_flops",
    "count_parameters",
    "eval_transforms",
    "evaluate",
    "fit",
    "load_checkpoint",
    "load_splits",
    "make_loader",
    "model_from_checkpoint",
    "predict",
    "quick_mode",
    "read_metadata",
    "save_checkpoint",
    "scan",
    "train_transforms",
]
