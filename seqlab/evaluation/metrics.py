"""Corpus metrics (BLEU, chrF, perplexity) and the model passes that feed them.

* :func:`bleu` and :func:`chrf` score detokenised text with sacrebleu (corpus level, default
  ``13a`` tokenisation), so numbers are comparable with published ones.
* :func:`perplexity` is exp(total NLL / tokens).
* :func:`teacher_forced_nll` sums -log p(y_t | y_<t, x) over every target token, ``<eos>``
  included, which is what perplexity and the dev loss need.

The pass runs in eval mode (the previous mode is restored) under ``torch.inference_mode()``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import sacrebleu
import torch.nn.functional as F

from seqlab.config import DecodeConfig
from seqlab.decoding.generate import (
    eval_mode,
    length_sorted_batches,
    model_device,
    pad_rows,
)
from seqlab.decoding.generate import translate_batch as _translate_batch
from seqlab.decoding.greedy import DecodeOutput
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


def translate_batch(model: Seq2SeqModel, src_ids: list[list[int]], *, beam: int, length_penalty: float,
                    max_len_ratio: float, max_len_offset: int, batch_size: int = 64, n_best: int = 1,
                    return_attention: bool = False) -> DecodeOutput:
    """The former keyword form, kept for callers written before generation settings existed.

    Decodes with beam search of size ``beam`` (greedy search for beam 1) through
    :func:`seqlab.decoding.generate.translate_batch`, which new code should call with a
    :class:`~seqlab.config.DecodeConfig`.
    """
    settings = DecodeConfig(strategy="beam", beam=beam, length_penalty=length_penalty, max_len_ratio=max_len_ratio,
                            max_len_offset=max_len_offset, n_best=n_best)
    return _translate_batch(model, src_ids, settings, batch_size=batch_size, return_attention=return_attention)


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
    device = model_device(model)
    with eval_mode(model):
        for index in length_sorted_batches([len(s) for s in src_ids], batch_size):
            src = pad_rows([src_ids[i] for i in index], device)
            tgt_in = pad_rows([[SOS] + tgt_ids[i] for i in index], device)  # (B, T)
            tgt_out = pad_rows([tgt_ids[i] + [EOS] for i in index], device)  # (B, T)
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
