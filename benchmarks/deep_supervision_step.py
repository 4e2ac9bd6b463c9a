"""Seconds per training step with and without deep supervision, and how the heads are scored.

    .venv/bin/python benchmarks/deep_supervision_step.py [--classes 4] [--threads 1] [--steps 12]

One step is forward, loss, backward of the course U-Net on a batch of 8 random 96x96 crops,
channels-last, float32. Three ways, timed in turns so that a busy machine slows them alike:
no deep supervision; the heads' coarse logits upsampled to full size and scored there (what
segtutor did before); the heads scored at their own size against masks shrunk to it
(`segtutor.losses.DeepSupervisionLoss` now). Prints the fastest four steps of each (like
`timeit`: other programs can only make a step slower). docs/benchmarks.md quotes it.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from segtutor.losses import DeepSupervisionLoss, build_loss
from segtutor.model import build_unet

__all__ = ["main"]


def full_size_loss(loss):
    """The old way: every coarse output upsampled to the masks' size, then scored."""

    def score(outputs, masks):
        logits, aux = outputs
        total = loss(logits, masks)
        for coarse in aux:
            up = F.interpolate(coarse, size=masks.shape[-2:], mode="bilinear")
            total = total + 0.5 * loss(up, masks)
        return total

    return score


def main() -> None:
    """Parse the options, time the three ways in turns, print each one's fastest steps."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = torch.randn(8, 3, 96, 96).contiguous(memory_format=torch.channels_last)
    masks = torch.randint(0, args.classes, (8, 96, 96))
    loss = build_loss("ce+dice", args.classes)

    def model(deep):
        net = build_unet("course", args.classes, deep_supervision=deep)
        return net.to(memory_format=torch.channels_last).train()

    ways = {
        "none": (model(False), loss),
        "heads scored at full size (before)": (model(True), full_size_loss(loss)),
        "heads scored at their own size (now)": (model(True), DeepSupervisionLoss(loss)),
    }
    seconds = {name: [] for name in ways}
    for _ in range(args.steps):
        for name, (net, loss_fn) in ways.items():
            start = time.perf_counter()
            value = loss_fn(net(images), masks)
            net.zero_grad()
            value.backward()
            seconds[name].append(time.perf_counter() - start)
    for name, times in seconds.items():
        fastest = sorted(times)[:4]
        print(f"{name:<38} s/step {fastest[0]:.3f}-{fastest[-1]:.3f}")


if __name__ == "__main__":
    main()
