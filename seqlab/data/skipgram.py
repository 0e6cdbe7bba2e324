"""Skip-gram training data: a vocabulary, frequent-word subsampling, context windows, negatives.

From a corpus of sentences (one a line), every epoch draws, for the whole token stream at once:

1. **Subsampling** (Mikolov et al. 2013b). Word w with relative frequency f(w) is kept with
   probability ``min(1, (sqrt(f(w) / t) + 1) * t / f(w))``, the formula of the word2vec C tool
   (which gensim uses too; the paper writes the discard probability ``1 - sqrt(t / f(w))``, a
   little more aggressive). ``t = subsample``; 0 keeps every word.
2. **Context windows.** Over the kept tokens of each sentence, centre position i pairs with every
   position i + j, 0 < |j| <= b_i, of the same sentence; b_i = m (``window``) or, with
   ``dynamic_window``, b_i drawn uniformly from 1..m (word2vec's "reduced window": near words count
   more). Pairs are built with one vectorised pass per offset j (2m tensor operations in all).
3. **Shuffle** of all (centre, context) pairs, cut into batches of about ``batch_pairs``.
4. **Negatives** for each batch: K word ids per pair drawn from the noise distribution
   P_n(w) = count(w)^0.75 / sum_w' count(w')^0.75 (searchsorted of uniforms in its CDF).

Everything an epoch draws comes from a ``torch.Generator`` seeded by ``(seed, epoch)`` (and the
negatives of batch p from one seeded by ``(seed, epoch, p)``), so any batch of any epoch can be
rebuilt exactly and a resumed run sees the same batches as an uninterrupted one. Every epoch has
the same number of batches (that of epoch 0); an epoch's pairs are split evenly among them.

The stream is held in memory (two int64 ids per token, about 16 bytes a token, and the pairs of
one epoch); that suits corpora up to some tens of millions of words.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from seqlab.errors import DataError, SeqlabError
from seqlab.io import atomic_write_text

__all__ = [
    "SkipGramBatch",
    "SkipGramBatches",
    "Vocabulary",
    "keep_probabilities",
    "noise_distribution",
    "skipgram_pairs",
    "tokenize",
]

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


def tokenize(line: str, *, lowercase: bool = True) -> list[str]:
    """Words of a line: runs of letters (any script), apostrophes inside a word kept ("o'er").

    Digits and punctuation separate words and are dropped.
    """
    return _WORD.findall(line.lower() if lowercase else line)


@dataclass
class Vocabulary:
    """The words kept for training, most frequent first, with their corpus counts.

    Attributes:
        words: V words; id i is ``words[i]``.
        counts: V counts, non-increasing.
    """

    words: list[str]
    counts: list[int]

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], *, min_count: int = 1, source: str = "corpus") -> Vocabulary:
        """Count the words and keep those seen at least ``min_count`` times (ties sorted by word).

        Raises:
            DataError: no word reaches ``min_count`` (naming ``source``).
        """
        counter = Counter(w for s in sentences for w in s)
        kept = sorted(((w, c) for w, c in counter.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
        if not kept:
            raise DataError(source, None, f"no word occurs at least min_count={min_count} times "
                                          f"({len(counter)} distinct words in all)")
        return cls([w for w, _ in kept], [c for _, c in kept])

    def encode(self, sentences: Iterable[Sequence[str]]) -> tuple[Tensor, Tensor]:
        """The token stream of the in-vocabulary words and the sentence of each token.

        Returns:
            ``(ids, sentence)``: two (N,) int64 tensors.
        """
        ids: list[int] = []
        sentence: list[int] = []
        index = self.index
        for k, words in enumerate(sentences):
            row = [index[w] for w in words if w in index]
            ids.extend(row)
            sentence.extend([k] * len(row))
        return torch.tensor(ids, dtype=torch.long), torch.tensor(sentence, dtype=torch.long)

    def save(self, path: str | Path) -> None:
        """Write ``{"words": [...], "counts": [...]}`` as JSON (atomically)."""
        atomic_write_text(Path(path), json.dumps({"words": self.words, "counts": self.counts}, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        path = Path(path)
        if not path.is_file():
            raise SeqlabError(f"{path}: no vocabulary file (is this a word2vec run folder?)")
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(list(data["words"]), [int(c) for c in data["counts"]])


def keep_probabilities(counts: Sequence[int], sample: float) -> Tensor:
    """P(keep w) = min(1, (sqrt(f / t) + 1) * t / f), f = count(w) / total (word2vec C's formula).

    Args:
        counts: (V,) word counts.
        sample: t; 0 keeps every word.

    Returns:
        (V,) float32 probabilities.
    """
    c = torch.tensor(counts, dtype=torch.float64)
    if sample <= 0:
        return torch.ones(len(c), dtype=torch.float32)
    f = c / c.sum()
    return (((f / sample).sqrt() + 1) * sample / f).clamp(max=1.0).float()


def noise_distribution(counts: Sequence[int], power: float = 0.75) -> Tensor:
    """P_n(w) = count(w)^power / sum_w' count(w')^power, as a (V,) float64 tensor."""
    p = torch.tensor(counts, dtype=torch.float64).pow(power)
    return p / p.sum()


def skipgram_pairs(ids: Tensor, sentence: Tensor, reach: Tensor, window: int) -> tuple[Tensor, Tensor]:
    """All (centre, context) pairs within each centre's reach, inside a sentence.

    Args:
        ids: (N,) token ids of the (subsampled) stream.
        sentence: (N,) sentence number of each token.
        reach: (N,) b_i, how far centre i looks each way (1..window).
        window: m, the largest reach.

    Returns:
        ``(centre, context)``: two (P,) id tensors, grouped by offset (+1, -1, +2, -2, ...).
    """
    centres, contexts = [], []
    for j in range(1, window + 1):
        if j >= len(ids):
            break
        same = sentence[:-j] == sentence[j:]  # (N - j,): tokens i and i + j share a sentence
        right = (same & (reach[:-j] >= j)).nonzero().squeeze(1)  # centre i, context i + j
        left = (same & (reach[j:] >= j)).nonzero().squeeze(1)  # centre i + j, context i
        centres += [ids[right], ids[left + j]]
        contexts += [ids[right + j], ids[left]]
    if not centres:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty
    return torch.cat(centres), torch.cat(contexts)


@dataclass
class SkipGramBatch:
    """B training pairs and their negatives.

    Attributes:
        centre: (B,) ids c. context: (B,) ids o.
        negatives: (B, K) ids drawn from P_n (K = 0 for the full softmax).
    """

    centre: Tensor
    context: Tensor
    negatives: Tensor

    def __len__(self) -> int:
        return len(self.centre)


def _mix(*values: int) -> int:
    """One 63-bit seed from a tuple of integers."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h * 0xBF58476D1CE4E5B9 + v + 1) % (2**63)
    return h


class SkipGramBatches:
    """Skip-gram batches over an encoded corpus, re-drawn each epoch, resumable at any batch.

    Args:
        ids, sentence: the token stream from :meth:`Vocabulary.encode`.
        counts: (V,) word counts (subsampling and the noise distribution).
        window: m. dynamic_window: draw each centre's reach from 1..m.
        subsample: t of :func:`keep_probabilities` (0: off).
        negatives: K per pair (0 for the full softmax).
        noise_power: exponent of the noise distribution (0.75).
        batch_pairs: pairs per batch (every epoch has the batch count of epoch 0).
        seed: seed of every draw.
    """

    def __init__(self, ids: Tensor, sentence: Tensor, counts: Sequence[int], *, window: int = 5,
                 dynamic_window: bool = True, subsample: float = 1e-3, negatives: int = 5,
                 noise_power: float = 0.75, batch_pairs: int = 4096, seed: int = 0):
        if window < 1 or batch_pairs < 1 or negatives < 0:
            raise ValueError(f"need window >= 1, batch_pairs >= 1, negatives >= 0; got {window}, "
                             f"{batch_pairs}, {negatives}")
        self.ids, self.sentence = ids, sentence
        self.window, self.dynamic_window = window, dynamic_window
        self.negatives, self.batch_pairs, self.seed = negatives, batch_pairs, seed
        self.keep = keep_probabilities(counts, subsample)[ids]  # (N,) P(keep) of every token
        self.noise_cdf = noise_distribution(counts, noise_power).cumsum(0).float()  # (V,)
        self._cached: tuple[int, Tensor, Tensor] | None = None
        n_pairs = len(self.epoch_pairs(0)[0])
        if n_pairs == 0:
            raise SeqlabError("the corpus yields no (centre, context) pairs: every sentence has a single "
                              "word after min_count and subsampling")
        self._n_batches = -(-n_pairs // batch_pairs)

    def __len__(self) -> int:
        """Batches per epoch."""
        return self._n_batches

    def epoch_pairs(self, epoch: int) -> tuple[Tensor, Tensor]:
        """The shuffled (centre, context) pairs of ``epoch``: two (P,) tensors."""
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1], self._cached[2]
        g = torch.Generator().manual_seed(_mix(self.seed, epoch))
        kept = (torch.rand(len(self.ids), generator=g) < self.keep).nonzero().squeeze(1)  # (N',)
        ids, sentence = self.ids[kept], self.sentence[kept]
        if self.dynamic_window:
            reach = torch.randint(1, self.window + 1, (len(ids),), generator=g)
        else:
            reach = torch.full((len(ids),), self.window)
        centre, context = skipgram_pairs(ids, sentence, reach, self.window)
        order = torch.randperm(len(centre), generator=g)
        centre, context = centre[order], context[order]
        self._cached = (epoch, centre, context)
        return centre, context

    def batch(self, epoch: int, pos: int) -> SkipGramBatch:
        """Batch ``pos`` of ``epoch``, with its negatives."""
        centre, context = self.epoch_pairs(epoch)
        n = self._n_batches
        start, stop = len(centre) * pos // n, len(centre) * (pos + 1) // n
        c, o = centre[start:stop], context[start:stop]
        g = torch.Generator().manual_seed(_mix(self.seed, epoch, pos))
        u = torch.rand(len(c) * self.negatives, generator=g)
        negatives = torch.searchsorted(self.noise_cdf, u).clamp_(max=len(self.noise_cdf) - 1)
        return SkipGramBatch(c, o, negatives.view(len(c), self.negatives))  # (B, K)

    def iterate(self, start_epoch: int = 0, start_batch: int = 0) -> Iterator[tuple[int, int, SkipGramBatch]]:
        """Yield ``(epoch, pos, batch)`` forever from batch ``start_batch`` of ``start_epoch``."""
        epoch, pos = start_epoch, start_batch
        while True:
            while pos < self._n_batches:
                yield epoch, pos, self.batch(epoch, pos)
                pos += 1
            epoch, pos = epoch + 1, 0
