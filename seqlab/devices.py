"""Devices: what ``train.device`` / ``--device`` name, and moving batches there.

``auto`` is CUDA when PyTorch sees a GPU, else the CPU; ``cpu``, ``cuda`` (the local rank's GPU)
and ``cuda:N`` name one. Batches are copied with pinned memory and ``non_blocking=True`` on CUDA,
so the copy overlaps the previous step's kernels.
"""

from __future__ import annotations

import dataclasses
import re

import torch
from torch import Tensor

from seqlab.errors import ConfigError

__all__ = ["check_device", "resolve_device", "to_device"]

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device(name: str, key: str = "train.device") -> None:
    """Raise ConfigError naming ``key`` unless ``name`` is auto, cpu, cuda or cuda:N."""
    if not _DEVICE_RE.match(name):
        raise ConfigError(key, f"expected auto, cpu, cuda or cuda:N, got {name!r}")


def resolve_device(name: str, *, local_rank: int = 0, key: str = "train.device") -> torch.device:
    """``auto`` -> CUDA when available (``cuda:<local_rank>``), else CPU; ``cuda`` without an index
    is the local rank's GPU. Asking for CUDA on a machine without it is a ConfigError naming ``key``."""
    check_device(name, key)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(key, f"{name!r} was asked for, but this PyTorch sees no CUDA device")
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    return torch.device("cpu")


def to_device(batch, device: torch.device):
    """``batch`` with every tensor field on ``device`` (a tensor, a dataclass, a tuple or a dict)."""
    if device.type == "cpu":
        return batch
    if isinstance(batch, Tensor):
        return batch.pin_memory().to(device, non_blocking=True)
    if dataclasses.is_dataclass(batch):
        return dataclasses.replace(batch, **{f.name: to_device(getattr(batch, f.name), device)
                                             for f in dataclasses.fields(batch)})
    if isinstance(batch, tuple):
        return type(batch)(to_device(x, device) for x in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


