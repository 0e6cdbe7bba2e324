"""Sequence classification: a text in, one of C classes out (sentiment, topic, intent, ...).

    loss = sum_i -log p(y_i | x_i)       label-smoothed (``train.label_smoothing``), over the examples
    loss = sum_i -sum_c q_ic log p(c | x_i)   with soft targets from scores (``data.soft_target_tau``):
           q_i,positive = sigmoid((s_i - threshold) / tau),  q_i,negative = 1 - q_i,positive
    dev  = accuracy, macro-F1 and the mean NLL per example (:mod:`seqlab.evaluation.classification`)

Data are CSV/TSV files with a header (``data.text_column``, ``data.label_column``; a numeric score
becomes two classes with ``data.threshold``) or the built-in generated sentiment task
(:mod:`seqlab.data.labelled`). The class names are fixed from the training data when a run starts
and saved as ``labels.json`` in the run folder, beside ``tokenizer.json``. Every input is
``<sos> x_1 ... x_n`` (at most ``data.max_len`` tokens of text): the ``<sos>`` position is the
classification token that ``pooling: first`` reads. Batches are token-budget batches of similar
length from :class:`~seqlab.data.batching.TokenBatcher`, shuffled per (seed, epoch), so a resumed
run sees the same batches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.config import ExperimentConfig, absolute_data_path, positive
from seqlab.data.batching import TokenBatcher
from seqlab.data.labelled import LabelledData, LabelSet, read_labelled
from seqlab.errors import ConfigError
from seqlab.evaluation.classification import ClassificationResult, predict_batches, score_predictions
from seqlab.models.classifier import (
    RecurrentClassifierConfig,
    SequenceClassifier,
    TransformerClassifierConfig,
    build_classifier,
)
from seqlab.tasks.base import TaskData
from seqlab.text.specials import SOS
from seqlab.text.tokenizer import Tokenizer, train_tokenizer

__all__ = [
    "ClassificationDataConfig",
    "ClassificationLoss",
    "ClassificationTask",
    "ClassificationText",
    "LabelledBatch",
    "LabelledBatches",
    "encode_texts",
    "evaluate_classifier",
    "soft_targets",
]

TOKENIZER_FILE = "tokenizer.json"


@dataclass
class ClassificationDataConfig:
    """Where the labelled texts come from and how to read them.

    ``train``/``dev``/``test`` are CSV/TSV paths with a header, or ``builtin:synthetic-sentiment``
    (``-dev``, ``-test``), the generated sentiment task (no download).
    """

    train: str = "builtin:synthetic-sentiment"
    dev: str | None = "builtin:synthetic-sentiment-dev"
    test: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    delimiter: str | None = None
    """Field separator; null: from the extension (``.tsv`` tab, ``.csv`` comma)."""
    threshold: float | None = None
    """Read the label column as numbers: score > threshold is ``positive``, else ``negative``."""
    max_len: int = 256
    """Tokens of text kept per example (longer texts are cut)."""
    soft_target_tau: float | None = positive(None)
    """Train on soft targets from the scores (needs ``threshold``): the target probability of
    ``positive`` is q = sigmoid((score - threshold) / tau), so a score near the threshold, whose
    sign is the least certain, asks for a prediction near 1/2; tau -> 0 is the hard label. null:
    the hard labels. Evaluation always scores the hard (thresholded) labels."""

    def check(self, cfg: ExperimentConfig) -> None:
        if self.max_len < 1:
            raise ConfigError("data.max_len", f"must be at least 1, got {self.max_len}")
        if self.soft_target_tau is not None and self.threshold is None:
            raise ConfigError("data.soft_target_tau", "needs numeric scores: set data.threshold")
        if self.max_len + 1 > cfg.model.max_positions:
            raise ConfigError("data.max_len", f"{self.max_len} tokens plus <sos> need more than "
                              f"model.max_positions={cfg.model.max_positions}")
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise ConfigError("data.delimiter", f"expected one character, got {self.delimiter!r}")

    def with_absolute_paths(self) -> ClassificationDataConfig:
        """This section with file paths made absolute, so ``--resume`` works from any directory."""
        return dataclasses.replace(self, train=absolute_data_path(self.train), dev=absolute_data_path(self.dev),
                                   test=absolute_data_path(self.test))

    def read(self, spec: str) -> LabelledData:
        """Read one data file (or built-in name) with this section's columns, delimiter and threshold."""
        return read_labelled(spec, text_column=self.text_column, label_column=self.label_column,
                             delimiter=self.delimiter, threshold=self.threshold)


@dataclass
class ClassificationText:
    """The run's tokenizer and class names."""

    tokenizer: Tokenizer
    labels: LabelSet


def encode_texts(tokenizer: Tokenizer, texts: Sequence[str], max_len: int) -> list[list[int]]:
    """``<sos> x_1 ... x_n`` ids of every text, with at most ``max_len`` text tokens."""
    return [[SOS, *ids[:max_len]] for ids in tokenizer.encode_batch(list(texts))]


def soft_targets(scores: Sequence[float], *, threshold: float, tau: float) -> Tensor:
    """(N, 2) target distributions over (negative, positive): q_pos = sigmoid((s - threshold) / tau)."""
    q = torch.sigmoid((torch.as_tensor(list(scores), dtype=torch.float32) - threshold) / tau)  # (N,) q_positive
    return torch.stack([1.0 - q, q], dim=-1)


@dataclass
class LabelledBatch:
    """tokens (B, T) right-padded ids; labels (B,) class ids; targets (B, C) soft targets or None."""

    tokens: Tensor
    labels: Tensor
    targets: Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)


class LabelledBatches:
    """Token-budget batches of (ids, class) examples, shuffled per (seed, epoch), resumable.

    The batching is :class:`~seqlab.data.batching.TokenBatcher`'s over the inputs (with empty
    targets); each batch's rows carry the class ids of their examples, and their soft targets
    (N, C) when ``targets`` is given.
    """

    def __init__(self, ids: Sequence[Sequence[int]], labels: Sequence[int], *, batch_tokens: int, seed: int,
                 targets: Tensor | None = None):
        self._batcher = TokenBatcher([(x, []) for x in ids], batch_tokens=batch_tokens, shuffle=True, seed=seed)
        self.labels = torch.as_tensor(list(labels), dtype=torch.long)
        if targets is not None and targets.shape[0] != len(self.labels):
            raise ValueError(f"{targets.shape[0]} soft targets for {len(self.labels)} examples")
        self.targets = targets

    def __len__(self) -> int:
        return len(self._batcher)

    def iterate(self, start_epoch: int = 0, start_batch: int = 0) -> Iterator[tuple[int, int, LabelledBatch]]:
        """``(epoch, pos, batch)`` forever; see :meth:`TokenBatcher.iterate`."""
        for epoch, pos, batch in self._batcher.iterate(start_epoch, start_batch):
            targets = None if self.targets is None else self.targets[batch.index]  # (B, C)
            yield epoch, pos, LabelledBatch(batch.src, self.labels[batch.index], targets)


class ClassificationLoss(nn.Module):
    """Cross-entropy of the classifier over a batch, summed over its examples.

    forward(batch) = (sum_i CE_eps(z_i, t_i), sum_i -log p(y_i | x_i), B) with z = model(tokens),
    t_i the batch's soft target q_i when it has them, else the label y_i, and CE_eps the
    cross-entropy against targets smoothed by ``label_smoothing``. The NLL is the hard labels'.
    """

    def __init__(self, model: SequenceClassifier, *, label_smoothing: float):
        super().__init__()
        self.model, self.label_smoothing = model, label_smoothing

    def forward(self, batch: LabelledBatch, *, step: int) -> tuple[Tensor, Tensor, int]:
        del step  # the classification loss does not change during training
        logits = self.model(batch.tokens)  # (B, C)
        target = batch.labels if batch.targets is None else batch.targets
        loss_sum = F.cross_entropy(logits, target, reduction="sum", label_smoothing=self.label_smoothing)
        nll_sum = F.cross_entropy(logits.detach(), batch.labels, reduction="sum")
        return loss_sum, nll_sum, len(batch)


def evaluate_classifier(model: SequenceClassifier, text: ClassificationText, data: LabelledData, *,
                        max_len: int) -> tuple[ClassificationResult, float]:
    """Score ``model`` on labelled ``data``: the metrics and the mean NLL per example.

    Raises:
        DataError: naming the file and line of a label the run does not know.
    """
    gold = text.labels.encode(data)
    probs = predict_batches(model, encode_texts(text.tokenizer, data.texts, max_len))  # (N, C)
    p, predicted = probs.max(dim=-1)
    nll = -probs[torch.arange(len(gold)), torch.as_tensor(gold)].clamp(min=1e-12).log().mean()
    result = score_predictions(gold, predicted.tolist(), p.tolist(), text.labels.names)
    return result, float(nll)


class ClassificationTask:
    """Labelled texts in, a :class:`~seqlab.models.classifier.SequenceClassifier` trained on them."""

    data_config = ClassificationDataConfig
    model_configs = {"lstm": RecurrentClassifierConfig, "gru": RecurrentClassifierConfig,
                     "rnn": RecurrentClassifierConfig, "transformer": TransformerClassifierConfig}
    metrics = {"accuracy": "max", "macro_f1": "max", "loss": "min"}
    best_metric = "accuracy"

    def __init__(self, cfg: ExperimentConfig):
        self.cfg = cfg

    def prepare(self, run_dir: Path, *, resume: bool) -> TaskData:
        cfg, data_cfg = self.cfg, self.cfg.data
        train = data_cfg.read(data_cfg.train)
        dev = data_cfg.read(data_cfg.dev) if data_cfg.dev else None
        if resume:
            text = self.load(run_dir).text
        else:
            labels = LabelSet.from_data(train, thresholded=data_cfg.threshold is not None)
            text = ClassificationText(train_tokenizer(train.texts, cfg.tokenizer), labels)
            text.tokenizer.save(Path(run_dir) / TOKENIZER_FILE)
            labels.save(run_dir)
        gold = text.labels.encode(train)
        if dev is not None:
            text.labels.encode(dev)  # an unknown dev label fails now, not at the first evaluation
        ids = encode_texts(text.tokenizer, train.texts, data_cfg.max_len)
        targets = None
        if data_cfg.soft_target_tau is not None:
            if train.scores is None:
                raise ConfigError("data.soft_target_tau", f"{train.source} has no numeric scores to soften")
            targets = soft_targets(train.scores, threshold=data_cfg.threshold, tau=data_cfg.soft_target_tau)
        batches = LabelledBatches(ids, gold, batch_tokens=cfg.train.batch_tokens, seed=cfg.train.seed,
                                  targets=targets)
        counts = torch.bincount(torch.as_tensor(gold), minlength=len(text.labels)).tolist()
        classes = ", ".join(f"{n} {name}" for name, n in zip(text.labels.names, counts))
        return TaskData(batches=batches, dev=dev, text=text,
                        description=f"{len(train)} training texts ({classes}) in {len(batches)} batches, "
                                    f"vocab {text.tokenizer.vocab_size}")

    def load(self, run_dir: Path) -> TaskData:
        tokenizer = Tokenizer.load(Path(run_dir) / TOKENIZER_FILE)
        return TaskData(batches=None, dev=None, text=ClassificationText(tokenizer, LabelSet.load(run_dir)))

    def build_model(self, data: TaskData) -> SequenceClassifier:
        tok = data.text.tokenizer
        vocab = [tok.id_to_token(i) for i in range(tok.vocab_size)]
        return build_classifier(self.cfg.model, tok.vocab_size, len(data.text.labels), vocab=vocab)

    def objective(self, model: SequenceClassifier) -> ClassificationLoss:
        return ClassificationLoss(model, label_smoothing=self.cfg.train.label_smoothing)

    def evaluate(self, model: SequenceClassifier, data: TaskData) -> dict[str, float]:
        if data.dev is None:
            return {}
        result, nll = evaluate_classifier(model, data.text, data.dev, max_len=self.cfg.data.max_len)
        return {"accuracy": result.accuracy, "macro_f1": result.macro_f1, "loss": nll}

    def summary(self, metrics: dict[str, float]) -> str:
        return (f"dev accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
                f"loss {metrics['loss']:.4f}")
