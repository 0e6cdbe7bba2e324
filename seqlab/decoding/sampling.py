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

from seqlab.decoding.greedy import (
    DecodeOutput,
    StepFn,
    mask_only,
    start_from,
    stepwise_decode,
)
from seqlab.decoding.processors import Processor
from seqlab.models.base import DecoderState

__all__ = ["Generators", "sample", "sample_next", "sampler", "top_k_filter", "top_p_filter"]

Generators = torch.Generator | list[torch.Generator] | None
"""One generator for the whole batch, one per row (a row's draws then do not depend on which
other rows share its batch), or None for torch's global generator."""


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
    generator: Generators = None,
) -> Tensor:
    """Draw one token per row from softmax(logits / temperature) after top-k / top-p filtering.

    Args:
        logits: (B, V) scores (log-probabilities work too).
        temperature: tau > 0 sharpens (< 1) or flattens (> 1); 0 means argmax.
        top_k: keep only the k most probable tokens.
        top_p: keep only the nucleus of mass p.
        generator: a seeded ``torch.Generator`` for reproducible draws, or a list of B of them,
            one per row.

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
    probs = torch.softmax(scaled, dim=-1)  # (B, V)
    if isinstance(generator, list):
        if len(generator) != probs.size(0):
            raise ValueError(f"{len(generator)} generators for {probs.size(0)} rows")
        return torch.cat([torch.multinomial(p, 1, generator=g) for p, g in zip(probs, generator)])
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)


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
    generator: Generators = None,
    process: Processor = mask_only,
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
        process: the logits processor applied before temperature and filtering.
        src_lengths: (B,) real source lengths, to crop attention.
        return_attention: collect the cross-attention of each step.

    Returns:
        A :class:`~seqlab.decoding.greedy.DecodeOutput`; ``scores`` are the model's unfiltered
        log-probabilities of the drawn tokens.
    """
    step, first_token = start_from(step, first_token, logits)
    return stepwise_decode(step, state, first_token, max_len=max_len,
                           choose=sampler(temperature=temperature, top_k=top_k, top_p=top_p, generator=generator),
                           process=process, src_lengths=src_lengths, return_attention=return_attention)


def sampler(*, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
            generator: Generators = None):
    """The ``choose`` function of :func:`~seqlab.decoding.greedy.decode_steps` that samples."""

    def choose(logits: Tensor) -> Tensor:
        return sample_next(logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)

    return choose
