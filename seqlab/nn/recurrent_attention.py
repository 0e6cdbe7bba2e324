"""Attention of a recurrent decoder over the encoder states (Bahdanau et al. 2015; Luong et al. 2015).

For decoder state s_i and encoder states h_1 ... h_S::

    score(s_i, h_j) = s_i^T h_j                          dot       (Luong)
                    = s_i^T W h_j                        general   (Luong)
                    = v^T tanh(W_s s_i + W_h h_j)        additive  (Bahdanau, "concat" in Luong)
    a_ij = softmax_j(score(s_i, h_j)),  padding positions j set to -inf before the softmax
    c_i  = sum_j a_ij h_j

The part of each score that depends only on h_j (W h_j, W_h h_j) is computed once per source by
:meth:`RecurrentAttention.keys` and reused at every decoder step. The attentional vector
h~_i = tanh(W_c [c_i; s_i]) belongs to the decoder (it is also used without attention).

Every module takes queries (B, T, H) so the same code serves one decoder step (T = 1) and all
teacher-forced steps at once.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["AdditiveAttention", "DotAttention", "GeneralAttention", "RecurrentAttention", "build_attention"]


class RecurrentAttention(nn.Module):
    """Base class: ``keys`` precomputes, ``score`` compares, ``forward`` masks, normalises and sums."""

    def keys(self, memory: Tensor) -> Tensor:
        """The query-independent part of the score. (B, S, H) -> (B, S, K)."""
        return memory

    def score(self, s: Tensor, keys: Tensor) -> Tensor:
        """score(s_i, h_j). s: (B, T, H), keys: (B, S, K) -> (B, T, S)."""
        raise NotImplementedError

    def forward(
        self, s: Tensor, memory: Tensor, mask: Tensor, keys: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """a_ij = softmax_j(score(s_i, h_j)) over real tokens; c_i = sum_j a_ij h_j.

        Args:
            s: (B, T, H) decoder states s_i.
            memory: (B, S, H) encoder states h_j.
            mask: (B, S) True at real source tokens, False at padding.
            keys: :meth:`keys` of ``memory`` when already computed.

        Returns:
            context c (B, T, H) and weights a (B, T, S); rows sum to one, padding gets exactly 0.
        """
        if keys is None:
            keys = self.keys(memory)
        scores = self.score(s, keys)  # (B, T, S)
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        a = torch.softmax(scores, dim=-1)
        c = torch.bmm(a, memory)  # (B, T, H)
        return c, a


class DotAttention(RecurrentAttention):
    """score(s_i, h_j) = s_i^T h_j (no parameters)."""

    def score(self, s: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(s, keys.transpose(1, 2))  # (B, T, S)


class GeneralAttention(RecurrentAttention):
    """score(s_i, h_j) = s_i^T W h_j, with W h_j computed once per source."""

    def __init__(self, hidden: int):
        super().__init__()
        self.W = nn.Linear(hidden, hidden, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        return self.W(memory)  # (B, S, H)

    def score(self, s: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(s, keys.transpose(1, 2))  # (B, T, S)


_BLOCK_ELEMENTS = 1 << 18
"""Pre-activations of additive attention built at once by the fast path: 2^18 floats, 1 MB."""


class AdditiveAttention(RecurrentAttention):
    """score(s_i, h_j) = v^T tanh(W_s s_i + W_h h_j), with W_h h_j computed once per source.

    :meth:`score_textbook` writes the formula out; :meth:`score` (used) computes the same function
    as 2 v^T sigma(2 W_s s_i + 2 W_h h_j) - sum_a v_a (tanh x = 2 sigma(2x) - 1; PyTorch's CPU
    sigmoid is several times faster than its tanh) over a few batch rows at a time, so the
    (b, T, S, A) pre-activations stay in cache. ``tests/nn/test_recurrent_attention.py`` holds the
    two equal.

    Args:
        hidden: size of s_i and h_j.
        attention_size: size of the tanh layer (defaults to ``hidden``).
    """

    def __init__(self, hidden: int, attention_size: int | None = None):
        super().__init__()
        size = attention_size or hidden
        self.W_s = nn.Linear(hidden, size, bias=False)
        self.W_h = nn.Linear(hidden, size, bias=True)
        self.v = nn.Linear(size, 1, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        return self.W_h(memory)  # (B, S, A)

    def score_textbook(self, s: Tensor, keys: Tensor) -> Tensor:
        """v^T tanh(W_s s_i + W_h h_j) as written: (B, T, H), (B, S, A) -> (B, T, S)."""
        hidden = torch.tanh(self.W_s(s)[:, :, None, :] + keys[:, None, :, :])  # (B, T, S, A)
        return self.v(hidden).squeeze(-1)  # (B, T, S)

    def score(self, s: Tensor, keys: Tensor) -> Tensor:
        """The same scores through sigmoid, built block by block (see the class docstring)."""
        T = s.size(1)
        q2, k2, v = 2.0 * self.W_s(s), 2.0 * keys, self.v.weight[0]  # (B, T, A), (B, S, A), (A,)
        rows = max(1, _BLOCK_ELEMENTS // (T * k2.size(1) * k2.size(2)))
        # split (not slicing): its backward concatenates the blocks' gradients, where slicing would
        # zero-fill a full-size gradient for every block
        blocks = [
            torch.sigmoid(q_b[:, :, None, :] + k_b[:, None, :, :]) @ v  # (b, T, S)
            for q_b, k_b in zip(q2.split(rows), k2.split(rows))
        ]
        return 2.0 * torch.cat(blocks) - v.sum()  # (B, T, S)


def build_attention(kind: str, hidden: int) -> RecurrentAttention:
    """``"dot"``, ``"general"`` or ``"additive"`` attention over states of size ``hidden``."""
    if kind == "dot":
        return DotAttention()
    if kind == "general":
        return GeneralAttention(hidden)
    if kind == "additive":
        return AdditiveAttention(hidden)
    raise ValueError(f"attention must be 'dot', 'general' or 'additive', got {kind!r}")
