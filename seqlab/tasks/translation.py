"""Translation: sequence-to-sequence on parallel text, the task every run folder without ``task`` is.

    loss   = sum_t -log p(y_t | y_<t, x)    label-smoothed, over the real target tokens
    dev    = greedy BLEU and chrF on the first ``data.dev_size`` pairs; loss and perplexity on all

Batches come from :class:`~seqlab.data.batching.TokenBatcher` (token budget, length buckets,
shuffled per (seed, epoch)); the objective runs the output layer fused with the softmax
(:func:`~seqlab.training.loss.output_layer_nll`) and, for recurrent models, scheduled sampling.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from pathlib import Path

from torch import nn

from seqlab.config import DataConfig, ExperimentConfig, RecurrentConfig, TrainConfig, TransformerConfig
from seqlab.data.batching import Batch, TokenBatcher
from seqlab.data.readers import read_parallel
from seqlab.errors import SeqlabError
from seqlab.evaluation.evaluate import evaluate_pairs
from seqlab.evaluation.metrics import teacher_forced_nll
from seqlab.models.base import Seq2SeqModel
from seqlab.models.build import build_model
from seqlab.tasks.base import TaskData
from seqlab.text.pair import TokenizerPair
from seqlab.training.loss import output_layer_nll
from seqlab.training.schedule import teacher_forcing_ratio

__all__ = ["TeacherForcedLoss", "TranslationTask", "load_corpus"]


def load_corpus(spec, cfg: ExperimentConfig) -> list[tuple[str, str]]:
    """Read one ``data`` entry with the config's format, error policy and direction."""
    return read_parallel(spec, format=cfg.data.format, on_error=cfg.data.on_error, reverse=cfg.data.reverse)


def _encode_filtered(tokenizers: TokenizerPair, pairs, max_len: int, label: str, fit_source=None) -> list:
    """Token ids of each pair, dropping pairs longer than ``max_len`` tokens (with a warning).

    ``fit_source(ids, limit)``, when given, first cuts each source to ``max_len`` ids its own way
    (a chat context loses its oldest turns).
    """
    encoded = tokenizers.encode_pairs(pairs)
    if fit_source is not None:
        encoded = [(fit_source(s, max_len), t) for s, t in encoded]
    kept = [(s, t) for s, t in encoded if 0 < len(s) <= max_len and 0 < len(t) <= max_len]
    if len(kept) < len(encoded):
        warnings.warn(f"{label}: skipped {len(encoded) - len(kept)} of {len(encoded)} pairs longer than "
                      f"data.max_len={max_len} tokens (or empty after tokenisation)", stacklevel=2)
    if not kept:
        raise SeqlabError(f"{label}: no training pairs left after filtering by data.max_len={max_len}")
    return kept


def _vocab(tokenizer) -> list[str]:
    return [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)]


class TeacherForcedLoss(nn.Module):
    """The training objective of a :class:`Seq2SeqModel`: label-smoothed NLL under teacher forcing.

    forward(batch, step) = output_layer_nll(model.features(src, tgt_in), W_out, tgt_out), with the
    scheduled-sampling ratio of ``step`` (:func:`teacher_forcing_ratio`).

    Args:
        model: the sequence-to-sequence model (its ``features`` and ``output_layer``).
        train: ``label_smoothing`` and the teacher-forcing schedule.
    """

    def __init__(self, model: Seq2SeqModel, *, train: TrainConfig):
        super().__init__()
        self.model, self.train_cfg = model, train

    def forward(self, batch: Batch, *, step: int):
        """Returns (loss sum, NLL sum, real target tokens) of ``batch`` (see :mod:`seqlab.training.loss`)."""
        ratio = teacher_forcing_ratio(step, self.train_cfg)
        h = self.model.features(batch.src, batch.tgt_in, teacher_forcing=ratio)  # (B, T, d)
        out = self.model.output_layer
        return output_layer_nll(h, out.weight, out.bias, batch.tgt_out, epsilon=self.train_cfg.label_smoothing)


class TranslationTask:
    """Parallel text in, a :class:`Seq2SeqModel` (Transformer or recurrent) trained on it."""

    data_config = DataConfig
    model_configs = {"transformer": TransformerConfig, "rnn": RecurrentConfig, "lstm": RecurrentConfig,
                     "gru": RecurrentConfig}
    metrics = {"bleu": "max", "chrf": "max", "loss": "min", "ppl": "min"}
    best_metric = "bleu"

    def __init__(self, cfg: ExperimentConfig):
        self.cfg = cfg

    def read_pairs(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(training pairs, dev pairs) as text."""
        cfg = self.cfg
        return load_corpus(cfg.data.train, cfg), load_corpus(cfg.data.dev, cfg) if cfg.data.dev else []

    def fit_source(self, tokenizers: TokenizerPair) -> Callable[[list[int], int], list[int]] | None:
        """How a too-long source is cut to a limit before filtering; None drops the pair (translation)."""
        return None

    def prepare(self, run_dir: Path, *, resume: bool) -> TaskData:
        cfg = self.cfg
        train_pairs, dev_pairs = self.read_pairs()
        if resume:
            tokenizers = TokenizerPair.load(run_dir)
        else:
            tokenizers = TokenizerPair.train(train_pairs, cfg.tokenizer)
            tokenizers.save(run_dir)
        fit = self.fit_source(tokenizers)
        examples = _encode_filtered(tokenizers, train_pairs, cfg.data.max_len, str(cfg.data.train), fit)
        batcher = TokenBatcher(examples, batch_tokens=cfg.train.batch_tokens, shuffle=True, seed=cfg.train.seed)
        dev = None
        if dev_pairs:  # ids encoded once, for the dev loss of every evaluation
            encoded = _encode_filtered(tokenizers, dev_pairs, cfg.model.max_positions - 1,
                                       str(cfg.data.dev or "the held-out dev data"), fit)
            dev = {"bleu_pairs": dev_pairs[: cfg.data.dev_size],
                   "ids": ([s for s, _ in encoded], [t for _, t in encoded])}
        return TaskData(batches=batcher, dev=dev, text=tokenizers,
                        description=f"{len(examples)} training pairs in {len(batcher)} batches, vocab "
                                    f"{tokenizers.src.vocab_size}/{tokenizers.tgt.vocab_size}")

    def load(self, run_dir: Path) -> TaskData:
        return TaskData(batches=None, dev=None, text=TokenizerPair.load(run_dir))

    def build_model(self, data: TaskData) -> Seq2SeqModel:
        tok = data.text
        return build_model(self.cfg.model, tok.src.vocab_size, tok.tgt.vocab_size,
                           src_vocab=_vocab(tok.src), tgt_vocab=_vocab(tok.tgt))

    def objective(self, model: Seq2SeqModel) -> TeacherForcedLoss:
        return TeacherForcedLoss(model, train=self.cfg.train)

    def evaluate(self, model: Seq2SeqModel, data: TaskData) -> dict[str, float]:
        if data.dev is None:
            return {}
        # greedy search within the run's length limits and processors
        settings = dataclasses.replace(self.cfg.decode, strategy="greedy", temperature=None, top_k=None, top_p=None,
                                       n_best=1, seed=None)
        result = evaluate_pairs(model, data.text, data.dev["bleu_pairs"], settings, with_nll=False)
        nll, n = teacher_forced_nll(model, *data.dev["ids"])
        return {"bleu": result.bleu, "chrf": result.chrf, "loss": nll / n, "ppl": math.exp(nll / n)}

    def summary(self, metrics: dict[str, float]) -> str:
        return (f"dev loss {metrics['loss']:.3f}, ppl {metrics['ppl']:.2f}, BLEU {metrics['bleu']:.2f}, "
                f"chrF {metrics['chrf']:.2f}")
