"""Devices and multi-process data parallelism (``torch.distributed``) for the one training loop.

Devices are resolved by :mod:`seqlab.devices`; batches reach the rank's device through
:func:`seqlab.devices.to_device`.

**Data parallelism.** ``torchrun --nproc_per_node N -m seqlab train CONFIG`` (or
``seqlab train --nproc N``) starts N processes (ranks) that all build the same batches in the same
order. Rank r trains on its share of the rows of each batch (:func:`shard`), so the *global*
batch is what the config says. With N_r the target tokens of rank r and N = sum_r N_r, the
single-process gradient is

    g = (1 / N) sum_r sum_{i in rank r} grad l_i

``DistributedDataParallel`` averages gradients over ranks (it divides their sum by N_ranks), so
each rank back-propagates ``N_ranks * loss_sum_r / N``; N comes from one all-reduce per step
(:meth:`Cluster.sum`), which also gives the logged loss and token counts of the whole batch.
``tests/training/test_distributed.py`` holds 2 processes equal to 1 within float tolerance.

Rank 0 alone writes the run folder (config, tokenizer, checkpoints, metrics), evaluates on the dev
set and shows progress; decisions that end the loop (Ctrl-C, the time budget, patience) are
agreed through :meth:`Cluster.any`, so every rank stops at the same step. Each rank's RNG state
is saved in the checkpoint, so a run resumes exactly with the same number of ranks.
"""

from __future__ import annotations

import dataclasses
import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from seqlab.devices import resolve_device

__all__ = ["Cluster", "shard"]

def shard(batch, rank: int, world: int):
    """Rank ``rank``'s share of the rows of ``batch``: rows rank, rank + world, rank + 2 world, ...

    Every tensor field whose first dimension is the batch size B, and every list of length B, is
    indexed; other fields are kept. A batch with a ``select_rows(index)`` method (which may
    recompute derived fields) is asked to do it itself. Interleaved rows spread long and short
    examples of a length-sorted batch evenly over the ranks.
    """
    if world == 1:
        return batch
    size = _batch_size(batch)
    if size < world:
        raise ValueError(f"a batch of {size} rows cannot be shared by {world} processes; raise "
                         "train.batch_tokens or use fewer processes")
    index = list(range(rank, size, world))
    if hasattr(batch, "select_rows"):
        return batch.select_rows(index)
    rows = torch.tensor(index)
    changes = {}
    for f in dataclasses.fields(batch):
        value = getattr(batch, f.name)
        if isinstance(value, Tensor) and value.dim() > 0 and value.size(0) == size:
            changes[f.name] = value.index_select(0, rows.to(value.device))
        elif isinstance(value, list) and len(value) == size:
            changes[f.name] = [value[i] for i in index]
    return dataclasses.replace(batch, **changes)


def _batch_size(batch) -> int:
    if not dataclasses.is_dataclass(batch):
        raise TypeError(f"cannot shard a {type(batch).__name__}: batches must be dataclasses")
    for f in dataclasses.fields(batch):
        value = getattr(batch, f.name)
        if isinstance(value, Tensor) and value.dim() > 0:
            return value.size(0)
    raise TypeError(f"{type(batch).__name__} has no tensor field to shard")


@dataclass
class Cluster:
    """This process's place among the ranks of a run (a single process is rank 0 of 1).

    Attributes:
        rank: global rank r.
        world: number of processes.
        local_rank: rank on this machine (selects the GPU).
        device: the device this rank trains on.
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))

    @classmethod
    def from_environment(cls, device: str) -> Cluster:
        """Join the process group that ``torchrun`` describes (``WORLD_SIZE`` > 1), else a single rank.

        Backend: NCCL on CUDA, gloo on the CPU.
        """
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls(device=resolve_device(device))
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        resolved = resolve_device(device, local_rank=local_rank)
        if not dist.is_initialized():
            if resolved.type == "cuda":
                torch.cuda.set_device(resolved)
            dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
        return cls(rank=rank, world=world, local_rank=local_rank, device=resolved)

    @property
    def main(self) -> bool:
        """Whether this is rank 0 (the one that writes, evaluates and talks)."""
        return self.rank == 0

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` in ``DistributedDataParallel`` across the ranks (itself for one process)."""
        if self.world == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over the ranks (one all-reduce)."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on any rank."""
        return self.sum([float(flag)])[0] > 0

    def gather(self, obj) -> list | None:
        """``[obj of rank 0, obj of rank 1, ...]`` on rank 0, None elsewhere (picklable objects)."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world if self.main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self, wait: bool = True) -> None:
        """Leave the process group: with ``wait``, first a barrier, so no rank tears its connections down
        while another still talks to it; then collect what still holds the group (a DDP wrapper's
        pending work keeps tensors in gloo's threads, and freeing those at interpreter exit aborts
        the process) and destroy it. ``wait=False`` on the way out of an error, where the other
        ranks may be blocked in a different collective."""
        if self.world > 1 and dist.is_initialized():
            try:
                if wait:
                    dist.barrier()
            finally:
                gc.collect()
                dist.destroy_process_group()
