"""Corpus metrics (BLEU, chrF, perplexity) and the model passes that feed them.

* :func:`bleu` and :func:`chrf` score detokenised text with sacrebleu (corpus level, default
  ``13a`` tokenisation), so numbers are comparable with published ones.
* :func:`perplexity` is exp(total NLL / tokens).
* :func:`translate_batch` decodes a list of id sequences in length-sorted batches (greedy when
  ``beam == 1``, else beam search) and returns the results in input order.
* :func:`teacher_forced_nll` sums -log p(y_t | y_<t, x) over every target token, ``<eos>``
  included, which is what perplexity and the dev loss need.

Both model passes run in eval mode (the previous mode is restored) under ``torch.inference_mode()``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import sacrebleu
import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.decoding.beam import beam_search
from seqlab.decoding.greedy import DecodeOutput, greedy_search
from seqlab.decoding.lengths import max_target_lengths
from seqlab.models.base import Seq2SeqModel
from seqlab.text.specials import EOS, PAD, SOS

__all__ = ["bleu", "chrf", "perplexity", "teacher_forced_nll", "translate_batch"]


# --------------------------------------------------------------------------------------------
# text metrics


def _check_corpus(name: str, hyps: Sequence[str], refs: Sequence[str]) -> None:
    for label, side in (("hyps", hyps), ("refs", refs)):
        if isinstance(side, str) or not all(isinstance(s, str) for s in side):
            raise ValueError(
                f"{name}(hyps, refs) expects two lists of strings (one reference per hypothesis); "
                f"{label} is not a list of strings"
            )
    if len(hyps) != len(refs):
        raise ValueError(f"{name}: {len(hyps)} hypotheses but {len(refs)} references")
    if not hyps:
        raise ValueError(f"{name}: no sentences to score")


def bleu(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus BLEU (0-100) of detokenised hypotheses against one reference each (sacrebleu, 13a).

    Raises:
        ValueError: when the inputs are not lists of strings, differ in length, or are empty.
    """
    _check_corpus("bleu", hyps, refs)
    return float(sacrebleu.corpus_bleu(list(hyps), [list(refs)]).score)


def chrf(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus chrF (0-100, character n-gram F-score, beta = 2) via sacrebleu.

    Raises:
        ValueError: when the inputs are not lists of strings, differ in length, or are empty.
    """
    _check_corpus("chrf", hyps, refs)
    return float(sacrebleu.corpus_chrf(list(hyps), [list(refs)]).score)


def perplexity(total_nll: float, n_tokens: int) -> float:
    """PPL = exp(total_nll / n_tokens), inf when it overflows."""
    if n_tokens <= 0:
        raise ValueError(f"perplexity needs at least one token, got n_tokens={n_tokens}")
    try:
        return math.exp(total_nll / n_tokens)
    except OverflowError:
        return math.inf


# --------------------------------------------------------------------------------------------
# model passes


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _device(model: torch.nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _pad(rows: list[list[int]], device: torch.device) -> Tensor:
    """Right-pad id lists with ``<pad>`` into a (B, max_len) long tensor."""
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out.to(device)


def _batches(lengths: list[int], batch_size: int) -> Iterator[list[int]]:
    """Indices in batches of ``batch_size``, longest first, so similar lengths share padding."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def translate_batch(
    model: Seq2SeqModel,
    src_ids: list[list[int]],
    *,
    beam: int,
    length_penalty: float,
    max_len_ratio: float,
    max_len_offset: int,
    batch_size: int = 64,
    n_best: int = 1,
    return_attention: bool = False,
) -> DecodeOutput:
    """Decode many sentences: sort by length, batch, pad, search, restore the input order.

    The length limit of sentence i is min(model.max_positions, ceil(ratio * |x_i|) + offset)
    decoder steps (:func:`~seqlab.decoding.lengths.max_target_lengths`). An empty source gives an
    empty translation with score 0 without calling the model.

    Args:
        model: any sequence-to-sequence model; it runs on the device of its parameters.
        src_ids: source id sequences without padding.
        beam: 1 for greedy search (when ``n_best == 1``), else the beam size.
        length_penalty: alpha of the GNMT length penalty (beam search only).
        max_len_ratio, max_len_offset: the length limit above.
        batch_size: sentences per batch.
        n_best: hypotheses per sentence in ``nbest`` (beam search, n_best > 1).
        return_attention: also return each best hypothesis' (T_i, S_i) cross-attention.

    Returns:
        A :class:`~seqlab.decoding.greedy.DecodeOutput` with one entry per input, in input order.
    """
    n = len(src_ids)
    tokens: list = [[] for _ in range(n)]
    scores: list = [0.0] * n
    attention: list = [torch.zeros(0, 0) for _ in range(n)]
    nbest: list = [[([], 0.0)] for _ in range(n)]
    has_attention = return_attention
    nonempty = [i for i in range(n) if src_ids[i]]
    device = _device(model)
    with _eval_mode(model):
        for batch in _batches([len(src_ids[i]) for i in nonempty], batch_size):
            index = [nonempty[j] for j in batch]
            src = _pad([src_ids[i] for i in index], device)
            max_len = max_target_lengths(src, max_len_ratio, max_len_offset, model.max_positions)
            if beam == 1 and n_best == 1:
                out = greedy_search(model, src, max_len=max_len, return_attention=return_attention)
            else:
                out = beam_search(
                    model,
                    src,
                    beam=beam,
                    max_len=max_len,
                    length_penalty=length_penalty,
                    n_best=n_best,
                    return_attention=return_attention,
                )
            has_attention = has_attention and out.attention is not None
            for j, i in enumerate(index):
                tokens[i], scores[i] = out.tokens[j], out.scores[j]
                if out.attention is not None:
                    attention[i] = out.attention[j]
                if out.nbest is not None:
                    nbest[i] = out.nbest[j]
    return DecodeOutput(
        tokens=tokens,
        scores=scores,
        attention=attention if has_attention else None,
        nbest=nbest if n_best > 1 else None,
    )


def teacher_forced_nll(
    model: Seq2SeqModel,
    src_ids: list[list[int]],
    tgt_ids: list[list[int]],
    batch_size: int = 64,
) -> tuple[float, int]:
    """Sum of -log p(y_t | y_<t, x) over all target tokens, ``<eos>`` included.

    Each target y (ids without ``<sos>``/``<eos>``) is fed as tgt_in = ``<sos>`` y and scored
    against tgt_out = y ``<eos>``.

    Args:
        model: any sequence-to-sequence model; it runs on the device of its parameters.
        src_ids: source id sequences without padding (none empty).
        tgt_ids: target id sequences, aligned with ``src_ids``.
        batch_size: sentences per batch.

    Returns:
        (total_nll, n_tokens): the summed negative log-likelihood in nats and the number of
        scored tokens (sum of len(y) + 1).
    """
    if len(src_ids) != len(tgt_ids):
        raise ValueError(f"{len(src_ids)} source sentences but {len(tgt_ids)} target sentences")
    for i, src in enumerate(src_ids):
        if not src:
            raise ValueError(f"source sentence {i} is empty; the model needs at least one token")
    total_nll, n_tokens = 0.0, 0
    device = _device(model)
    with _eval_mode(model):
        for index in _batches([len(s) for s in src_ids], batch_size):
            src = _pad([src_ids[i] for i in index], device)
            tgt_in = _pad([[SOS] + tgt_ids[i] for i in index], device)  # (B, T)
            tgt_out = _pad([tgt_ids[i] + [EOS] for i in index], device)  # (B, T)
            logits = model(src, tgt_in).float()  # (B, T, V)
            nll = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)),  # (B*T, V)
                tgt_out.reshape(-1),
                ignore_index=PAD,
                reduction="sum",
            )
            total_nll += float(nll)
            n_tokens += int(tgt_out.ne(PAD).sum())
    return total_nll, n_tokens
