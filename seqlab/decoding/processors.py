"""Logits processors: small pure functions that reshape next-token scores before the choice.

Every decoding strategy (greedy, beam, sampling) calls the same processors, in this order, on the
(B, V) logits z_t of each step, given the (B, t-1) tokens each row has generated so far:

* **repetition penalty** (Keskar et al. 2019, CTRL): for every token v already generated,
  z_v / theta when z_v > 0 and z_v * theta otherwise, so theta > 1 makes repeats less likely;
* **no-repeat n-gram** (Paulus et al. 2018): a token that would complete an n-gram the row has
  already produced gets -inf (compared on the device, all rows at once);
* **minimum length**: ``<eos>`` gets -inf while fewer than ``min_length`` tokens are out;
* ``<pad>`` and ``<sos>`` always get -inf (they are never outputs).

:func:`build_processor` composes them from a :class:`~seqlab.config.DecodeConfig` into one
function ``process(logits, history) -> logits``; with the defaults it only masks the specials.
Temperature, top-k and top-p belong to sampling and live in :mod:`seqlab.decoding.sampling`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from seqlab.text.specials import EOS, PAD, SOS

__all__ = [
    "Processor",
    "block_ngram_repeats",
    "build_processor",
    "mask_only",
    "mask_specials",
    "min_length_mask",
    "repetition_penalty",
]

Processor = Callable[[Tensor, Tensor], Tensor]
"""``process(logits (B, V), history (B, t) long) -> (B, V)``; history holds ``<pad>`` in unused slots."""


def mask_specials(logits: Tensor) -> Tensor:
    """Set the ``<pad>`` and ``<sos>`` columns of (B, V) scores to -inf (a copy)."""
    masked = logits.clone()
    masked[:, PAD] = float("-inf")
    masked[:, SOS] = float("-inf")
    return masked


def mask_only(logits: Tensor, history: Tensor) -> Tensor:
    """The default processor: float32 logits with ``<pad>``/``<sos>`` at -inf (no option active).

    Searches may recognise it (``process is mask_only``) and mask cheaper: beam search takes its
    candidates from the log-probabilities directly.
    """
    return mask_specials(logits.float())


def repetition_penalty(logits: Tensor, history: Tensor, penalty: float) -> Tensor:
    """CTRL's penalty: z_v / theta if z_v > 0 else z_v * theta, for every v in ``history``.

    Args:
        logits: (B, V) scores.
        history: (B, t) tokens generated so far (``<pad>`` entries are ignored).
        penalty: theta > 0; 1 leaves the logits unchanged.

    Returns:
        (B, V) penalised copy.
    """
    if penalty <= 0:
        raise ValueError(f"repetition_penalty must be > 0, got {penalty}")
    if penalty == 1.0 or history.size(1) == 0:
        return logits.clone()
    seen = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, history, True)  # (B, V)
    seen[:, PAD] = False
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def block_ngram_repeats(logits: Tensor, history: Tensor, n: int) -> Tensor:
    """-inf for every token that would complete an n-gram already in the row's ``history``.

    With history y_1..y_{t-1}, token v is banned when (y_{t-n+1}, ..., y_{t-1}, v) equals some
    (y_i, ..., y_{i+n-1}) of the history. ``n = 1`` bans every token already generated.

    Args:
        logits: (B, V) scores.
        history: (B, t) tokens generated so far; a row's ``<pad>`` entries end it.
        n: the n-gram size, >= 1.

    Returns:
        (B, V) copy with the banned entries at -inf.
    """
    if n < 1:
        raise ValueError(f"no_repeat_ngram must be >= 1, got {n}")
    out = logits.clone()
    B, t = history.shape
    if t < n:  # no row holds a whole n-gram yet
        return out
    length = history.ne(PAD).long().cumprod(dim=1).sum(dim=1)  # (B,) tokens before the first <pad>
    windows = history.unfold(1, n, 1)  # (B, W, n): the n-grams y_i .. y_{i+n-1}, W = t - n + 1
    starts = torch.arange(windows.size(1), device=history.device)
    seen = starts[None, :] + n <= length[:, None]  # (B, W) n-grams inside the row
    if n > 1:
        last = length[:, None] - (n - 1) + torch.arange(n - 1, device=history.device)[None, :]  # (B, n-1)
        prefix = history.gather(1, last.clamp(min=0))  # the row's last n - 1 tokens
        seen &= windows[:, :, :-1].eq(prefix[:, None, :]).all(dim=2)
    banned = torch.zeros(B, logits.size(1), dtype=torch.long, device=logits.device)
    banned.scatter_add_(1, windows[:, :, -1], seen.long())  # (B, V) times each token completes one
    return out.masked_fill(banned > 0, float("-inf"))


def min_length_mask(logits: Tensor, history: Tensor, min_length: int) -> Tensor:
    """-inf for ``<eos>`` while fewer than ``min_length`` tokens have been generated.

    Args:
        logits: (B, V) scores.
        history: (B, t) tokens generated so far; its width t is the number generated.
        min_length: the shortest output, ``<eos>`` not counted.

    Returns:
        (B, V) copy.
    """
    out = logits.clone()
    if history.size(1) < min_length:
        out[:, EOS] = float("-inf")
    return out


def build_processor(*, repetition: float = 1.0, no_repeat_ngram: int = 0, min_length: int = 0) -> Processor:
    """Compose the processors of the module docstring (only the active ones) into one function.

    Args:
        repetition: the repetition penalty theta (1 = off).
        no_repeat_ngram: the n-gram size that may not repeat (0 = off).
        min_length: the shortest output in tokens (0 = off).

    Returns:
        ``process(logits, history) -> logits`` (float32 copy, specials masked).
    """

    if repetition == 1.0 and no_repeat_ngram == 0 and min_length == 0:
        return mask_only

    def process(logits: Tensor, history: Tensor) -> Tensor:
        z = logits.float()
        if repetition != 1.0:
            z = repetition_penalty(z, history, repetition)
        if no_repeat_ngram > 0:
            z = block_ngram_repeats(z, history, no_repeat_ngram)
        if min_length > 0:
            z = min_length_mask(z, history, min_length)
        return mask_specials(z)

    return process
