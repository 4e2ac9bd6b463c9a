"""Tests for segtutor.distributed: 2 CPU processes under torchrun (gloo) train with DDP, sum their
confusion matrices, stop together, and let rank 0 alone write; and, outside torchrun, nothing
changes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from segtutor.checkpoint import load_checkpoint, model_from_checkpoint
from segtutor.data import load_splits, make_loader
from segtutor.distributed import (
    barrier,
    broadcast_buffers,
    broadcast_from_main,
    init_distributed,
    is_distributed,
    is_main_process,
    launched_by_torchrun,
    max_over_processes,
    process_group,
    rank,
    shard_loader,
    sum_over_processes,
    world_size,
)
from segtutor.model import build_unet
from segtutor.recipe import val_loader_for
from segtutor.synth import write_dataset
from segtutor.train import evaluate

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("distributed_worker.py")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    write_dataset(root, "scenes", n_train=16, n_val=5, size=(48, 48), seed=0)
    return root


def torchrun(*args: str, timeout: float = 150) -> str:
    """`torchrun --standalone --nproc_per_node=2 ARGS` with gloo on 2 CPU processes; its stdout."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        *args,
    ]
    # The timeout turns a hang (a process waiting forever in a collective) into a failure. The
    # launch gets a session of its own so that a hang can be ended with all its processes.
    with subprocess.Popen(
        command,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            pytest.fail(
                f"torchrun hung for {timeout} s (a process left waiting in a collective?)"
                f"\n{stdout[-3000:]}{stderr[-3000:]}"
            )
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    return stdout


@pytest.fixture(scope="module")
def launch(scenes, tmp_path_factory) -> tuple[Path, str]:
    """One launch of tests/distributed_worker.py (starting the processes is the slow part): its
    output folder, a subfolder per scenario, and its stdout."""
    out = tmp_path_factory.mktemp("ddp")
    return out, torchrun(str(WORKER), str(scenes), str(out))


def ranks(out: Path, scenario: str) -> list[dict]:
    """What rank 0 and rank 1 saw in `scenario`."""
    return [torch.load(out / scenario / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def test_single_process_changes_nothing(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert not launched_by_torchrun() and not init_distributed()
    with process_group() as distributed:
        assert not distributed and not is_distributed()
        assert (rank(), world_size(), is_main_process()) == (0, 1, True)
        assert sum_over_processes(2, 3.5) == (2.0, 3.5)
        assert max_over_processes(True, False) == (1.0, 0.0)
        assert broadcast_from_main({"a": 1}) == {"a": 1}
        barrier()
        model = build_unet("tiny", num_classes=2)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        broadcast_buffers(model)
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        loader = make_loader(list(range(5)), batch_size=2, shuffle=True)
        assert shard_loader(loader) is loader
        assert type(loader.sampler).__name__ == "RandomSampler"


@pytest.mark.slow  # starts torchrun processes
def test_confusion_matrix_is_the_sum_over_processes(launch):
    fit_ranks = ranks(launch[0], "fit")
    # Each process evaluated its own share of the 3 val batches (2 and 1, none twice); the
    # all-reduced matrix, the same in both, is their sum, and equals the whole val set evaluated
    # by one process alone.
    assert [r["val_batches"] for r in fit_ranks] == [2, 1]
    own = [r["own_share"] for r in fit_ranks]
    assert own[0].sum() > 0 and own[1].sum() > 0
    for r in fit_ranks:
        assert torch.equal(r["reduced"], own[0] + own[1])
        assert torch.equal(r["reduced"], r["whole_here"])


@pytest.mark.slow  # starts torchrun processes
def test_training_converges_with_the_same_history_everywhere(launch):
    histories = [r["history"] for r in ranks(launch[0], "fit")]
    for h in histories:
        h.pop("epoch_time_s"), h.pop("val_time_s")  # the only things measured per process
    assert histories[0] == histories[1]
    history = histories[0]
    assert history["stop_reason"] == "num_epochs" and len(history["epoch"]) == 16
    assert history["train_loss"][-1] < 0.7 * history["train_loss"][0]
    assert history["best_miou"] > history["val_miou"][0] + 0.2


@pytest.mark.slow  # starts torchrun processes
def test_rank_0_alone_writes_the_plain_checkpoint(launch, scenes):
    out = launch[0]
    fit_ranks = ranks(out, "fit")
    assert fit_ranks[0]["writes"] and not fit_ranks[1]["writes"]
    checkpoint = load_checkpoint(out / "fit" / "best.pt")
    assert not any(name.startswith("module.") for name in checkpoint["model_state"])
    for r in fit_ranks:  # every process ended on the weights rank 0 saved
        assert all(torch.equal(checkpoint["model_state"][k], v) for k, v in r["state"].items())
    best = checkpoint["history"]["best_miou"]
    assert best == fit_ranks[0]["history"]["best_miou"]
    val_loader = make_loader(load_val(scenes), batch_size=2)
    single = evaluate(model_from_checkpoint(checkpoint), val_loader, num_classes=4)
    assert single.miou() == pytest.approx(best, abs=1e-3)


@pytest.mark.parametrize("stop", ["time_budget", "callback"])
@pytest.mark.slow  # starts torchrun processes
def test_a_stop_seen_by_one_process_stops_both(launch, stop):
    # Rank 1 alone saw the reason to stop (its clock ran 3x faster; its callback asked). Had the
    # processes not agreed, rank 0 would have waited forever in the next gradient all-reduce,
    # and the launch would have hit its timeout.
    histories = [r["history"] for r in ranks(launch[0], stop)]
    assert [h["stop_reason"] for h in histories] == [stop, stop]
    assert histories[0]["epoch"] == histories[1]["epoch"]
    assert histories[0]["lr"] == histories[1]["lr"]  # one schedule, from the slowest clock
    assert histories[0]["val_miou"] == histories[1]["val_miou"]
    if stop == "callback":
        assert histories[0]["epoch"] == [1, 2]  # 2 batches per epoch: step 3 is in epoch 2
    else:  # stopped by rank 1's clock, before rank 0's own clock reached the 2 s budget
        assert sum(histories[0]["epoch_time_s"]) < 2.0


@pytest.mark.slow  # starts torchrun processes
def test_the_train_command_under_torchrun(launch, scenes):
    out, stdout = launch[0] / "command", launch[1]
    assert stdout.count("data: ") == 1 and stdout.count("wrote ") == 1  # rank 0 alone prints
    for name in (
        "best.pt",
        "metrics.json",
        "history.json",
        "curves.png",
        "predictions.png",
        "confusion.png",
    ):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2
    # The summed matrix counts every val pixel once: 5 images of 48x48, less the ignored ones.
    ignored = int(sum((mask == 255).sum() for _, mask in load_val(scenes)))
    assert sum(map(sum, metrics["confusion_matrix"])) == 5 * 48 * 48 - ignored
    model = model_from_checkpoint(out / "best.pt")
    val_loader = val_loader_for(load_val(scenes), "resize", size=48, batch_size=4)
    assert evaluate(model, val_loader, 4).miou() == pytest.approx(metrics["miou"], abs=1e-3)


def load_val(root: Path):
    """The val set without transforms, as the worker's "fit" scenario reads it."""
    return load_splits(root)[1]
