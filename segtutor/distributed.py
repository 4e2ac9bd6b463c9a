"""Training on several processes with PyTorch's DistributedDataParallel (DDP), started by torchrun.

Introduced in `04_training.ipynb` (the loop that runs here on several processes), and in the
README ("Training on several GPUs or machines"), which no notebook runs. The command

    torchrun --nproc_per_node=N -m segtutor train ...

starts N copies of the same program. Each copy (a *process*, numbered by its *rank*, 0..N-1;
across several machines the ranks count over all of them) does this:

    join a process group          init_process_group: NCCL between GPUs, gloo between CPUs
    hold a whole copy of the model DistributedDataParallel starts every copy from rank 0's weights
    train on its own 1/N of each epoch (DistributedSampler); after every backward pass the
        gradients are averaged over all processes (an all-reduce), so every copy takes the
        same optimizer step and the copies stay identical
    validate its own share of the val set, then sum the confusion matrices (an all-reduce):
        every process gets the metrics of the whole val set, and so takes the same decisions
        (best epoch, early stopping, when the time budget is spent)
    rank 0 alone prints and writes files (two processes writing one file would race)

torchrun tells each process who it is through environment variables: `RANK` (0..WORLD_SIZE-1
over all machines), `WORLD_SIZE` (processes in all), `LOCAL_RANK` (0..N-1 on this machine: which
GPU to use) and `MASTER_ADDR`/`MASTER_PORT` (where to meet the others).

Outside torchrun nothing here does anything: no process group is made, `world_size()` is 1,
`is_main_process()` is True, and the reductions give back what they were given. `fit`,
`evaluate` (segtutor.train) and `make_loader` (segtutor.data) call these functions, so the same
code runs in one process or in many.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Sampler

__all__ = [
    "barrier",
    "broadcast_buffers",
    "broadcast_from_main",
    "cleanup",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "launched_by_torchrun",
    "max_over_processes",
    "process_group",
    "rank",
    "shard_loader",
    "sum_over_processes",
    "world_size",
    "wrap_ddp",
]


# --- joining and leaving the process group --------------------------------------------------


def launched_by_torchrun() -> bool:
    """True when this process was started by `torchrun` (it sets `RANK` and `WORLD_SIZE`).

    Introduced in `04_training.ipynb`.
    """
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_distributed() -> bool:
    """Join the process group torchrun describes; True if this process is now in one.

    Introduced in `04_training.ipynb`.

    The backend is NCCL when CUDA is available (each process takes the GPU number `LOCAL_RANK`
    on its machine) and gloo otherwise (CPUs). Not started by torchrun: does nothing, False.
    A group that is already initialised is kept as it is.
    """
    if is_distributed():
        return True
    if not launched_by_torchrun():
        return False
    if torch.cuda.is_available():
        # Before anything touches the GPU: otherwise every process would use GPU 0.
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")  # reads MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
    return True


def cleanup() -> None:
    """Leave the process group (`destroy_process_group`); nothing to do outside one.

    Introduced in `04_training.ipynb`.
    """
    if is_distributed():
        dist.destroy_process_group()


@contextmanager
def process_group() -> Iterator[bool]:
    """`with process_group():` joins torchrun's process group for the block and always leaves it.

    Introduced in `04_training.ipynb`.

    Yields True when distributed. A group made by the caller before the block is left to the
    caller. Outside torchrun the block runs as a plain single process.

    Example:
        >>> with process_group():
        ...     history = fit(model, train_loader, val_loader, config)
    """
    owned = not is_distributed() and init_distributed()
    try:
        yield is_distributed()
    finally:
        if owned:
            cleanup()


# --- who am I -------------------------------------------------------------------------------


def is_distributed() -> bool:
    """True inside an initialised process group (several processes working together).

    Introduced in `04_training.ipynb`.
    """
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's number, 0..world_size()-1 (0 in a single process).

    Introduced in `04_training.ipynb`.
    """
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """How many processes train together (1 in a single process).

    Introduced in `04_training.ipynb`.
    """
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True for rank 0, the one process that prints and writes files (and in a single process).

    Introduced in `04_training.ipynb`.
    """
    return rank() == 0


def barrier() -> None:
    """Wait until every process gets here (e.g. until rank 0 has written the checkpoint).

    Introduced in `04_training.ipynb`.
    """
    if is_distributed():
        dist.barrier()


# --- exchanging values ----------------------------------------------------------------------


def _collective_device() -> torch.device:
    """Where tensors must be for a collective: NCCL reduces GPU tensors only, gloo CPU tensors."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _all_reduce(values: tuple[float, ...], op: str) -> tuple[float, ...]:
    if not is_distributed():
        return tuple(float(v) for v in values)
    tensor = torch.tensor(
        [float(v) for v in values], dtype=torch.float64, device=_collective_device()
    )
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return tuple(tensor.tolist())


def sum_over_processes(*values: float) -> tuple[float, ...]:
    """Each value summed over all processes (one all-reduce for all of them).

    Introduced in `04_training.ipynb`.

    Example (the mean training loss over every process's images):
        >>> loss_sum, num_images = sum_over_processes(loss_sum, num_images)
    """
    return _all_reduce(values, "sum")


def max_over_processes(*values: float) -> tuple[float, ...]:
    """Each value's maximum over all processes; for flags, "did any process say yes?".

    Introduced in `04_training.ipynb`.

    Every process must call it at the same point, and all get the same answer: this is how
    they agree to stop together (one stopping alone would leave the others waiting forever
    in the next gradient all-reduce).
    """
    return _all_reduce(values, "max")


def broadcast_from_main(value: Any) -> Any:
    """Rank 0's `value` in every process (any picklable object), e.g. the run folder's name.

    Introduced in `04_training.ipynb`.
    """
    if not is_distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every process, in place.

    Introduced in `04_training.ipynb`.

    DDP keeps the weights identical, but each process updates its BatchNorm running statistics
    from its own batches (DDP copies rank 0's at the start of each forward pass, so after the last
    batch they differ a little). Call this before validating so that every process evaluates the
    same model, the one rank 0 saves. With SyncBatchNorm they are already identical.
    """
    if not is_distributed():
        return
    for buffer in model.buffers():
        synced = buffer.detach().to(_collective_device())
        dist.broadcast(synced, src=0)
        buffer.data.copy_(synced)


def wrap_ddp(model: nn.Module, device: torch.device, train_loader: DataLoader) -> nn.Module:
    """`model` in `DistributedDataParallel`, which averages the gradients during backward.

    Introduced in `04_training.ipynb`.

    `fit` trains through the wrapper and keeps `model` itself for validation (the shares of the
    val set differ in length, and DDP's forward would wait for the others) and for checkpoints
    (its state_dict has no "module." prefix, so they load into a plain UNet). Warns when
    `train_loader` would give every process the whole training set.
    """
    device_ids = None  # on CPUs
    if device.type == "cuda":
        device_ids = [device.index if device.index is not None else torch.cuda.current_device()]
    if is_main_process() and not isinstance(train_loader.sampler, DistributedSampler):
        warnings.warn(
            "train_loader has no DistributedSampler: every process trains on the whole "
            "training set (world_size times the work per epoch); build it with "
            "segtutor.data.make_loader(dataset, batch_size, shuffle=True)",
            stacklevel=3,
        )
    return DistributedDataParallel(model, device_ids=device_ids)


# --- splitting the validation set -----------------------------------------------------------


class _EveryNth(Sampler):
    """Items `rank, rank + n, rank + 2n, ...` of another sampler (or batch sampler)."""

    def __init__(self, sampler, rank: int, num_replicas: int):
        self.sampler, self.rank, self.num_replicas = sampler, rank, num_replicas

    def __iter__(self):
        for i, item in enumerate(self.sampler):
            if i % self.num_replicas == self.rank:
                yield item

    def __len__(self) -> int:
        return len(range(self.rank, len(self.sampler), self.num_replicas))


def shard_loader(loader: DataLoader) -> DataLoader:
    """This process's share of `loader`: every world_size()-th batch, starting at batch rank().

    Introduced in `04_training.ipynb`.

    Unlike `DistributedSampler`, which pads the dataset with repeated samples so that every
    process gets the same number, the shares here are disjoint and cover the loader exactly once:
    the confusion matrices summed over the processes equal one process's matrix over the whole
    loader. (Shares may differ by one batch; fine for evaluation, which has no gradient
    all-reduce to keep in step.) The batches are the loader's own, so batch size 1 for images of
    varying sizes still holds. In a single process, or when `loader` already uses a
    `DistributedSampler`, `loader` itself is returned.
    """
    if world_size() == 1 or isinstance(loader.sampler, DistributedSampler):
        return loader
    if loader.batch_sampler is not None:
        batching = {"batch_sampler": _EveryNth(loader.batch_sampler, rank(), world_size())}
    else:  # batch_size=None: the loader yields single samples
        batching = {"batch_size": None, "sampler": _EveryNth(loader.sampler, rank(), world_size())}
    return DataLoader(
        loader.dataset,
        **batching,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        generator=loader.generator,
        prefetch_factor=loader.prefetch_factor,
        persistent_workers=loader.persistent_workers,
    )
