"""How many decoder steps each sentence may take.

A decoder step emits one token, so a length limit of L allows at most L emitted tokens counting
the final ``<eos>``: a hypothesis that reaches L steps without ``<eos>`` is returned truncated.
Since step t feeds decoder position t - 1, a limit of ``model.max_positions`` never asks the model
for a position it does not have.

The limit grows with the source length (translations are about as long as their source):

    L_i = min(limit, ceil(ratio * |x_i|) + offset)

with |x_i| the number of non-``<pad>`` source tokens. A chat reply has no such relation to its
context, so ``decode.max_new_tokens`` replaces the ratio by a fixed budget (:func:`output_limits`):

    L_i = min(limit, max_new_tokens)
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqlab.models.base import padding_mask

__all__ = ["as_length_tensor", "max_target_lengths", "output_limits"]


def max_target_lengths(src: Tensor, ratio: float, offset: int, limit: int) -> Tensor:
    """Per-sentence decoding limit L_i = min(limit, ceil(ratio * |x_i|) + offset).

    Args:
        src: (B, S) source ids, right-padded with ``<pad>``.
        ratio: allowed target/source length ratio (``decode.max_len_ratio``).
        offset: extra steps on top of the ratio (``decode.max_len_offset``).
        limit: hard cap, usually the model's ``max_positions``.

    Returns:
        (B,) long tensor of limits, each at least 1, on ``src``'s device.
    """
    if ratio < 0:
        raise ValueError(f"max_len_ratio must be >= 0, got {ratio}")
    if limit < 1:
        raise ValueError(f"the length limit must be >= 1, got {limit}")
    src_len = padding_mask(src).sum(dim=1).to(torch.float64)  # (B,)
    lengths = torch.ceil(src_len * ratio).long() + offset
    return lengths.clamp(min=1, max=limit)


def as_length_tensor(max_len: Tensor | int, batch_size: int, device: torch.device | str) -> Tensor:
    """Turn an ``int`` or (B,) ``max_len`` into a (B,) long tensor on ``device``.

    Raises:
        ValueError: when the shape is not (B,) or a limit is below 1.
    """
    if isinstance(max_len, Tensor):
        if max_len.shape != (batch_size,):
            raise ValueError(
                f"max_len must be an int or a tensor of shape ({batch_size},), "
                f"got shape {tuple(max_len.shape)}"
            )
        lengths = max_len.to(device=device, dtype=torch.long)
    else:
        lengths = torch.full((batch_size,), int(max_len), dtype=torch.long, device=device)
    if batch_size and int(lengths.min()) < 1:
        raise ValueError(f"max_len must be >= 1 for every sentence, got {lengths.tolist()}")
    return lengths


def output_limits(src: Tensor, *, ratio: float, offset: int, max_new_tokens: int | None, limit: int) -> Tensor:
    """(B,) step limits: ``max_new_tokens`` when given, else :func:`max_target_lengths`; capped at ``limit``.

    Args:
        src: (B, S) source ids, right-padded with ``<pad>``.
        ratio, offset: the source-length rule (``decode.max_len_ratio``/``max_len_offset``).
        max_new_tokens: a fixed budget of output tokens, ``<eos>`` included, or None.
        limit: hard cap, usually the model's ``max_positions``.
    """
    if max_new_tokens is None:
        return max_target_lengths(src, ratio, offset, limit)
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    return torch.full((src.size(0),), min(max_new_tokens, limit), dtype=torch.long, device=src.device)
