"""Train a U-Net on a folder of images and masks, and write a run folder.

With no arguments it trains the course's small U-Net on the bundled multi-class sample set. Point
`--data` at your own folder (`DIR/images` + `DIR/masks`, or `DIR/train/...` + `DIR/val/...`).
The run folder gets `best.pt` (the checkpoint with the best validation mIoU), `last.pt` (the
latest epoch, to continue an interrupted run with `--resume`), `metrics.json`,
`history.json`, `curves.png` (loss and mIoU per epoch), `predictions.png` and `confusion.png`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from segtutor.commands.common import (
    add_data_arguments,
    choose_input_mode,
    image_sizes,
    resolve_data,
    val_loader_for,
    write_json,
)
from segtutor.data import load_splits
from segtutor.distributed import broadcast_from_main, is_main_process, process_group, world_size
from segtutor.losses import class_weights
from segtutor.model import PRESETS, build_unet, count_parameters
from segtutor.settings import quick_mode
from segtutor.train import (
    TrainConfig,
    choose_device,
    evaluate,
    fit,
    load_checkpoint,
    make_loader,
    model_from_checkpoint,
    predict,
    seed_everything,
)
from segtutor.transforms import train_transforms

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", type=Path, default=None,
        help="dataset folder (default: the bundled data_samples/scenes)",
    )
    add_data_arguments(parser)
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, default=None, help="passes over the training set")
    length.add_argument(
        "--time-budget", type=float, default=None, metavar="S",
        help="train for S seconds of wall-clock time instead (validation included)",
    )
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<time>)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same numbers (on a CPU)")
    parser.add_argument("--resume", type=Path, default=None, metavar="CKPT",
                        help="continue training from a checkpoint written by this command: "
                             "RUN/last.pt loses at most one epoch (RUN/best.pt redoes the epochs "
                             "after the best one); pass the same --epochs or --time-budget")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="course",
                        help="U-Net size: 'course' is fast on a CPU, 'full' is the paper's")
    parser.add_argument("--size", type=int, default=96,
                        help="training input size in pixels: square crops at native resolution, "
                             "or whole images resized to it (see --input-mode)")
    parser.add_argument("--input-mode", choices=["auto", "resize", "crop"], default="auto",
                        help="train on native-resolution crops and predict whole images, or "
                             "resize whole images to --size (auto: crop, unless the images are "
                             "smaller than --size)")
    parser.add_argument("--deep-supervision", action=argparse.BooleanOptionalAction, default=True,
                        help="also train the decoder's coarser levels to predict the classes "
                             "(a 1x1 head each, unused at prediction): on the bundled scenes it "
                             "taught shape before colour, val mIoU 0.907 instead of 0.866 in the "
                             "default 20 epochs; --no-deep-supervision for the plain U-Net")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="images per step (small batches: more steps per CPU second)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate")
    parser.add_argument("--loss", choices=["ce", "dice", "ce+dice"], default="ce+dice")
    parser.add_argument("--class-weights", choices=["none", "sqrt-median", "median", "inverse"],
                        default="sqrt-median",
                        help="weight cross-entropy by class frequency, so that rare classes are "
                             "learned (default: the square root of median-frequency weights; "
                             "with 'none' the bundled scenes' rings were missed entirely by one "
                             "seed in three, full 'median' weights over-predict rare classes)")
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="validation share when the folder has no train/ and val/ split")
    parser.add_argument("--workers", type=int, default=0,
                        help="DataLoader worker processes (0: load in the main process)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--compile", action="store_true",
                        help="train through torch.compile (about a minute of start-up on a CPU; "
                             "pays off for long runs or large models)")
    parser.add_argument("--sync-batchnorm", action="store_true",
                        help="under torchrun on GPUs: BatchNorm statistics over all processes' "
                             "images (SyncBatchNorm), for small per-process batches")


def run(args: argparse.Namespace) -> int:
    """Train; under `torchrun`, as one of several processes (see segtutor.distributed)."""
    if args.sync_batchnorm and choose_device(args.device).type != "cuda":
        print("error: --sync-batchnorm needs GPUs (PyTorch's SyncBatchNorm runs on CUDA only); "
              "leave it out on CPUs, where the processes share rank 0's BatchNorm statistics",
              file=sys.stderr)
        return 2
    with process_group(), _only_rank_0_prints():
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    data = resolve_data(args.data)
    resumed = load_checkpoint(args.resume) if args.resume else None
    train_ds, val_ds = load_splits(
        data,
        val_fraction=args.val_fraction,
        seed=args.seed,
        num_classes=args.num_classes,
        binary_255=args.binary_255,
        cache=not args.no_cache,
    )
    num_classes = train_ds.num_classes
    sizes = image_sizes(train_ds, val_ds)
    mode = args.input_mode if args.input_mode != "auto" else choose_input_mode(sizes, args.size)
    # "crop" keeps the native scale: random crops, no zoom (scale=None with a crop means crop).
    train_ds.transform = train_transforms(args.size, crop=mode == "crop")
    train_loader = make_loader(
        train_ds, args.batch_size, shuffle=True, seed=args.seed, num_workers=args.workers,
        drop_last=len(train_ds) > args.batch_size * world_size(),  # each process gets a share
    )
    val_loader = val_loader_for(val_ds, mode, args.size, args.batch_size, args.workers)

    if resumed is not None:
        model = model_from_checkpoint(resumed)
    else:
        seed_everything(args.seed)  # the initial weights: fit seeds only what happens inside it
        model = build_unet(args.preset, num_classes=num_classes,
                           deep_supervision=args.deep_supervision)
    weights = None
    if args.class_weights != "none":
        weights = class_weights(train_ds.pixel_counts, method=args.class_weights).tolist()

    # Rank 0's folder name in every process: under torchrun they may start in different seconds.
    out = broadcast_from_main(args.out or Path("runs") / time.strftime("train-%Y%m%d-%H%M%S"))
    if is_main_process():  # rank 0 alone writes the run folder (fit: the checkpoint too)
        out.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(
        num_classes=num_classes,
        loss=args.loss,
        class_weights=weights,
        checkpoint_path=str(out / "best.pt"),
        last_checkpoint_path=str(out / "last.pt"),
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
        input_size=args.size,
        input_mode=mode,
        sync_batchnorm=args.sync_batchnorm,
        compile=args.compile,
    )
    if args.lr is not None:
        config = replace(config, lr=args.lr)
    if args.time_budget is not None:
        config = replace(config, time_budget_s=args.time_budget, num_epochs=10_000)
    else:
        config = replace(config, num_epochs=args.epochs or default_epochs())

    device = choose_device(args.device)
    sizes_text = ", ".join(f"{w}x{h}" for h, w in sorted(sizes)[:4])
    sizes_text += f" and {len(sizes) - 4} more" if len(sizes) > 4 else ""
    print(
        f"data: {data} ({len(train_ds)} train / {len(val_ds)} val, {num_classes} classes, "
        f"images {sizes_text}; input mode '{mode}' at {args.size}px)\n"
        f"model: U-Net '{args.preset}', {count_parameters(model) / 1e6:.2f} M parameters, "
        f"on {device}; run folder: {out}"
    )
    history = fit(model, train_loader, val_loader, config, resume_from=resumed)

    cm = evaluate(model, val_loader, num_classes, ignore_index=config.ignore_index)
    if not is_main_process():
        return 0  # every process evaluated its share (summed in cm); rank 0 writes the files
    names = train_ds.class_names
    print(f"\nbest epoch {history.best_epoch} of {len(history)} ({history.stop_reason}); "
          f"validation at the masks' resolution:")
    print(cm.table(names))
    write_json(out / "history.json", history.to_dict())
    write_json(out / "metrics.json", {
        "data": str(data), "best_epoch": history.best_epoch, "epochs_run": len(history),
        "stop_reason": history.stop_reason, "train_seconds": sum(history.epoch_time_s),
        **cm.to_dict(names),
    })
    _write_figures(out, model, val_ds, history, cm, names, device)
    print(f"\nwrote {out}/: best.pt, last.pt, metrics.json, history.json, curves.png, predictions.png, "
          "confusion.png")
    return 0


def default_epochs() -> int:
    """Epochs when neither --epochs nor --time-budget is given (2 in quick mode, for tests)."""
    return 2 if quick_mode() else 20


@contextlib.contextmanager
def _only_rank_0_prints():
    """Under torchrun every process runs the whole command: only rank 0 prints, or each line
    would show once per process. Warnings and errors (stderr) still come from every process."""
    if is_main_process():
        yield
        return
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def _write_figures(out, model, val_ds, history, cm, class_names, device) -> None:
    import matplotlib

    matplotlib.use("Agg")  # a command line has no screen; the notebooks keep their inline backend
    from matplotlib import pyplot as plt

    from segtutor.viz import plot_confusion, plot_history, plot_predictions

    model.to(device)
    images, masks, preds = [], [], []
    for index in range(min(4, len(val_ds))):
        image, mask = val_ds[index]
        images.append(image)
        masks.append(mask)
        preds.append(predict(model, image, size=tuple(mask.shape)))
    figures = {
        "curves.png": plot_history(history),
        "predictions.png": plot_predictions(
            [torch.nn.functional.interpolate(i[None], size=m.shape, mode="bilinear")[0]
             for i, m in zip(images, masks, strict=True)],
            masks, preds, class_names=class_names, palette=val_ds.palette,
        ),
        "confusion.png": plot_confusion(cm, class_names),
    }
    for name, figure in figures.items():
        figure.savefig(out / name, bbox_inches="tight")
        plt.close(figure)
