"""Numeric precision from the hardware: ``auto``, ``fp32`` or ``bf16``.

bf16 autocast halves the memory traffic of every matrix product, which on a CPU with bf16 units
(AVX-512 BF16, AMX) makes training and decoding about twice as fast at no cost in quality. On a
CPU without them (AVX2 only) PyTorch computes bf16 products in a slow reference path, about 100x
slower than fp32 (1024 x 1024 products on 2 threads: 100 GFLOP/s in fp32, under 1 GFLOP/s in bf16).
So precision is a question for the hardware:

* ``auto`` (the default of ``train.precision`` and ``decode.precision``): ``bf16`` where
  :func:`native_bf16` says the device computes bf16 natively; on a GPU without bf16 (before
  Ampere) ``fp16`` autocast, whose small range needs the loss scaled during training
  (:func:`grad_scaler`); ``fp32`` on any other CPU;
* ``fp16``: float16 autocast (meant for GPUs; on a CPU it runs, slowly, after a warning);
* ``fp32``: always float32;
* ``bf16``: always bf16 autocast; on a device without native bf16 it still runs, after one
  :class:`SlowPrecisionWarning` naming the device's capability.

:func:`native_bf16` asks oneDNN on the CPU (``torch.ops.mkldnn._is_mkldnn_bf16_supported``) and
``torch.cuda.is_bf16_supported`` on CUDA; a private operator that a PyTorch version lacks counts as
"no". Everything that chooses a bf16 fast path (``seqlab.nn.linear``, ``seqlab.nn.attention``)
asks this module, so tests can force the answer both ways by replacing :func:`_cpu_bf16`.
"""

from __future__ import annotations

import contextlib
import functools
import warnings

import torch

from seqlab.errors import SeqlabError

__all__ = [
    "PRECISIONS",
    "SlowPrecisionWarning",
    "autocast_context",
    "cpu_capability",
    "describe_precision",
    "grad_scaler",
    "native_bf16",
    "resolve_precision",
]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class SlowPrecisionWarning(UserWarning):
    """bf16 was asked for on a device that has no native bf16 arithmetic."""


def _device_type(device: str | torch.device) -> str:
    return torch.device(device).type


@functools.cache
def _cpu_bf16() -> bool:
    """What oneDNN says about this CPU (False when the private operator is missing or fails)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@functools.cache
def _cuda_bf16() -> bool:
    try:
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    except (AttributeError, RuntimeError, AssertionError):
        return False


def native_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` computes bf16 products natively (CPU: AVX-512 BF16 / AMX; CUDA: Ampere on)."""
    kind = _device_type(device)
    if kind == "cpu":
        return _cpu_bf16()
    if kind == "cuda":
        return _cuda_bf16()
    return False


def cpu_capability() -> str:
    """``torch.backends.cpu.get_cpu_capability()`` (e.g. ``AVX2``, ``AVX512``), or ``unknown``."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return "unknown"


def _device_description(device: str | torch.device) -> str:
    kind = _device_type(device)
    if kind == "cpu":
        return f"this CPU (capability {cpu_capability()})"
    if kind == "cuda":
        with contextlib.suppress(RuntimeError, AssertionError):
            return f"this GPU ({torch.cuda.get_device_name(torch.device(device))})"
    return f"this device ({kind})"


def resolve_precision(name: str, device: str | torch.device = "cpu") -> str:
    """``auto``, ``fp32`` or ``bf16`` -> the precision to run in on ``device``: ``fp32`` or ``bf16``.

    Raises:
        SeqlabError: ``name`` is not one of :data:`PRECISIONS`.
    """
    if name not in PRECISIONS:
        raise SeqlabError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name == "auto":
        if native_bf16(device):
            return "bf16"
        return "fp16" if _device_type(device) == "cuda" else "fp32"
    if name == "fp16" and _device_type(device) == "cpu":
        warnings.warn("precision fp16 on the CPU: float16 products have no fast CPU kernels and a small range; "
                      "use precision auto (bf16 where native, else fp32)", SlowPrecisionWarning, stacklevel=2)
    if name == "bf16" and not native_bf16(device):
        warnings.warn(f"precision bf16: {_device_description(device)} has no native bf16 arithmetic, so bf16 "
                      "will run much slower than fp32 (often 10-100x); use precision auto or fp32",
                      SlowPrecisionWarning, stacklevel=2)
    return name


def describe_precision(name: str, resolved: str, device: str | torch.device = "cpu") -> str:
    """For logs: ``resolved`` (what :func:`resolve_precision` made of ``name`` on ``device``), and why."""
    native = "native bf16" if native_bf16(device) else "no native bf16"
    how = f"auto: {native}" if name == "auto" else f"{name} as configured, {native}"
    kind = _device_type(device)
    where = f"CPU {cpu_capability()}" if kind == "cpu" else kind
    return f"{resolved} ({how}, {where})"


def autocast_context(precision: str, device: str | torch.device = "cpu"):
    """A context that runs its products at ``precision`` (already resolved: ``fp32``, ``bf16`` or ``fp16``)."""
    if precision not in ("fp32", "bf16", "fp16"):
        raise SeqlabError(f"autocast_context needs a resolved precision, fp32, bf16 or fp16, got {precision!r}")
    return torch.autocast(_device_type(device), dtype=_DTYPES.get(precision, torch.bfloat16),
                          enabled=precision != "fp32")


def grad_scaler(precision: str, device: str | torch.device = "cpu") -> torch.amp.GradScaler:
    """The loss scaler of a training run: active for ``fp16`` only.

    float16 has 5 exponent bits, so small gradients underflow to zero; the scaler multiplies the
    loss by S before backward and divides the gradients by S before the step (skipping steps whose
    gradients overflowed, and adapting S). bf16 has float32's exponent range and needs none of it.
    """
    return torch.amp.GradScaler(_device_type(device), enabled=precision == "fp16")
