"""The training recipe: a dataset folder and a few choices become a model, loaders and a config.

Introduced in `04_training.ipynb`.

This is the one place where segtutor's defaults are chosen from the data: native-resolution
crops or whole resized images (from the images' sizes), the working scale (from the labelled
regions' width), the U-Net's width (from the number of classes), class weights (from the
training masks' pixel counts), the batch size (from the time budget), the validation batch size
(1 when image sizes differ), the augmentation and progressive resizing (from the time budget),
and the number of epochs (fewer in quick mode).
`python -m segtutor train` is `prepare` plus `fit` plus printing, and the notebooks call
`prepare` too, so they train exactly what the command trains.

Example:
    >>> run = prepare("data_samples/scenes", num_epochs=12)
    >>> print(run.describe())
    >>> history = fit(run.model, run.train_loader, run.val_loader, run.config)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader

from segtutor.architectures import build_model, model_from_config
from segtutor.checkpoint import load_checkpoint, load_matching, model_from_checkpoint
from segtutor.data import SegmentationDataset, load_splits, make_loader
from segtutor.distributed import world_size
from segtutor.errors import CheckpointError, DataError, Problem
from segtutor.losses import RECOMMENDED_WEIGHTING, class_weights
from segtutor.model import PRESETS, count_parameters
from segtutor.runtime import choose_device, seed_everything
from segtutor.settings import quick_mode
from segtutor.sizing import region_width, sample_masks, working_scale
from segtutor.train import TrainConfig
from segtutor.transforms import BatchAugment, eval_transforms, scaled_size, train_transforms

__all__ = [
    "BUNDLED_DATA",
    "DECODER_CONVS",
    "RecipeOptions",
    "Run",
    "choose_batch_augment",
    "choose_batch_size",
    "choose_input_mode",
    "choose_preset",
    "choose_progressive_scale",
    "data_scale",
    "default_epochs",
    "image_sizes",
    "prepare",
    "resolve_data",
    "val_loader_for",
]

# 3x3 convolutions per level of the U-Net's decoder the recipe builds (RecipeOptions.decoder_convs).
# 1, half the paper's: about a fifth less time per training step, and more epochs in a budget;
# measured in docs/benchmarks.md, "One convolution per decoder level".
DECODER_CONVS = 1

# The samples made by `python -m segtutor make-samples`, committed beside the package.
BUNDLED_DATA = Path(__file__).resolve().parents[1] / "data_samples"


@dataclass
class RecipeOptions:
    """The choices `prepare` takes; every default is what `python -m segtutor train` uses.

    Introduced in `04_training.ipynb`.
    """

    # Training input size in pixels: the side of the square crops, or of the resized images.
    input_size: int = 96
    # Resize every image by this factor before cropping, validation and prediction; None: from
    # the labelled regions' width (`segtutor.sizing`: large photos shrink, microscopy stays).
    working_scale: float | None = None
    # "crop" (random crops at native resolution, whole images at validation), "resize" (whole
    # images resized to input_size), or None: crop, unless the images are smaller than that.
    input_mode: Literal["resize", "crop"] | None = None
    # Images per training step (per process under torchrun); None: `choose_batch_size` (16 under
    # a time budget, else 8).
    batch_size: int | None = None
    # Progressive resizing: the first half of training on batches shrunk by this factor
    # (TrainConfig.progressive_scale; 1: off); None: `choose_progressive_scale`.
    progressive_scale: float | None = None
    # Rotation and colour jitter of every training batch (`BatchAugment`), on top of each
    # image's random crop and flips; None: `choose_batch_augment` (on for a number of epochs,
    # off under a time budget).
    batch_augment: bool | None = None
    # Images per validation batch; None: batch_size. Mixed image sizes always get 1.
    val_batch_size: int | None = None
    # Cross-entropy class weights from the training masks' pixel counts: a method of
    # `segtutor.losses.class_weights` ("sqrt-median", "median", "inverse"), or None for none.
    class_weights: str | None = RECOMMENDED_WEIGHTING
    # With class weights: how much of their bias the cross-entropy takes off the trained
    # model's logits (TrainConfig.prior_adjustment; 0: none). 1, all of it: +0.028 mIoU on ccp9
    # at 120 s, nuclei unchanged, three seeds each; on the cross-entropy term alone (not Dice)
    # the bundled scenes gain 0.009 over the whole sum's offset, where that form had cost them
    # 0.009 (docs/benchmarks.md, "Class weights without their bias", "The offset on the
    # cross-entropy term alone").
    prior_adjustment: float = 1.0
    # "ce", "dice" or "ce+dice" (see TrainConfig.loss).
    loss: Literal["ce", "dice", "ce+dice"] = "ce+dice"
    # The architecture, a key of `segtutor.architectures.MODELS` (08_relatives.ipynb): "unet" is
    # the course's; the others are its relatives, several of them over a torchvision backbone.
    model: str = "unet"
    # U-Net size, a key of `segtutor.model.PRESETS`: "course" is fast on a CPU, "full" the paper's;
    # None: from the number of classes (`choose_preset`). Sizes "unet" only.
    preset: str | None = None
    # 3x3 convolutions per level of the U-Net's decoder (UNet(decoder_convs)): 2, the paper's,
    # or 1; None: `DECODER_CONVS`. Shapes "unet" only.
    decoder_convs: int | None = None
    # Also train the decoder's coarser levels to predict the classes (UNet(deep_supervision=True);
    # torchvision's auxiliary head for FCN and DeepLabV3; LR-ASPP has none).
    deep_supervision: bool = True
    # "imagenet": the backbone starts from torchvision's ImageNet weights (downloaded once into
    # torchvision's cache, see segtutor.pretrained); None: random weights, nothing downloaded.
    pretrained: Literal["imagenet"] | None = None
    # A checkpoint of ours to start from (transfer learning from another of our runs): its
    # architecture, and every weight whose name and shape fit, so a different class count gets
    # a new head. Unlike `resume_from`, training starts afresh (epochs, lr schedule, optimizer).
    init_from: str | Path | None = None
    # Epochs with the encoder frozen, and the encoder's lr factor (see TrainConfig).
    freeze_encoder_epochs: int = 0
    encoder_lr_factor: float = 1.0
    # Passes over the training set; None: `default_epochs()`, or no limit with a time budget.
    num_epochs: int | None = None
    # Wall-clock seconds for the whole fit; None: no budget.
    time_budget_s: float | None = None
    # Peak learning rate; None: TrainConfig's default.
    lr: float | None = None
    # One seed for the split, the shuffling, the initial weights and fit: same seed, same numbers.
    seed: int = 0
    # Validation share when the folder has no train/ + val/ split.
    val_fraction: float = 0.2
    # Classes, background included; None: from dataset.json or the masks.
    num_classes: int | None = None
    # Read 255 in masks as class 1 (0/255 binary masks) instead of "ignore".
    binary_255: bool = False
    # The dataset's layout, a name of `segtutor.layouts.layout_names()` ("folder", "voc", ...);
    # None: recognised from its folders.
    layout: str | None = None
    # Keep decoded images in memory, so that later epochs decode no file.
    cache: bool = True
    # Train on the first N training images only (quick runs); None: all of them.
    max_train_images: int | None = None
    # DataLoader worker processes (0: load in the main process).
    num_workers: int = 0
    # "auto", "cpu", "cuda", "cuda:1", "mps" (see choose_device).
    device: str = "auto"
    # The folder where fit writes best.pt and last.pt (create it before fit); None: nowhere.
    run_dir: str | Path | None = None
    # Progress bars and one line per epoch from fit.
    progress: bool = True
    # Train through torch.compile; under torchrun on GPUs, SyncBatchNorm (see TrainConfig).
    compile: bool = False
    sync_batchnorm: bool = False


@dataclass
class Run:
    """What `prepare` builds: pass `model`, the loaders and `config` to `fit`.

    Introduced in `04_training.ipynb`.

    `resume_from` is the checkpoint the model was restored from (give it to `fit` as well), or
    None for a fresh model. `image_sizes` holds the distinct `(height, width)` of all images.
    """

    data: Path
    options: RecipeOptions
    train_ds: SegmentationDataset
    val_ds: SegmentationDataset
    train_loader: DataLoader
    val_loader: DataLoader
    model: nn.Module
    config: TrainConfig
    input_mode: str
    image_sizes: set[tuple[int, int]] = field(repr=False)
    resume_from: dict[str, Any] | None = field(default=None, repr=False)
    # what `RecipeOptions.init_from` reused of its checkpoint, in words ("" without one)
    init_note: str = ""

    @property
    def num_classes(self) -> int:
        """Classes, background included (from dataset.json or the masks)."""
        return self.train_ds.num_classes

    @property
    def class_names(self) -> list[str]:
        """One name per class."""
        return self.train_ds.class_names

    @property
    def palette(self) -> list[tuple[int, int, int]] | None:
        """One `(r, g, b)` per class, or None: viewers use their default."""
        return self.val_ds.palette

    def describe(self) -> str:
        """Two lines: the data and the input mode chosen from it, then the model and device."""
        sizes = sorted(self.image_sizes)
        sizes_text = ", ".join(f"{w}x{h}" for h, w in sizes[:4])
        sizes_text += f" and {len(sizes) - 4} more" if len(sizes) > 4 else ""
        device = choose_device(self.config.device)
        run_dir = self.options.run_dir
        return (
            f"data: {self.data} ({len(self.train_ds)} train / {len(self.val_ds)} val, "
            f"{self.num_classes} classes, images {sizes_text}; input mode '{self.input_mode}' "
            f"at {self.options.input_size}px, working scale {self.config.working_scale:g}"
            f"{_progressive_text(self.config)}{_augment_text(self.train_loader)})\n"
            f"model: {_model_text(self.model, self.options)}, "
            f"{count_parameters(self.model) / 1e6:.2f} M parameters, on {device}"
            + (f"; run folder: {run_dir}" if run_dir is not None else "")
            + (f"\n{self.init_note}" if self.init_note else "")
        )


def prepare(
    data: str | Path | None = None,
    *,
    resume_from: str | Path | Mapping[str, Any] | None = None,
    **choices: Any,
) -> Run:
    """Turn a dataset folder and a few choices into a model, loaders and a `TrainConfig`.

    Introduced in `04_training.ipynb`.

    Args:
        data: the dataset folder (`images/` + `masks/`, or `train/` + `val/`); None: the bundled
            `data_samples/scenes`.
        resume_from: a checkpoint (path or dict) written by `fit`: its model replaces the fresh
            one, and `Run.resume_from` holds it for `fit(..., resume_from=run.resume_from)`.
        **choices: fields of `RecipeOptions`, e.g. `num_epochs=12`, `input_size=128`.

    Returns:
        A `Run`. Training batches are `(batch_size, 3, input_size, input_size)` images with
        `(batch_size, input_size, input_size)` masks; validation batches keep each mask at its
        own resolution, so that metrics are taken on the labels as they were drawn.

    Raises:
        DataError: the folder has problems (every one listed, each naming its file).
        TypeError: an unknown choice (a typo must not be silently ignored).
    """
    options = RecipeOptions(**choices)
    data = resolve_data(data)
    checkpoint = None
    if resume_from is not None:
        checkpoint = (
            resume_from if isinstance(resume_from, Mapping) else load_checkpoint(resume_from)
        )
        _length_from(checkpoint, options)
    if options.batch_size is None:
        options.batch_size = choose_batch_size(options.time_budget_s)
    train_ds, val_ds = load_splits(
        data,
        val_fraction=options.val_fraction,
        seed=options.seed,
        num_classes=options.num_classes,
        binary_255=options.binary_255,
        cache=options.cache,
        layout=options.layout,
    )
    if options.max_train_images is not None:
        train_ds = train_ds.subset(train_ds.stems[: options.max_train_images])
    sizes = image_sizes(train_ds, val_ds)
    scale = options.working_scale or data_scale(train_ds, sizes, options.input_size)
    scaled = {scaled_size(h, w, scale) for h, w in sizes}
    mode = options.input_mode or choose_input_mode(scaled, options.input_size)
    scale = scale if mode == "crop" else 1.0  # "resize" brings every image to one size anyway
    train_loader, val_loader = _loaders(train_ds, val_ds, mode, scale, options)

    init_note = ""
    if checkpoint is not None:
        model = model_from_checkpoint(checkpoint)
    elif options.init_from is not None:
        model, init_note = _model_from_run(options, train_ds.num_classes)
    else:
        if options.preset is None and options.model == "unet":
            options.preset = choose_preset(train_ds.num_classes)
        seed_everything(options.seed)  # the initial weights: fit seeds only what happens inside it
        model = build_model(
            options.model,
            train_ds.num_classes,
            preset=options.preset or "course",
            deep_supervision=options.deep_supervision,
            pretrained=options.pretrained,
            **_decoder_choice(options),
        )
    config = _config(train_ds, mode, options)
    config.working_scale = scale
    return Run(
        data,
        options,
        train_ds,
        val_ds,
        train_loader,
        val_loader,
        model,
        config,
        mode,
        sizes,
        dict(checkpoint) if checkpoint is not None else None,
        init_note,
    )


def _progressive_text(config: TrainConfig) -> str:
    """What `describe` says of progressive resizing: nothing when it is off."""
    if config.progressive_scale == 1.0:
        return ""
    return (
        f"; the first {config.progressive_share:.0%} of training at "
        f"{config.progressive_scale:.2g}x that size"
    )


def _augment_text(loader: DataLoader) -> str:
    """What `describe` says of the augmentation: nothing when batches are rotated and jittered."""
    augment = loader.collate_fn
    if not isinstance(augment, BatchAugment) or augment.rotation or augment.color_jitter:
        return ""
    return "; augmented by crops and flips only"


def _length_from(checkpoint: Mapping[str, Any], options: RecipeOptions) -> None:
    """A resumed run given neither epochs nor a budget continues with its checkpoint's: the same
    lr schedule, and the same default batch size (`choose_batch_size`)."""
    if options.num_epochs is None and options.time_budget_s is None:
        saved = checkpoint.get("config") or {}
        options.time_budget_s = saved.get("time_budget_s")
        options.num_epochs = saved.get("num_epochs")


def _model_from_run(options: RecipeOptions, num_classes: int) -> tuple[nn.Module, str]:
    """A fresh model of `options.init_from`'s architecture with every weight that fits copied."""
    if options.pretrained is not None:
        raise ValueError("init_from and pretrained both give the starting weights: choose one")
    checkpoint = load_checkpoint(options.init_from)
    saved = dict(checkpoint.get("model_config") or {})
    name = saved.get("name", "unet")
    if options.model not in ("unet", name):  # "unet": the default, the checkpoint decides
        raise CheckpointError(
            f"{options.init_from} holds a {name} model, not a {options.model}: start a "
            f"{options.model} from a checkpoint of one, or leave out the model choice"
        )
    saved.update(num_classes=num_classes, deep_supervision=options.deep_supervision)
    seed_everything(options.seed)  # the new head's weights
    model = model_from_config(saved)
    reused, fresh = load_matching(model, checkpoint["model_state"])
    note = (
        f"init from {options.init_from}: {len(reused)} of {len(reused) + len(fresh)} weight "
        f"tensors reused"
    )
    if fresh:
        note += f"; new: {', '.join(fresh[:4])}" + (
            f" and {len(fresh) - 4} more" if len(fresh) > 4 else ""
        )
    return model, note


def _decoder_choice(options: RecipeOptions) -> dict[str, int]:
    """`build_model`'s `decoder_convs` for the course's U-Net; nothing for its relatives."""
    if options.model != "unet":
        return {} if options.decoder_convs is None else {"decoder_convs": options.decoder_convs}
    return {"decoder_convs": options.decoder_convs or DECODER_CONVS}


def _model_text(model: nn.Module, options: RecipeOptions) -> str:
    """`U-Net 'course'` (the preset of the model's size), or the architecture's name, with how
    it was initialised."""
    name = getattr(model, "name", options.model)
    if name != "unet":
        return name + (" (ImageNet backbone)" if options.pretrained else "")
    size = dict(base_width=model.base_width, depth=model.depth, bilinear=model.bilinear)
    presets = [preset for preset, config in PRESETS.items() if config == size]
    text = f"U-Net '{presets[0]}'" if presets else f"U-Net (width {model.base_width})"
    return text + (", one conv per decoder level" if model.decoder_convs == 1 else "")


def _loaders(
    train_ds: SegmentationDataset,
    val_ds: SegmentationDataset,
    mode: str,
    scale: float,
    options: RecipeOptions,
) -> tuple[DataLoader, DataLoader]:
    """Random crops (or resized images) for training; whole images for validation."""
    train_ds.set_scale(scale)  # each file resized once, when first read, and cached so
    # "crop" keeps the working scale: random crops, no zoom.
    # Each image: a random crop (or resized crop) and flips, in [0, 1]. Each batch: rotation,
    # colour jitter and normalisation, done once for all its images (`BatchAugment`).
    train_ds.transform = train_transforms(
        options.input_size,
        crop=mode == "crop",
        rotation=0,
        color_jitter=0,
        mean=None,
        std=None,
    )
    batch_size = options.batch_size
    train_loader = make_loader(
        train_ds,
        batch_size,
        shuffle=True,
        seed=options.seed,
        num_workers=options.num_workers,
        drop_last=len(train_ds) > batch_size * world_size(),  # each process gets a share
        collate_fn=_batch_augment(options),
    )
    val_batch = options.val_batch_size or batch_size
    val_loader = val_loader_for(
        val_ds, mode, options.input_size, val_batch, options.num_workers, scale=scale
    )
    return train_loader, val_loader


def _batch_augment(options: RecipeOptions) -> BatchAugment:
    """The training loader's collate: normalisation, and rotation and colour jitter if chosen."""
    augment = options.batch_augment
    if augment is None:
        augment = choose_batch_augment(options.time_budget_s)
    return BatchAugment() if augment else BatchAugment(rotation=0, color_jitter=0)


def _config(train_ds: SegmentationDataset, mode: str, options: RecipeOptions) -> TrainConfig:
    weights = None
    if options.class_weights is not None:
        weights = class_weights(train_ds.pixel_counts, method=options.class_weights).tolist()
    run_dir = Path(options.run_dir) if options.run_dir is not None else None
    if options.time_budget_s is not None:
        num_epochs = options.num_epochs or 10_000  # the budget ends the run
    else:
        num_epochs = options.num_epochs or default_epochs()
    config = TrainConfig(
        num_epochs=num_epochs,
        num_classes=train_ds.num_classes,
        loss=options.loss,
        class_weights=weights,
        prior_adjustment=options.prior_adjustment if weights else 0.0,
        time_budget_s=options.time_budget_s,
        checkpoint_path=str(run_dir / "best.pt") if run_dir else None,
        last_checkpoint_path=str(run_dir / "last.pt") if run_dir else None,
        seed=options.seed,
        device=options.device,
        progress=options.progress,
        input_size=options.input_size,
        input_mode=mode,
        sync_batchnorm=options.sync_batchnorm,
        compile=options.compile,
        freeze_encoder_epochs=options.freeze_encoder_epochs,
        encoder_lr_factor=options.encoder_lr_factor,
    )
    if options.lr is not None:
        config.lr = options.lr
    if options.progressive_scale is not None:
        config.progressive_scale = options.progressive_scale
    else:
        config.progressive_scale = choose_progressive_scale(options.time_budget_s)
    return config


def choose_preset(num_classes: int) -> str:
    """The U-Net size for `num_classes` classes: "course", or "wide" for more classes than the
    course U-Net's last layer has channels (8).

    Introduced in `04_training.ipynb`.

    The 1x1 head turns the last layer's channels into one score per class; with 9 classes and 8
    channels it has fewer features than classes to tell apart. On ccp9 (9 classes) "wide" scored
    higher at 120 s and 300 s, on nuclei (2 classes) lower (docs/benchmarks.md, "Width for many
    classes"), so the width follows the number of classes.
    """
    return "course" if num_classes <= PRESETS["course"]["base_width"] else "wide"


def choose_batch_size(time_budget_s: float | None) -> int:
    """Images per training step: 16 under a time budget, 8 for a number of epochs.

    Introduced in `04_training.ipynb`.

    With a number of epochs the steps are what count: batches of 16 halve them, and 20 epochs
    of the bundled scenes ended at 0.871 mIoU instead of 0.900. Under a budget the seconds count:
    a batch of 16 usually trains more images per second (1.1-1.5x on the 2-core Xeon of
    docs/benchmarks.md, "Batches of 16 under a budget"), and with validation held to 5% it
    scored 0.379 on average over three ccp9 seeds at 120 s against 0.346; on nuclei and the
    bundled sets the differences were within their noise.
    """
    return 8 if time_budget_s is None else 16


def choose_progressive_scale(time_budget_s: float | None) -> float:
    """The factor the first half of training shrinks its batches by: 2/3 under a time budget,
    1 (off) for a number of epochs.

    Introduced in `04_training.ipynb`.

    A batch shrunk to 2/3 of each side (96-pixel crops seen at 64) took 0.58-0.69 of a full
    step's seconds on ccp9, so under a budget the first half of the time trains on more images while the model
    learns coarse shapes, and the second half at full size on what validation and prediction
    see. It scored higher on every seed of both real sets: ccp9 at 75 s 0.359 against 0.335
    (three seeds), nuclei at 120 s 0.913 against 0.904 (two); docs/benchmarks.md, "Progressive
    resizing". With a number of epochs the bundled scenes lost 0.014 with it, so it is off there.
    """
    return 1.0 if time_budget_s is None else 2 / 3


def choose_batch_augment(time_budget_s: float | None) -> bool:
    """Rotate and colour-jitter the training batches? Yes for a number of epochs, no under a
    time budget (each image's random crop and flips stay either way).

    Introduced in `04_training.ipynb`.

    Augmentation trades what a model learns per pass for what it keeps on new images. Under a
    budget the passes are few and learning fast is what counts: with crops and flips only, the
    budget's recipe at a fixed number of epochs (the same steps, so the machine's speed plays
    no part) scored higher on ccp9 at 10 epochs (0.431 against 0.413, every one of three
    seeds), level on nuclei at 15 (0.910 against 0.907) and on the bundled scenes at 24 epochs
    (0.900 against 0.892 on new images of the same kind, every seed); docs/benchmarks.md,
    "Crops and flips only under a budget". Where a budget buys hundreds of passes of a small
    set, augmentation pays: the bundled scenes at 300 s (259-304 passes) scored 0.003 lower on
    new images without it. The course's number-of-epochs default keeps the rotation and the
    jitter that notebook 04 teaches (`--batch-augment` turns them on under a budget too).
    """
    return time_budget_s is None


def default_epochs() -> int:
    """Epochs when neither a number of epochs nor a time budget is given (2 in quick mode).

    Introduced in `04_training.ipynb`.

    24: on the bundled scenes 20 epochs ended at 0.898 mIoU on average over ten seeds (0.884
    to 0.906; four reached 0.90), 24 at 0.910 over five (0.905 to 0.914, every one above
    0.90). Since batches are augmented whole (`BatchAugment`) and the loss and the optimizer
    step are cheaper, 24 epochs take less time than 20 did before (docs/benchmarks.md, "A
    cheaper step, and 24 epochs").
    """
    return 2 if quick_mode() else 24


def resolve_data(path: str | Path | None, default: str = "scenes") -> Path:
    """The dataset folder to work on: `path`, or the bundled sample set `default`.

    Introduced in `04_training.ipynb`.
    """
    if path is None:
        path = BUNDLED_DATA / default
        if not path.is_dir():
            raise DataError(
                Problem(
                    path,
                    "the bundled sample data is not here (segtutor was installed without it?)",
                    "pass --data DIR, or run `python -m segtutor make-samples` in a checkout",
                )
            )
    return Path(path)


def image_sizes(*datasets: SegmentationDataset) -> set[tuple[int, int]]:
    """The distinct `(height, width)` of the images in `datasets`, read from file headers.

    Introduced in `04_training.ipynb`.
    """
    sizes: set[tuple[int, int]] = set()
    for dataset in datasets:
        report = dataset.report  # a subset shares its pool's report: look up its own stems
        by_stem = dict(zip(report.stems, report.image_sizes, strict=True))
        sizes.update((h, w) for w, h in (by_stem[s] for s in dataset.stems))
    return sizes


def data_scale(
    train_ds: SegmentationDataset, sizes: set[tuple[int, int]], input_size: int
) -> float:
    """The working scale `segtutor.sizing.working_scale` gives for these training masks.

    Introduced in `04_training.ipynb`. `sizes` are the images' `(height, width)`; the region
    width is measured on up to 200 training masks spread over the set.
    """
    width = region_width(sample_masks(train_ds.read_mask, len(train_ds)))
    return working_scale(width, min(min(size) for size in sizes), input_size)


def choose_input_mode(sizes: set[tuple[int, int]], size: int) -> str:
    """`"crop"` (native-resolution crops of `size`) unless some image is smaller than that.

    Introduced in `04_training.ipynb`.

    Crops keep the objects' scale: the model trains on windows of the images as they are and
    predicts whole images at validation, and small crops mean more steps per CPU second
    (docs/benchmarks.md). An image smaller than `size` on a side would give crops that are
    mostly padding: then every image is resized to `size` instead (`"resize"`).
    """
    smallest = min(min(s) for s in sizes)
    return "crop" if smallest >= size else "resize"


class _ImageOnly:
    """Apply `transform` to the image and keep the mask at its own resolution (for metrics)."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image, mask):
        image, _ = self.transform(image, mask)
        return image, mask.as_subclass(torch.Tensor)


def val_loader_for(
    dataset: SegmentationDataset,
    mode: str,
    size: int,
    batch_size: int,
    num_workers: int = 0,
    *,
    scale: float = 1.0,
) -> DataLoader:
    """A validation loader that scores predictions at the masks' own resolution.

    Introduced in `04_training.ipynb`.

    In "resize" mode images are resized to `size` (as in training) and the logits resized back
    to each mask's size by `segtutor.train.evaluate`; in "crop" mode whole images go through the
    fully convolutional model at the working scale (`scale`; the masks stay at their own size).
    Mixed sizes cannot share a batch: batch size 1. Sets `dataset.transform` and its scale.
    """
    dataset.set_scale(scale if mode == "crop" else 1.0, masks=False)
    dataset.transform = _ImageOnly(eval_transforms(size if mode == "resize" else None))
    same_size = len(image_sizes(dataset)) == 1
    return make_loader(dataset, batch_size if same_size else 1, num_workers=num_workers)
