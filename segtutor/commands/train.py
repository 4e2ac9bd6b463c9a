"""Train a U-Net (or a relative, --model) on a folder of images and masks, and write a run folder.

With no arguments it trains the course's small U-Net on the bundled multi-class sample set;
`--model` picks another architecture, `--pretrained imagenet` or `--init-from CKPT` its start. Point
`--data` at your own folder (`DIR/images` + `DIR/masks`, or `DIR/train/...` + `DIR/val/...`).
The run folder gets `best.pt` (the checkpoint with the best validation mIoU), `last.pt` (the
latest epoch, to continue an interrupted run with `--resume`), `metrics.json`,
`history.json`, `curves.png` (loss and mIoU per epoch), `predictions.png` and `confusion.png`.

The defaults come from `segtutor.recipe` (this file only names them as options and prints);
notebook 04 trains the same run with `prepare`. Introduced in `04_training.ipynb`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import torch

from segtutor.architectures import MODELS
from segtutor.commands.common import (
    add_data_arguments,
    count,
    fraction,
    non_negative_float,
    positive_float,
    positive_int,
    scale_or_auto,
)
from segtutor.distributed import broadcast_from_main, is_main_process, process_group
from segtutor.inference import predict
from segtutor.jsonio import write_json
from segtutor.metrics import ConfusionMatrix
from segtutor.model import PRESETS
from segtutor.recipe import DECODER_CONVS, RecipeOptions, Run, default_epochs, prepare
from segtutor.runtime import choose_device
from segtutor.train import History, evaluate, fit

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `train` arguments to `parser`, in groups. Introduced in `04_training.ipynb`."""
    default = RecipeOptions()  # the recipe chooses the defaults; the options only name them
    _run_arguments(parser.add_argument_group("data and run"), default)
    _model_arguments(parser.add_argument_group("model and input"), default)
    _transfer_arguments(parser.add_argument_group("transfer learning"), default)
    _optimisation_arguments(parser.add_argument_group("optimisation"), default)
    _machine_arguments(parser.add_argument_group("machine"), default)


def _run_arguments(group, default: RecipeOptions) -> None:
    """Which data, how long, where the run folder goes, which seed."""
    group.add_argument(
        "--data",
        type=Path,
        default=None,
        help="dataset folder (default: the bundled data_samples/scenes)",
    )
    add_data_arguments(group)
    length = group.add_mutually_exclusive_group()
    length.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help=f"passes over the training set (default: {default_epochs()})",
    )
    length.add_argument(
        "--time-budget",
        type=positive_float,
        default=None,
        metavar="S",
        help="train for S seconds of wall-clock time instead (validation included)",
    )
    group.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<time>)")
    group.add_argument(
        "--seed", type=int, default=default.seed, help="same seed, same numbers (on a CPU)"
    )
    group.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="CKPT",
        help="continue training from a checkpoint written by this command: "
        "RUN/last.pt loses at most one epoch (RUN/best.pt redoes the epochs "
        "after the best one); its --epochs or --time-budget carry over unless given; pass "
        "the same --batch-size, --freeze-encoder and --encoder-lr-factor; the model comes "
        "from the checkpoint",
    )


def _model_arguments(group, default: RecipeOptions) -> None:
    """Which model and what it sees: its size, the input size and mode."""
    group.add_argument(
        "--model",
        choices=list(MODELS),
        default=default.model,
        help="architecture: the course's U-Net, or a relative (08_relatives.ipynb): "
        + "; ".join(f"{name}: {text}" for name, text in MODELS.items()),
    )
    group.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=default.preset,
        help="U-Net size (--model unet): 'course' is fast on a CPU, 'full' is the paper's; "
        "default: 'course', or 'wide' for more than 8 classes",
    )
    group.add_argument(
        "--decoder-convs",
        type=int,
        choices=[1, 2],
        default=default.decoder_convs,
        help="3x3 convolutions per level of the U-Net's decoder (--model unet): 2 as in the "
        f"paper, or 1, about a fifth faster per step (default: {DECODER_CONVS})",
    )
    group.add_argument(
        "--size",
        type=positive_int,
        default=default.input_size,
        help="training input size in pixels: square crops at native resolution, "
        "or whole images resized to it (see --input-mode)",
    )
    group.add_argument(
        "--input-mode",
        choices=["auto", "resize", "crop"],
        default="auto",
        help="train on native-resolution crops and predict whole images, or "
        "resize whole images to --size (auto: crop, unless the images are "
        "smaller than --size)",
    )
    group.add_argument(
        "--scale",
        type=scale_or_auto,
        default="auto",
        help="resize every image by this factor (0 < F <= 1) before cropping, validation "
        "and prediction (auto: from the masks, so that large photos shrink until a crop "
        "holds a whole object and small objects keep their pixels; see segtutor/sizing.py)",
    )
    group.add_argument(
        "--progressive-scale",
        type=scale_or_auto,
        default="auto",
        help="train the first half of the run on batches shrunk by this factor (0 < F <= 1; "
        "1: off), cheaper steps while the model learns the coarse shapes (auto: 2/3 under "
        '--time-budget, 1 otherwise; see docs/benchmarks.md, "Progressive resizing")',
    )
    group.add_argument(
        "--batch-augment",
        action=argparse.BooleanOptionalAction,
        default=default.batch_augment,
        help="rotate and colour-jitter every training batch, on top of each image's random "
        "crop and flips (default: on for --epochs, off under --time-budget, where the few "
        'passes learn more without; see docs/benchmarks.md, "Crops and flips only under a '
        'budget")',
    )
    group.add_argument(
        "--deep-supervision",
        action=argparse.BooleanOptionalAction,
        default=default.deep_supervision,
        help="also train the decoder's coarser levels to predict the classes "
        "(a 1x1 head each, unused at prediction), which teaches shape "
        "before colour (docs/benchmarks.md); --no-deep-supervision for the "
        "plain U-Net",
    )


def _transfer_arguments(group, default: RecipeOptions) -> None:
    """Where the starting weights come from, and how gently the encoder is trained."""
    start = group.add_mutually_exclusive_group()
    start.add_argument(
        "--pretrained",
        choices=["imagenet"],
        default=default.pretrained,
        help="start the backbone from torchvision's ImageNet weights (downloaded once into "
        "$TORCH_HOME/hub/checkpoints, default ~/.cache/torch; offline, the error says which "
        "file to put where); not for --model unet",
    )
    start.add_argument(
        "--init-from",
        type=Path,
        default=default.init_from,
        metavar="CKPT",
        help="start from one of our checkpoints (its architecture, every weight that fits; a "
        "new head when the class count differs); training itself starts afresh",
    )
    group.add_argument(
        "--freeze-encoder",
        type=count,
        default=default.freeze_encoder_epochs,
        metavar="EPOCHS",
        help="train the decoder alone for the first EPOCHS epochs, the encoder frozen",
    )
    group.add_argument(
        "--encoder-lr-factor",
        type=positive_float,
        default=default.encoder_lr_factor,
        metavar="F",
        help="the encoder learns at lr * F (e.g. 0.1 for pretrained weights)",
    )


def _optimisation_arguments(group, default: RecipeOptions) -> None:
    """How it learns: batch, learning rate, loss, class weights, validation share."""
    group.add_argument(
        "--batch-size",
        type=positive_int,
        default=default.batch_size,
        help="images per step (default: 8, or 16 under --time-budget, where more images per "
        "second count more than more steps)",
    )
    group.add_argument("--lr", type=positive_float, default=None, help="peak learning rate")
    group.add_argument("--loss", choices=["ce", "dice", "ce+dice"], default=default.loss)
    group.add_argument(
        "--class-weights",
        choices=["none", "sqrt-median", "median", "inverse"],
        default=default.class_weights,
        help="weight cross-entropy by class frequency, so that rare classes are "
        "learned (default: the square root of median-frequency weights; "
        "without weights a rare class can be missed entirely, full "
        "'median' weights over-predict rare classes)",
    )
    group.add_argument(
        "--prior-adjustment",
        type=non_negative_float,
        default=default.prior_adjustment,
        metavar="TAU",
        help="train the cross-entropy on the logits plus TAU * log(class weight), so the "
        "trained model keeps no bias toward the up-weighted classes (default: 1, the whole "
        "bias; 0: off)",
    )
    group.add_argument(
        "--val-fraction",
        type=fraction,
        default=default.val_fraction,
        help="validation share when the folder has no train/ and val/ split",
    )


def _machine_arguments(group, default: RecipeOptions) -> None:
    """Where and how it runs: workers, device, progress, compile, torchrun."""
    group.add_argument(
        "--workers",
        type=count,
        default=default.num_workers,
        help="DataLoader worker processes (0: load in the main process)",
    )
    group.add_argument("--device", default=default.device, help="auto, cpu, cuda, cuda:1, mps")
    group.add_argument("--quiet", action="store_true", help="no progress bars")
    group.add_argument(
        "--compile",
        action="store_true",
        help="train through torch.compile (a long start-up on a CPU; pays off "
        "for long runs or large models)",
    )
    group.add_argument(
        "--sync-batchnorm",
        action="store_true",
        help="under torchrun on GPUs: BatchNorm statistics over all processes' "
        "images (SyncBatchNorm), for small per-process batches",
    )


def run(args: argparse.Namespace) -> int:
    """Train; under `torchrun`, as one of several processes (see segtutor.distributed).

    Introduced in `04_training.ipynb`.
    """
    if args.sync_batchnorm and choose_device(args.device).type != "cuda":
        print(
            "error: --sync-batchnorm needs GPUs (PyTorch's SyncBatchNorm runs on CUDA only); "
            "leave it out on CPUs, where the processes share rank 0's BatchNorm statistics",
            file=sys.stderr,
        )
        return 2
    problem = _model_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    with process_group(), _only_rank_0_prints():
        return _train(args)


def _model_problem(args: argparse.Namespace) -> str | None:
    """What cannot go together in the model options (before any data is read), or None."""
    if args.model != "unet" and args.preset is not None:
        return f"--preset sizes the course's U-Net; --model {args.model} has one size"
    if args.model != "unet" and args.decoder_convs is not None:
        return (
            f"--decoder-convs shapes the course's U-Net; --model {args.model} has its own decoder"
        )
    if args.model == "unet" and args.pretrained:
        return "the course's U-Net has no pretrained weights: add e.g. --model unet-resnet18"
    return None


def _train(args: argparse.Namespace) -> int:
    """`prepare` the run from the options, `fit` it, evaluate the best weights, write the folder."""
    # Rank 0's folder name in every process: under torchrun they may start in different seconds.
    out = broadcast_from_main(args.out or Path("runs") / time.strftime("train-%Y%m%d-%H%M%S"))
    run = prepare(
        args.data,
        resume_from=args.resume,
        input_size=args.size,
        input_mode=None if args.input_mode == "auto" else args.input_mode,
        working_scale=None if args.scale == "auto" else args.scale,
        progressive_scale=None if args.progressive_scale == "auto" else args.progressive_scale,
        batch_augment=args.batch_augment,
        batch_size=args.batch_size,
        class_weights=None if args.class_weights == "none" else args.class_weights,
        prior_adjustment=args.prior_adjustment,
        loss=args.loss,
        model=args.model,
        preset=args.preset,
        decoder_convs=args.decoder_convs,
        deep_supervision=args.deep_supervision,
        pretrained=args.pretrained,
        init_from=args.init_from,
        freeze_encoder_epochs=args.freeze_encoder,
        encoder_lr_factor=args.encoder_lr_factor,
        num_epochs=args.epochs,
        time_budget_s=args.time_budget,
        lr=args.lr,
        seed=args.seed,
        val_fraction=args.val_fraction,
        num_classes=args.num_classes,
        binary_255=args.binary_255,
        layout=args.format,
        cache=not args.no_cache,
        num_workers=args.workers,
        device=args.device,
        run_dir=out,
        progress=not args.quiet,
        compile=args.compile,
        sync_batchnorm=args.sync_batchnorm,
    )
    if is_main_process():  # rank 0 alone writes the run folder (fit: the checkpoint too)
        out.mkdir(parents=True, exist_ok=True)
    print(run.describe())
    history = fit(
        run.model, run.train_loader, run.val_loader, run.config, resume_from=run.resume_from
    )

    cm = evaluate(run.model, run.val_loader, run.num_classes, ignore_index=run.config.ignore_index)
    if not is_main_process():
        return 0  # every process evaluated its share (summed in cm); rank 0 writes the files
    names = run.class_names
    print(
        f"\nbest epoch {history.best_epoch} of {len(history)} ({history.stop_reason}; validated "
        f"{history.validation}; trained in {history.speed}); all validation images at the "
        "masks' resolution:"
    )
    print(cm.table(names))
    write_json(out / "history.json", history.to_dict())
    write_json(
        out / "metrics.json",
        {
            "data": str(run.data),
            "best_epoch": history.best_epoch,
            "epochs_run": len(history),
            "stop_reason": history.stop_reason,
            "train_seconds": sum(history.epoch_time_s),
            "working_scale": run.config.working_scale,
            "validation": history.validation,  # how it was done during training
            "speed": history.speed,  # precision, memory layout, threads
            **cm.to_dict(names),  # all validation images, the best weights
        },
    )
    _write_figures(out, run, history, cm)
    print(
        f"\nwrote {out}/: best.pt, last.pt, metrics.json, history.json, curves.png, "
        "predictions.png, confusion.png"
    )
    return 0


@contextlib.contextmanager
def _only_rank_0_prints():
    """Under torchrun every process runs the whole command: only rank 0 prints, or each line
    would show once per process. Warnings and errors (stderr) still come from every process."""
    if is_main_process():
        yield
        return
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def _write_figures(out: Path, run: Run, history: History, cm: ConfusionMatrix) -> None:
    """Save the curves, four validation predictions and the confusion matrix as PNG files.

    `savefig` then `close` works without a screen and leaves matplotlib's backend alone (a
    notebook calling this command keeps its inline figures).
    """
    from matplotlib import pyplot as plt

    from segtutor.viz import plot_confusion, plot_history, plot_predictions

    model, val_ds = run.model, run.val_ds
    model.to(choose_device(run.config.device))
    images, masks, preds = [], [], []
    for index in range(min(4, len(val_ds))):
        image, mask = val_ds[index]
        images.append(image)
        masks.append(mask)
        preds.append(predict(model, image, size=tuple(mask.shape)))
    figures = {
        "curves.png": plot_history(history),
        "predictions.png": plot_predictions(
            [
                torch.nn.functional.interpolate(i[None], size=m.shape, mode="bilinear")[0]
                for i, m in zip(images, masks, strict=True)
            ],
            masks,
            preds,
            class_names=run.class_names,
            palette=run.palette,
        ),
        "confusion.png": plot_confusion(cm, run.class_names),
    }
    for name, figure in figures.items():
        figure.savefig(out / name, bbox_inches="tight")
        plt.close(figure)
