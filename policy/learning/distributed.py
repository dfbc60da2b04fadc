"""The updater's training step on several processes (`torchrun` / `accelerate launch`), unchanged.

Each process holds the whole model and every example; each optimizer step's minibatch is dealt
out (example i to process i mod N), every process back-propagates its share divided by the whole
minibatch's size, and the gradients are summed across processes before the step: the same
gradient one process would compute, so every process takes the same step and stays in sync (no
DDP wrapper: peft's LoRA parameters are all there is to sync). Rank 0 alone guards and publishes.

Not launched so (no LOCAL_RANK nor accelerate's variables: the laptop's updater) it is SOLO, and
every call here is free and does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    device: str = "cpu"  # where the optimizer steps run: cuda:LOCAL_RANK on a GPU machine

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def mine(self, items: Sequence[T]) -> list[T]:
        """This process's share of one minibatch (or of its pairs and groups)."""
        return list(items[self.rank :: self.size])

    def sum_grads(self, params: Sequence[torch.nn.Parameter], bad: bool = False) -> bool:
        """Sum the gradients over every process; True when any process met a non-finite loss."""
        if self.size == 1:
            return bad
        import torch.distributed as dist

        flag = torch.tensor([1.0 if bad else 0.0], device=self.device)
        dist.all_reduce(flag)
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)
        return bool(flag.item())


SOLO = World()


def from_env() -> World:
    """The processes torchrun or accelerate launch describe (LOCAL_RANK, RANK, WORLD_SIZE,
    MASTER_ADDR): each on its own GPU with NCCL where there are GPUs (RLTAB_TRAIN_DEVICE=cpu or
    accelerate's --cpu say no), else on CPUs with gloo. Not launched so: SOLO (the laptop's
    updater, on its CPU). accelerate runs several processes through torchrun (--multi_gpu); on
    CPUs it leaves several processes to mpirun, which rltab does not use: use torchrun there."""
    accelerate = any(k.startswith("ACCELERATE_") for k in os.environ)  # its one-process launcher sets no ranks
    if "LOCAL_RANK" not in os.environ and not accelerate:
        return SOLO
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cpu_asked = (
        os.environ.get("RLTAB_TRAIN_DEVICE") == "cpu" or os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true"
    )
    cuda = torch.cuda.is_available() and not cpu_asked
    device = f"cuda:{local}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(local)
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(0, 1, device)
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), device)


def leave(world: World) -> None:
    if world.size > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier(device_ids=[torch.cuda.current_device()] if world.device != "cpu" else None)
            dist.destroy_process_group()
