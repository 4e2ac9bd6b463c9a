"""One process of a 2-process CPU run under torchrun, for tests/test_distributed.py (not a test).

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/distributed_worker.py \
        DATA OUT

Starting processes is the slow part (each imports torch), so one launch runs every scenario in
turn, each writing what each rank saw to `OUT/<scenario>/rank<r>.pt` for the test to compare:

- "fit": trains a tiny U-Net with `fit`, then takes the val confusion matrix three ways: the
  all-reduced `evaluate`, this process's own share with no reduction, and the whole val set in
  this process alone.
- "time_budget" and "callback": a reason to stop that rank 1 alone sees (its clock runs 3 times
  faster; its callback asks to stop at step 3). Both processes must stop at the same batch;
  otherwise one would wait forever in the next collective (the test's timeout catches that).
- "command": `python -m segtutor train ...` in every process, writing the run folder
  `OUT/command`; rank 0's printout goes to the launch's stdout.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import DistributedSampler

import segtutor.fit_state
from segtutor.cli import main as segtutor_main
from segtutor.data import load_splits, make_loader
from segtutor.distributed import (
    is_distributed,
    process_group,
    rank,
    shard_loader,
    world_size,
)
from segtutor.inference import predict
from segtutor.metrics import ConfusionMatrix
from segtutor.model import build_unet
from segtutor.runtime import seed_everything
from segtutor.train import Callback, TrainConfig, evaluate, fit

SCENARIOS = ("fit", "time_budget", "callback")


def confusion_over(model, loader, num_classes: int) -> torch.Tensor:
    """The confusion matrix of `model` over `loader` in this process only (no all-reduce)."""
    cm = ConfusionMatrix(num_classes)
    for images, masks in loader:
        cm.update(predict(model, images), masks)
    return cm.matrix


class StopOnRank1(Callback):
    def on_batch_end(self, epoch, step, loss):
        return rank() == 1 and step == 3


def run_scenario(scenario: str, data: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    writes = []  # the checkpoint paths this process wrote: rank 0 alone may write
    save = (
        segtutor.fit_state.save_checkpoint
    )  # the name fit calls (imported from segtutor.checkpoint)
    segtutor.fit_state.save_checkpoint = lambda path, **f: (
        writes.append(str(path)) or save(path, **f)
    )
    real_clock = time.monotonic
    try:
        train_ds, val_ds = load_splits(data)
        num_classes = train_ds.num_classes
        train_loader = make_loader(train_ds, batch_size=4, shuffle=True, seed=0)  # 2 per epoch
        val_loader = make_loader(val_ds, batch_size=2)  # 5 images: 3 batches, shares of 2 and 1
        assert isinstance(train_loader.sampler, DistributedSampler)
        seed_everything(0)
        model = build_unet("tiny", num_classes=num_classes)
        config = TrainConfig(
            num_epochs=16,
            lr=2e-2,
            num_classes=num_classes,
            device="cpu",
            progress=False,
            checkpoint_path=str(out / "best.pt"),
        )
        callbacks = []
        if scenario == "time_budget":
            config = replace(config, num_epochs=1000, time_budget_s=2.0)
            if rank() == 1:  # rank 1's clock runs 3x faster: alone, it would stop after ~0.7 s
                t0 = real_clock()
                time.monotonic = lambda: t0 + 3 * (real_clock() - t0)
        elif scenario == "callback":
            callbacks = [StopOnRank1()]

        history = fit(model, train_loader, val_loader, config, callbacks=callbacks)
        time.monotonic = real_clock
        result = {
            "history": history.to_dict(),
            "writes": writes,
            "state": {k: v.clone() for k, v in model.state_dict().items()},
        }
        if scenario == "fit":
            model.eval()
            result["reduced"] = evaluate(model, val_loader, num_classes).matrix
            result["own_share"] = confusion_over(model, shard_loader(val_loader), num_classes)
            result["whole_here"] = confusion_over(model, val_loader, num_classes)
            result["val_batches"] = len(shard_loader(val_loader))
        torch.save(result, out / f"rank{rank()}.pt")
    finally:
        segtutor.fit_state.save_checkpoint = save
        time.monotonic = real_clock


def main(data: Path, out: Path) -> None:
    with process_group():
        assert is_distributed() and world_size() == 2
        for scenario in SCENARIOS:
            run_scenario(scenario, data, out / scenario)
        # What `torchrun ... -m segtutor train ...` runs in each process; the command joins the
        # group that is already here (making a second group in one launch is not reliable).
        code = segtutor_main(
            [
                "train",
                "--data",
                str(data),
                "--epochs",
                "2",
                "--size",
                "48",
                "--batch-size",
                "4",
                "--preset",
                "tiny",
                "--quiet",
                "--out",
                str(out / "command"),
            ]
        )
        assert code == 0 and is_distributed()
    assert not is_distributed()  # process_group() left the group


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
