"""Word2Vec skip-gram (Mikolov et al. 2013a, b): predict the words around a word.

Every word w has two vectors: the **centre** vector v_w (row w of W, used when w is the centre
word c) and the **context** vector u_w (row w of U, used when w is in the window of a centre).
For a centre word c and a context word o within the window m:

Full softmax (small vocabularies; the cost of one pair grows with V)::

    p(o | c) = exp(u_o^T v_c) / sum_{w=1..V} exp(u_w^T v_c)
    L(c, o)  = -log p(o | c) = -u_o^T v_c + log sum_w exp(u_w^T v_c)

Negative sampling (real vocabularies; K noise words k ~ P_n(w) ∝ count(w)^0.75 per pair)::

    L(c, o) = -log sigma(u_o^T v_c) - sum_{k=1..K} log sigma(-u_k^T v_c)

Both are summed over the pairs of a batch. The word vectors are the rows of W (as in word2vec
and gensim). Initialisation as word2vec: W uniform in [-0.5/d, 0.5/d], U zero.

Two paths compute the negative-sampling loss: :meth:`SkipGram.negative_sampling_loss` writes the
equation with autograd; :func:`seqlab.nn.negative_sampling.negative_sampling_loss_fused` computes
the same loss with its gradient in closed form, and is what ``forward`` uses.
``tests/models/test_word2vec.py`` holds the two equal to a per-pair loop, loss and gradients.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.nn.negative_sampling import negative_sampling_loss_fused

__all__ = ["SkipGram"]


class SkipGram(nn.Module):
    """Centre vectors W (V, d) and context vectors U (V, d), trained by one of two objectives.

    Args:
        vocab_size: V.
        dim: d.
        objective: ``"negative_sampling"`` or ``"softmax"`` (what ``forward`` computes).
    """

    def __init__(self, vocab_size: int, *, dim: int = 100,
                 objective: Literal["negative_sampling", "softmax"] = "negative_sampling"):
        super().__init__()
        if objective not in ("negative_sampling", "softmax"):
            raise ValueError(f"unknown objective {objective!r}")
        self.objective = objective
        self.W = nn.Parameter(torch.empty(vocab_size, dim))  # v_w, centre vectors
        self.U = nn.Parameter(torch.empty(vocab_size, dim))  # u_w, context vectors
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """W ~ U(-0.5/d, 0.5/d), U = 0 (word2vec's initialisation)."""
        d = self.W.shape[1]
        with torch.no_grad():
            self.W.uniform_(-0.5 / d, 0.5 / d)
            self.U.zero_()

    @property
    def vocab_size(self) -> int:
        return self.W.shape[0]

    @property
    def dim(self) -> int:
        return self.W.shape[1]

    def softmax_loss(self, centre: Tensor, context: Tensor) -> Tensor:
        """sum over pairs of -log p(o | c), p(o | c) = softmax_o(U v_c).

        Args:
            centre: (B,) ids c. context: (B,) ids o.
        """
        v = self.W[centre]  # (B, d)
        scores = v @ self.U.T  # (B, V): u_w^T v_c for every w
        return F.cross_entropy(scores, context, reduction="sum")

    def negative_sampling_loss(self, centre: Tensor, context: Tensor, negatives: Tensor) -> Tensor:
        """sum over pairs of -log sigma(u_o^T v_c) - sum_k log sigma(-u_k^T v_c), with autograd.

        A noise word equal to the pair's context word is left out (as in word2vec).

        Args:
            centre: (B,) ids c. context: (B,) ids o. negatives: (B, K) noise ids.
        """
        v = self.W[centre]  # (B, d)
        u_o = self.U[context]  # (B, d)
        u_k = self.U[negatives]  # (B, K, d)
        positive = F.logsigmoid((u_o * v).sum(-1))  # (B,)
        noise = F.logsigmoid(-(u_k @ v.unsqueeze(2)).squeeze(2))  # (B, K)
        noise = noise * (negatives != context.unsqueeze(1))
        return -(positive.sum() + noise.sum())

    def forward(self, centre: Tensor, context: Tensor, negatives: Tensor) -> Tensor:
        """The configured objective, summed over the B pairs (negatives unused by the softmax).

        Args:
            centre: (B,) ids. context: (B,) ids. negatives: (B, K) ids.
        """
        if self.objective == "softmax":
            return self.softmax_loss(centre, context)
        return negative_sampling_loss_fused(self.W, self.U, centre, context, negatives)

    def vectors(self) -> Tensor:
        """The word vectors: W, (V, d), detached."""
        return self.W.detach()
