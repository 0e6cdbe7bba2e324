"""Ancestral sampling with temperature, top-k and nucleus (top-p) filtering.

    y_t ~ softmax(z_t / tau)    restricted to the top k tokens, or to the smallest set whose
                                probability mass reaches p (Holtzman et al. 2020)

The filters are small pure functions over (B, V) logits. :func:`sample` drives any
(``decode_step``, state) pair, so it serves sequence-to-sequence models (state from ``encode``,
first input ``<sos>``) and language models (state and first logits from ``LanguageModel.start``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqlab.decoding.greedy import DecodeOutput, StepFn, stepwise_decode
from seqlab.models.base import DecoderState

__all__ = ["sample", "sample_next", "top_k_filter", "top_p_filter"]


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the k largest logits of each row, set the others to -inf.

    Exactly k entries survive per row, ties broken by ``torch.topk``; k >= V keeps all.

    Args:
        logits: (B, V) scores.
        k: how many to keep, >= 1.

    Returns:
        (B, V) filtered copy.
    """
    if k < 1:
        raise ValueError(f"top_k must be >= 1, got {k}")
    if k >= logits.size(-1):
        return logits.clone()
    index = logits.topk(k, dim=-1).indices  # (B, k)
    filtered = torch.full_like(logits, float("-inf"))
    return filtered.scatter(-1, index, logits.gather(-1, index))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Keep the smallest set of most probable tokens whose probability mass is >= p.

    A token is kept when the mass of the tokens ranked above it is still below p, so the most
    probable token always survives.

    Args:
        logits: (B, V) scores.
        p: the nucleus mass, 0 < p <= 1.

    Returns:
        (B, V) filtered copy, the dropped entries at -inf.
    """
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V)
    probs = torch.softmax(sorted_logits.float(), dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # mass of the strictly better tokens
    drop_sorted = mass_before >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def sample_next(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw one token per row from softmax(logits / temperature) after top-k / top-p filtering.

    Args:
        logits: (B, V) scores (log-probabilities work too).
        temperature: tau > 0 sharpens (< 1) or flattens (> 1); 0 means argmax.
        top_k: keep only the k most probable tokens.
        top_p: keep only the nucleus of mass p.
        generator: a seeded ``torch.Generator`` for reproducible draws.

    Returns:
        (B,) long tensor of token ids.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    scaled = logits.float() / temperature
    if top_k is not None:
        scaled = top_k_filter(scaled, top_k)
    if top_p is not None:
        scaled = top_p_filter(scaled, top_p)
    probs = torch.softmax(scaled, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)


class _FirstLogits:
    """A step function that returns given logits once, then defers to the model's step."""

    def __init__(self, step: StepFn, logits: Tensor):
        self.step, self.logits = step, logits

    def __call__(self, state: DecoderState, y_prev: Tensor) -> tuple[Tensor, DecoderState]:
        if self.logits is not None:
            logits, self.logits = self.logits, None
            return logits, state
        return self.step(state, y_prev)


@torch.inference_mode()
def sample(
    step: StepFn,
    state: DecoderState,
    first_token: Tensor | None = None,
    *,
    max_len: Tensor | int,
    logits: Tensor | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    src_lengths: Tensor | None = None,
    return_attention: bool = False,
) -> DecodeOutput:
    """Sample continuations until ``<eos>`` or ``max_len`` tokens, for every row.

    Give either ``first_token`` (the first decoder input, e.g. ``<sos>`` for a sequence-to-sequence
    model after ``encode``) or ``logits`` (the next-token logits that ``LanguageModel.start``
    returned with ``state``). ``<pad>`` and ``<sos>`` are never drawn.

    Args:
        step: the model's ``decode_step``.
        state: the state before the first draw.
        first_token: (B,) first decoder input.
        max_len: int or (B,) most tokens drawn per row, ``<eos>`` included.
        logits: (B, V) logits of the first draw, instead of ``first_token``.
        temperature, top_k, top_p, generator: as in :func:`sample_next`.
        src_lengths: (B,) real source lengths, to crop attention.
        return_attention: collect the cross-attention of each step.

    Returns:
        A :class:`~seqlab.decoding.greedy.DecodeOutput`; ``scores`` are the model's unfiltered
        log-probabilities of the drawn tokens.
    """
    if (first_token is None) == (logits is None):
        raise ValueError("sample() needs exactly one of first_token and logits")
    if logits is not None:
        step = _FirstLogits(step, logits)
        first_token = torch.zeros(logits.size(0), dtype=torch.long, device=logits.device)

    def choose(log_probs: Tensor) -> Tensor:
        return sample_next(
            log_probs, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
        )

    return stepwise_decode(
        step,
        state,
        first_token,
        max_len=max_len,
        choose=choose,
        src_lengths=src_lengths,
        return_attention=return_attention,
    )
