"""Training images per second in batches of 8 and of 16, for the U-Nets the recipe picks.

    .venv/bin/python benchmarks/batch_step.py [--rounds 6] [--decoder-convs 2,1] [--batches 8,16]

For the course U-Net with 4 and with 2 classes and the wide one with 9 (deep supervision on,
CE+Dice, 96x96 random crops, as `python -m segtutor train` trains them), in batches of 8 and
of 16: one training step under each of four settings (float32 or bfloat16 autocast, contiguous
or channels-last, the machine's threads), timed by `segtutor.tuning.time_steps` (the settings
take turns, the fastest of `--rounds` steps counts). Prints one line per model, batch and
setting: seconds per step and images per second. `--decoder-convs 2,1` times each U-Net with
the paper's decoder and with one convolution per level (`UNet(decoder_convs=1)`), in turns.
docs/benchmarks.md ("Batches of 16 under a budget", "One convolution per decoder level")
quotes it.
"""

from __future__ import annotations

import argparse

import torch

from segtutor.losses import DeepSupervisionLoss, build_loss
from segtutor.model import build_unet
from segtutor.tuning import SpeedSettings, describe_settings, time_steps

__all__ = ["main"]

MODELS = [("course", 4), ("course", 2), ("wide", 9)]


def main() -> None:
    """Time every model, batch size and setting; print a line each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--decoder-convs", default="2", help="comma-separated, e.g. 2,1")
    parser.add_argument("--batches", default="8,16", help="comma-separated batch sizes")
    args = parser.parse_args()
    decoders = [int(n) for n in args.decoder_convs.split(",")]
    threads = torch.get_num_threads()
    settings = [
        SpeedSettings(None, True, threads),
        SpeedSettings(None, False, threads),
        SpeedSettings(torch.bfloat16, False, threads),
        SpeedSettings(torch.bfloat16, True, threads),
    ]
    for preset, num_classes in MODELS:
        loss_fn = DeepSupervisionLoss(build_loss("ce+dice", num_classes))
        for batch in (int(n) for n in args.batches.split(",")):
            generator = torch.Generator().manual_seed(0)
            images = torch.randn((batch, 3, 96, 96), generator=generator)
            masks = torch.randint(0, num_classes, (batch, 96, 96), generator=generator)
            for convs in decoders:
                torch.manual_seed(0)
                model = build_unet(preset, num_classes, deep_supervision=True, decoder_convs=convs)
                seconds = time_steps(model, loss_fn, images, masks, settings, rounds=args.rounds)
                for setting, s in zip(settings, seconds, strict=True):
                    print(
                        f"{preset:6} {num_classes} classes, batch {batch:2}, decoder {convs} conv, "
                        f"{describe_settings(setting):32} {s:.4f} s/step {batch / s:6.1f} images/s",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
