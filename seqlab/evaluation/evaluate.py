"""Evaluate a translation model on parallel text: BLEU, chrF (sacrebleu, detokenised) and perplexity."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from seqlab.config import DecodeConfig
from seqlab.decoding.generate import translate_batch
from seqlab.evaluation.metrics import bleu, chrf, perplexity, teacher_forced_nll
from seqlab.models.base import Seq2SeqModel
from seqlab.text.pair import TokenizerPair

__all__ = ["EvalResult", "encode_sources", "evaluate_pairs"]


@dataclass
class EvalResult:
    """Corpus-level scores and the hypotheses they were computed from."""

    bleu: float
    chrf: float
    perplexity: float
    nll_per_token: float
    sentences: int
    hypotheses: list[str] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        return {"bleu": self.bleu, "chrf": self.chrf, "perplexity": self.perplexity,
                "nll_per_token": self.nll_per_token, "sentences": self.sentences}


def encode_sources(tokenizers: TokenizerPair, sentences: list[str], limit: int) -> list[list[int]]:
    """Token ids of each source sentence, cut to ``limit`` tokens (the model's maximum length)."""
    return [ids[:limit] for ids in tokenizers.src.encode_batch(sentences)]


@torch.inference_mode()
def evaluate_pairs(model: Seq2SeqModel, tokenizers: TokenizerPair, pairs: list[tuple[str, str]],
                   settings: DecodeConfig, *, batch_size: int = 64, with_nll: bool = True,
                   decode=None) -> EvalResult:
    """Translate ``pairs``' sources and score them against the references.

    BLEU and chrF compare detokenised hypotheses with the raw reference strings (sacrebleu's
    default 13a tokenisation), so figures are comparable with other systems. Perplexity is
    exp(-1/N sum_t log p(y_t | y_<t, x)) over the reference tokens, EOS included. ``settings``
    are the generation settings of the hypotheses (:func:`~seqlab.decoding.generate.translate_batch`).

    ``decode(src_ids, settings, batch_size=...)`` replaces :func:`translate_batch` on ``model``
    (same output), for decoding through another engine (:mod:`seqlab.export.engines`).
    """
    was_training = model.training
    model.eval()
    try:
        limit = model.max_positions - 1
        src_ids = encode_sources(tokenizers, [s for s, _ in pairs], limit)
        if decode is None:
            out = translate_batch(model, src_ids, settings, batch_size=batch_size)
        else:
            out = decode(src_ids, settings, batch_size=batch_size)
        hyps = [tokenizers.tgt.decode(toks) for toks in out.tokens]
        refs = [t for _, t in pairs]
        nll, n = 0.0, 0
        if with_nll:
            tgt_ids = [ids[:limit] for ids in tokenizers.tgt.encode_batch(refs)]
            nll, n = teacher_forced_nll(model, src_ids, tgt_ids, batch_size=batch_size)
        return EvalResult(
            bleu=bleu(hyps, refs), chrf=chrf(hyps, refs),
            perplexity=perplexity(nll, n) if n else float("nan"),
            nll_per_token=nll / n if n else float("nan"),
            sentences=len(pairs), hypotheses=hyps,
        )
    finally:
        model.train(was_training)
