"""How `segtutor.tuning` must time thread counts: the same steps timed three ways.

    .venv/bin/python benchmarks/thread_timing.py [--repeats 2]

For the course U-Net (4 classes, batches of 8) and the wide one (9 classes, batches of 16),
deep supervision and CE+Dice on 96x96 crops as `python -m segtutor train` trains them, the
fastest of three steps (`segtutor.tuning.time_steps`) under: the four precision/layout
candidates on the machine's threads; those four plus the same four on one thread, all eight
in one rotation (how `fastest_settings` timed them before 2026-12-03); and the fastest of the
four against itself on one thread, a pair (how it times them now). Prints one line per
model, way and repeat. docs/benchmarks.md ("Timing thread counts") quotes it.
"""

from __future__ import annotations

import argparse

import torch

from segtutor.losses import DeepSupervisionLoss, build_loss
from segtutor.model import build_unet
from segtutor.tuning import SpeedSettings, candidates, describe_settings, time_steps

__all__ = ["main"]

MODELS = [("course", 4, 8), ("wide", 9, 16)]


def main() -> None:
    """Time each model's steps the three ways; print a line each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    for preset, num_classes, batch in MODELS:
        torch.manual_seed(0)
        model = build_unet(preset, num_classes, deep_supervision=True, decoder_convs=1)
        loss_fn = DeepSupervisionLoss(build_loss("ce+dice", num_classes))
        generator = torch.Generator().manual_seed(0)
        images = torch.randn((batch, 3, 96, 96), generator=generator)
        masks = torch.randint(0, num_classes, (batch, 96, 96), generator=generator)
        four = candidates(torch.device("cpu"))
        one = [SpeedSettings(s.amp_dtype, s.channels_last, 1) for s in four]
        for repeat in range(args.repeats):
            times = time_steps(model, loss_fn, images, masks, four)
            best = four[min(range(len(four)), key=times.__getitem__)]
            pair = [best, SpeedSettings(best.amp_dtype, best.channels_last, 1)]
            ways = {
                "the four": (four, times),
                "all eight in one rotation": (four + one, None),
                "the fastest of the four, paired": (pair, None),
            }
            for way, (options, seconds) in ways.items():
                seconds = seconds or time_steps(model, loss_fn, images, masks, options)
                timed = ", ".join(
                    f"{describe_settings(o)} {s:.3f}" for o, s in zip(options, seconds, strict=True)
                )
                print(f"{preset} U-Net, batch {batch}, repeat {repeat}, {way}: {timed}", flush=True)


if __name__ == "__main__":
    main()
