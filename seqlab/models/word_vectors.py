"""Trained word vectors and the two questions asked of them: nearest neighbours and analogies.

Both rank words by cosine similarity, cos(x, y) = x^T y / (||x|| ||y||):

    similar(w)        = the k words w' != w with the largest cos(x_w', x_w)
    analogy(a, b, c)  = the k words w not in {a, b, c} with the largest cos(x_w, x_b - x_a + x_c)

with the vectors normalised to unit length first (so "king - man + woman" adds directions, not
lengths), as in word2vec's ``compute-accuracy`` and gensim's ``most_similar``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from seqlab.errors import SeqlabError
from seqlab.nn.embeddings import load_word2vec_text, save_word2vec_text

__all__ = ["WordVectors"]


class WordVectors:
    """Words and their vectors, queried by cosine similarity.

    Args:
        words: V distinct words.
        vectors: (V, d) tensor; row i belongs to ``words[i]``.
    """

    def __init__(self, words: Sequence[str], vectors: Tensor):
        if len(words) != vectors.shape[0]:
            raise ValueError(f"{len(words)} words but {vectors.shape[0]} vectors")
        self.words = list(words)
        self.vectors = vectors.detach().float()
        self.index = {w: i for i, w in enumerate(self.words)}
        self._unit = self.vectors / self.vectors.norm(dim=1, keepdim=True).clamp(min=1e-12)  # (V, d)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> Tensor:
        return self.vectors[self._id(word)]

    def _id(self, word: str) -> int:
        if word not in self.index:
            raise SeqlabError(f"'{word}' is not in the vocabulary ({len(self.words)} words; the words kept "
                              "were those seen at least data.min_count times, lowercased if data.lowercase)")
        return self.index[word]

    def _nearest(self, query: Tensor, exclude: list[int], k: int) -> list[tuple[str, float]]:
        cos = self._unit @ (query / query.norm().clamp(min=1e-12))  # (V,)
        cos[exclude] = -float("inf")
        k = min(k, len(self.words) - len(exclude))
        top = torch.topk(cos, k)
        return [(self.words[i], float(s)) for s, i in zip(top.values.tolist(), top.indices.tolist())]

    def similar(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` nearest words to ``word`` by cosine similarity, with their similarities."""
        i = self._id(word)
        return self._nearest(self._unit[i], [i], k)

    def analogy(self, a: str, b: str, c: str, k: int = 10) -> list[tuple[str, float]]:
        """Words w closest to x_b - x_a + x_c ("a is to b as c is to w"), a, b and c excluded."""
        ia, ib, ic = self._id(a), self._id(b), self._id(c)
        query = self._unit[ib] - self._unit[ia] + self._unit[ic]
        return self._nearest(query, [ia, ib, ic], k)

    def save(self, path: str | Path) -> None:
        """Write the word2vec text format (read by gensim's ``KeyedVectors.load_word2vec_format``)."""
        save_word2vec_text(path, self.words, self.vectors)

    @classmethod
    def load(cls, path: str | Path) -> WordVectors:
        """Read a word2vec text file (:func:`~seqlab.nn.embeddings.load_word2vec_text`)."""
        table = load_word2vec_text(path)
        return cls(list(table), torch.stack(list(table.values())))
