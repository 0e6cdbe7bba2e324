"""Pooling: one vector c (B, d) from encoder states h_1 ... h_T (B, T, d) and their padding mask.

Every pooling reads only the real positions (``mask`` True), so appending padding never changes
the pooled vector (``tests/nn/test_pooling.py`` holds each equal to the same sentence without
padding):

* mean:      c = 1/n sum_{t <= n} h_t                       (n: the real length of the row)
* first:     c = h_1                                        (the first token, e.g. a ``<cls>``-like
  position of a Transformer encoder)
* final:     c = h_n for a left-to-right encoder; for a bidirectional one, whose states are
  [->h_t; <-h_t], c = [->h_n; <-h_1]: each direction's state after reading the whole sentence,
  which equals the recurrent layer's final state of the top layer
* attention: additive attention pooling (Bahdanau et al. 2015's score with a learned query v,
  as in Yang et al. 2016's word attention)::

      e_t = v^T tanh(W h_t + b)
      a_t = softmax_t(e_t)          (over real positions only: padded e_t = -inf)
      c   = sum_t a_t h_t

The first three have no parameters and are functions; :class:`AttentionPooling` owns W, b and v.
:func:`build_pooling` maps a config name to a module taking ``(h, mask)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = [
    "AttentionPooling",
    "FinalPooling",
    "FirstPooling",
    "MeanPooling",
    "POOLINGS",
    "build_pooling",
    "final_pool",
    "first_pool",
    "mean_pool",
]


def mean_pool(h: Tensor, mask: Tensor) -> Tensor:
    """c = 1/n sum_{t<=n} h_t over the real positions.

    Args:
        h: (B, T, d) states. mask: (B, T) bool, True at real tokens (each row has at least one).

    Returns:
        (B, d) pooled vectors.
    """
    m = mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
    return (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def first_pool(h: Tensor, mask: Tensor) -> Tensor:
    """c = h_1. (B, T, d), (B, T) -> (B, d)."""
    del mask  # right-padded: position 1 is always real
    return h[:, 0]


def final_pool(h: Tensor, mask: Tensor, *, bidirectional: bool = False) -> Tensor:
    """c = h_n (left-to-right), or [->h_n; <-h_1] when the last dimension holds both directions.

    Args:
        h: (B, T, d) states; with ``bidirectional`` d = 2H, forward half first.
        mask: (B, T) bool, True at real tokens, right-padded.
        bidirectional: take the backward half at position 1.

    Returns:
        (B, d) pooled vectors.
    """
    last = mask.sum(dim=1).clamp(min=1) - 1  # (B,) index of h_n
    rows = torch.arange(h.size(0), device=h.device)
    h_n = h[rows, last]  # (B, d)
    if not bidirectional:
        return h_n
    H = h.size(-1) // 2
    return torch.cat([h_n[:, :H], h[:, 0, H:]], dim=-1)


class MeanPooling(nn.Module):
    """:func:`mean_pool` as a module."""

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        return mean_pool(h, mask)


class FirstPooling(nn.Module):
    """:func:`first_pool` as a module."""

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        return first_pool(h, mask)


class FinalPooling(nn.Module):
    """:func:`final_pool` as a module.

    Args:
        bidirectional: the encoder's states are [->h_t; <-h_t].
    """

    def __init__(self, *, bidirectional: bool):
        super().__init__()
        self.bidirectional = bidirectional

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        return final_pool(h, mask, bidirectional=self.bidirectional)

    def extra_repr(self) -> str:
        return f"bidirectional={self.bidirectional}"


class AttentionPooling(nn.Module):
    """Additive attention pooling: e_t = v^T tanh(W h_t + b), a = softmax(e), c = sum_t a_t h_t.

    Args:
        d: size of h_t. attention_size: rows of W (the size of tanh(W h_t + b)).
    """

    def __init__(self, *, d: int, attention_size: int):
        super().__init__()
        self.W = nn.Linear(d, attention_size)
        self.v = nn.Linear(attention_size, 1, bias=False)
        self.last_weights: Tensor | None = None
        """(B, T) a_t of the last call (detached), for inspection."""

    def weights(self, h: Tensor, mask: Tensor) -> Tensor:
        """a_t = softmax_t(v^T tanh(W h_t + b)) over the real positions. (B, T, d), (B, T) -> (B, T)."""
        e = self.v(torch.tanh(self.W(h))).squeeze(-1)  # (B, T)
        e = e.masked_fill(~mask, float("-inf"))
        return torch.softmax(e, dim=-1)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        """(B, T, d) states, (B, T) mask -> (B, d) c = sum_t a_t h_t."""
        a = self.weights(h, mask)
        self.last_weights = a.detach()
        return torch.bmm(a.unsqueeze(1), h).squeeze(1)  # (B, 1, T) x (B, T, d) -> (B, d)


POOLINGS = ("mean", "first", "final", "attention")


def build_pooling(name: str, *, d: int, bidirectional: bool = False, attention_size: int | None = None) -> nn.Module:
    """The pooling module ``name`` (one of :data:`POOLINGS`) over states of size ``d``.

    Args:
        name: ``"mean"``, ``"first"``, ``"final"`` or ``"attention"``.
        d: size of h_t.
        bidirectional: for ``"final"``: the states are [->h_t; <-h_t].
        attention_size: for ``"attention"``: rows of W (default ``d``).
    """
    if name == "mean":
        return MeanPooling()
    if name == "first":
        return FirstPooling()
    if name == "final":
        return FinalPooling(bidirectional=bidirectional)
    if name == "attention":
        return AttentionPooling(d=d, attention_size=attention_size or d)
    raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {name!r}")
