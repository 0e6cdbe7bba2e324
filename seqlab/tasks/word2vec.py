"""Word2Vec: learn word vectors from plain text with the skip-gram model (``task: word2vec``).

    loss   = sum over the pairs (c, o) of a batch of L(c, o)      (see seqlab/models/word2vec.py)
    dev    = the same loss per pair on ``data.dev`` (optional plain text), epoch 0's draws

Plain text in (one sentence a line; any UTF-8 file, or ``builtin:deixa``, the courses' example),
a :class:`~seqlab.models.word2vec.SkipGram` trained by the one training loop
(:func:`seqlab.training.trainer.train`), so configs, run folders, checkpoints and exact resume
are those of every task. The run folder holds ``vocab.json`` (words and counts) beside the
checkpoints; :func:`load_word_vectors` gives the trained vectors as
:class:`~seqlab.models.word_vectors.WordVectors`.

The trainer minimises the loss *per pair* (the sum divided by the batch's pairs), so
``train.lr`` is word2vec's per-pair rate alpha times ``data.batch_pairs``: alpha = 0.025 with 4096
pairs a batch is ``lr: 102.4``. word2vec's schedule is ``train.optimizer: sgd`` with
``train.schedule: linear`` down to ``min_lr_ratio: 0.004`` (0.0001 / 0.025). The shared
``tokenizer`` section is not used: words are runs of letters (:func:`~seqlab.data.skipgram.tokenize`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from seqlab.config import ExperimentConfig, absolute_data_path
from seqlab.data.deixa import generate_deixa_sentences
from seqlab.data.readers import read_lines
from seqlab.data.skipgram import SkipGramBatch, SkipGramBatches, Vocabulary, tokenize
from seqlab.errors import ConfigError, DataError
from seqlab.models.word2vec import SkipGram
from seqlab.models.word_vectors import WordVectors
from seqlab.tasks.base import TaskData

__all__ = ["SkipGramLoss", "Word2VecConfig", "Word2VecDataConfig", "Word2VecTask", "load_word_vectors",
           "read_sentences"]

VOCAB_FILE = "vocab.json"
BUILTIN_TEXTS = {"builtin:deixa": lambda: generate_deixa_sentences(2000, seed=0)}
"""Built-in corpora accepted as ``data.train`` / ``data.dev``."""


@dataclass
class Word2VecDataConfig:
    """The corpus and how pairs are drawn from it."""

    train: str = "builtin:deixa"
    """A UTF-8 text file, one sentence a line (a window never crosses a line), or ``builtin:deixa``."""
    dev: str | None = None
    """Optional held-out text for the dev loss."""
    lowercase: bool = True
    min_count: int = 5
    """Words seen fewer times are dropped from the corpus before windows are drawn."""
    window: int = 5
    """m: context words on each side of the centre."""
    dynamic_window: bool = True
    """Draw each centre's window from 1..m (word2vec's default), else always m."""
    subsample: float = 1e-3
    """t of frequent-word subsampling (0: off)."""
    batch_pairs: int = 4096

    def check(self, cfg: ExperimentConfig) -> None:
        for key in ("min_count", "window", "batch_pairs"):
            if getattr(self, key) < 1:
                raise ConfigError(f"data.{key}", f"must be at least 1, got {getattr(self, key)}")
        if self.subsample < 0:
            raise ConfigError("data.subsample", f"must be 0 (off) or positive, got {self.subsample}")

    def with_absolute_paths(self) -> Word2VecDataConfig:
        return dataclasses.replace(self, train=absolute_data_path(self.train), dev=absolute_data_path(self.dev))


@dataclass
class Word2VecConfig:
    """The skip-gram model (Mikolov et al. 2013)."""

    type: Literal["word2vec"] = "word2vec"
    dim: int = 100
    """d, the size of the word vectors."""
    objective: Literal["negative_sampling", "softmax"] = "negative_sampling"
    """``softmax``: the full softmax over the vocabulary (small vocabularies only)."""
    negatives: int = 5
    """K noise words per pair (negative sampling)."""
    noise_power: float = 0.75
    """P_n(w) ∝ count(w)^noise_power."""

    @property
    def width(self) -> int:
        return self.dim

    def check(self, cfg: ExperimentConfig) -> None:
        if self.dim < 1:
            raise ConfigError("model.dim", f"must be at least 1, got {self.dim}")
        if self.objective == "negative_sampling" and self.negatives < 1:
            raise ConfigError("model.negatives", f"negative sampling needs at least 1, got {self.negatives}")


def read_sentences(spec: str, *, lowercase: bool) -> list[list[str]]:
    """The words of every non-blank line of a text file (or a built-in corpus).

    Raises:
        DataError: the file is missing, empty, not UTF-8 (naming the line) or has no words.
    """
    lines = BUILTIN_TEXTS[spec]() if spec in BUILTIN_TEXTS else read_lines(spec)
    sentences = [words for words in (tokenize(line, lowercase=lowercase) for line in lines) if words]
    if not sentences:
        raise DataError(spec, None, "no words found; expected plain text, one sentence a line")
    return sentences


class SkipGramLoss(nn.Module):
    """The training objective: the model's loss summed over the batch's pairs.

    forward(batch, step) = (sum of L(c, o), the same detached, B pairs).
    """

    def __init__(self, model: SkipGram):
        super().__init__()
        self.model = model

    def forward(self, batch: SkipGramBatch, *, step: int):
        loss = self.model(batch.centre, batch.context, batch.negatives)
        return loss, loss.detach(), len(batch)


class Word2VecTask:
    """Plain text in, skip-gram word vectors out."""

    data_config = Word2VecDataConfig
    model_configs = {"word2vec": Word2VecConfig}
    metrics = {"loss": "min"}
    best_metric = "loss"

    def __init__(self, cfg: ExperimentConfig):
        self.cfg = cfg

    def _batches(self, sentences: list[list[str]], vocab: Vocabulary, seed: int) -> SkipGramBatches:
        d, m = self.cfg.data, self.cfg.model
        ids, sentence = vocab.encode(sentences)
        return SkipGramBatches(ids, sentence, vocab.counts, window=d.window, dynamic_window=d.dynamic_window,
                               subsample=d.subsample, batch_pairs=d.batch_pairs, seed=seed,
                               negatives=m.negatives if m.objective == "negative_sampling" else 0,
                               noise_power=m.noise_power)

    def prepare(self, run_dir: Path, *, resume: bool) -> TaskData:
        d = self.cfg.data
        sentences = read_sentences(d.train, lowercase=d.lowercase)
        if resume:
            vocab = Vocabulary.load(run_dir / VOCAB_FILE)
        else:
            vocab = Vocabulary.build(sentences, min_count=d.min_count, source=d.train)
            vocab.save(run_dir / VOCAB_FILE)
        batches = self._batches(sentences, vocab, self.cfg.train.seed)
        dev = None
        if d.dev:  # the pairs and negatives of dev's epoch 0, drawn once
            dev_batches = self._batches(read_sentences(d.dev, lowercase=d.lowercase), vocab, seed=0)
            dev = [dev_batches.batch(0, p) for p in range(len(dev_batches))]
        n_words = len(batches.ids)
        return TaskData(batches=batches, dev=dev, text=vocab,
                        description=f"{n_words} words of {len(sentences)} sentences, vocabulary {len(vocab)}, "
                                    f"{len(batches)} batches an epoch")

    def load(self, run_dir: Path) -> TaskData:
        return TaskData(batches=None, dev=None, text=Vocabulary.load(Path(run_dir) / VOCAB_FILE))

    def build_model(self, data: TaskData) -> SkipGram:
        m = self.cfg.model
        return SkipGram(len(data.text), dim=m.dim, objective=m.objective)

    def objective(self, model: SkipGram) -> SkipGramLoss:
        return SkipGramLoss(model)

    def evaluate(self, model: SkipGram, data: TaskData) -> dict[str, float]:
        if not data.dev:
            return {}
        with torch.no_grad():
            total = sum(float(model(b.centre, b.context, b.negatives)) for b in data.dev)
        return {"loss": total / sum(len(b) for b in data.dev)}

    def summary(self, metrics: dict[str, float]) -> str:
        return f"dev loss {metrics['loss']:.4f} per pair"


def load_word_vectors(run_dir: str | Path, *, checkpoint: str = "best") -> WordVectors:
    """The word vectors (rows of W) of a trained word2vec run, at checkpoint ``best`` or ``last``."""
    from seqlab.tasks.run import load_run

    run = load_run(run_dir, checkpoint=checkpoint, task="word2vec")
    return WordVectors(run.data.text.words, run.model.vectors())
