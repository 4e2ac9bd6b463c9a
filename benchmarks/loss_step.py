"""The loss, the optimizer and the augmentation of a training step, before and after making them
cheaper.

    python benchmarks/loss_step.py              # best of 5 rounds of 20 calls each

Three measurements, each in turns within one process:

- The recipe's loss (CE + Dice, class weights with the prior adjustment, deep supervision's
  three coarse heads), forward and backward, on bfloat16 channels-last logits such as the
  recipe's U-Net hands it under autocast: as the logits come (`dense_float` replaced by doing
  nothing), and with `segtutor.losses.dense_float`'s one float32 `(N, C, H, W)` copy first.
  Three batch shapes: the bundled scenes (8 x 4 classes), ccp9 (16 x 9), nuclei (16 x 2).
- One AdamW step over the `course` and `wide` U-Nets' parameters: torch's default
  (`foreach`) against `fused=True`.
- One training batch of eight 96-pixel crops of 128x128 images, as the recipe augments them:
  `train_transforms` image by image (crop, flip, rotation, colour jitter, normalisation) and
  the default collate, against the crop and flip per image and `BatchAugment` on the batch.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import default_collate

import segtutor.losses
from segtutor.data import one_thread
from segtutor.losses import CEDiceLoss, DeepSupervisionLoss
from segtutor.model import build_unet
from segtutor.transforms import BatchAugment, train_transforms

SHAPES = {"scenes": (8, 4, 96), "ccp9": (16, 9, 96), "nuclei": (16, 2, 96)}


def best_ms(function, rounds: int, calls: int = 20) -> float:
    """Fastest of `rounds` rounds: milliseconds per call of `function`."""
    function()  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        times.append((time.perf_counter() - start) / calls * 1e3)
    return min(times)


def loss_ms(batch: int, classes: int, size: int, rounds: int) -> dict[str, float]:
    """Loss forward + backward, ms, without and with `dense_float`, measured in turns."""
    generator = torch.Generator().manual_seed(0)

    def logits(side: int) -> torch.Tensor:
        x = torch.randn(batch, classes, side, side, generator=generator).to(torch.bfloat16)
        return x.contiguous(memory_format=torch.channels_last).requires_grad_()

    main, aux = logits(size), [logits(size // 8), logits(size // 4), logits(size // 2)]
    masks = torch.randint(0, classes, (batch, size, size), generator=generator)
    weights = torch.linspace(0.5, 2.0, classes).tolist()
    loss = DeepSupervisionLoss(CEDiceLoss(class_weights=weights, prior_adjustment=1.0))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            value = loss((main, aux), masks)
        value.backward()

    dense_float = segtutor.losses.dense_float
    results: dict[str, list[float]] = {"as they come": [], "dense_float": []}
    for _ in range(rounds):  # in turns, so that both see the same machine
        segtutor.losses.dense_float = lambda x: x
        results["as they come"].append(best_ms(step, 1))
        segtutor.losses.dense_float = dense_float
        results["dense_float"].append(best_ms(step, 1))
    return {name: min(times) for name, times in results.items()}


def optimizer_ms(preset: str, rounds: int) -> dict[str, float]:
    """One AdamW step over `preset`'s parameters, ms: foreach (default) and fused."""
    parameters = list(build_unet(preset, num_classes=9).parameters())
    for parameter in parameters:
        parameter.grad = torch.randn_like(parameter)
    optimizers = {
        "foreach": torch.optim.AdamW(parameters, lr=1e-3),
        "fused": torch.optim.AdamW(parameters, lr=1e-3, fused=True),
    }
    results: dict[str, list[float]] = {name: [] for name in optimizers}
    for _ in range(rounds):
        for name, optimizer in optimizers.items():
            results[name].append(best_ms(optimizer.step, 1))
    return {name: min(times) for name, times in results.items()}


def augmentation_ms(rounds: int) -> dict[str, float]:
    """One batch of eight crops augmented, ms: image by image, and with `BatchAugment`."""
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, 128, 128), dtype=torch.uint8, generator=generator)
    mask = torch.randint(0, 4, (128, 128), generator=generator)
    per_image = train_transforms(96, crop=True)
    cheap = train_transforms(96, crop=True, rotation=0, color_jitter=0, mean=None, std=None)
    augment = BatchAugment()

    def image_by_image() -> None:
        with one_thread():  # as the dataset runs its transform
            samples = [per_image(image, mask) for _ in range(8)]
        default_collate(samples)

    def by_batch() -> None:
        with one_thread():
            samples = [cheap(image, mask) for _ in range(8)]
        augment(samples)

    results: dict[str, list[float]] = {"image by image": [], "BatchAugment": []}
    for _ in range(rounds):
        results["image by image"].append(best_ms(image_by_image, 1))
        results["BatchAugment"].append(best_ms(by_batch, 1))
    return {name: min(times) for name, times in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| batch (N x classes, 96 px) | loss as the logits come | with dense_float | change |")
    print("|---|---:|---:|---:|")
    for name, (batch, classes, size) in SHAPES.items():
        ms = loss_ms(batch, classes, size, args.rounds)
        plain, dense = ms["as they come"], ms["dense_float"]
        print(f"| {name} ({batch} x {classes}) | {plain:.2f} ms | {dense:.2f} ms "
              f"| {dense / plain - 1:+.0%} |")  # fmt: skip
    print("\n| AdamW step | foreach | fused | change |")
    print("|---|---:|---:|---:|")
    for preset in ("course", "wide"):
        ms = optimizer_ms(preset, args.rounds)
        print(f"| {preset} U-Net | {ms['foreach']:.2f} ms | {ms['fused']:.2f} ms "
              f"| {ms['fused'] / ms['foreach'] - 1:+.0%} |")  # fmt: skip
    ms = augmentation_ms(args.rounds)
    print("\n| a batch of 8 crops, 96 px | image by image | BatchAugment | change |")
    print("|---|---:|---:|---:|")
    print(f"| augmented | {ms['image by image']:.2f} ms | {ms['BatchAugment']:.2f} ms "
          f"| {ms['BatchAugment'] / ms['image by image'] - 1:+.0%} |")  # fmt: skip


if __name__ == "__main__":
    main()
