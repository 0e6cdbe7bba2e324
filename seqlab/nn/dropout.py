"""Inverted dropout (Srivastava et al. 2014), with a cheaper random mask than ``nn.Dropout``'s.

    m_i ~ Bernoulli(1 - p)        y_i = x_i * m_i / (1 - p)        (training)
    y = x                                                          (evaluation)

Dividing by 1 - p keeps E[y_i] = x_i, so nothing changes at test time.

Why not ``torch.nn.Dropout``: on the CPU its mask comes from ``Tensor.bernoulli_``, which costs
about 7 ns per element here (2.1 ms for a 64 x 16 x 256 activation), about 10% of a whole bf16
Transformer training step. This module draws the mask from 16-bit uniform integers instead: one
32-bit draw of the generator gives two 16-bit halves, of which the low 15 bits are compared with a
threshold (0.6 ms for the same tensor). The drop probability is therefore rounded to a multiple of
2^-15, p' = round(p * 2^15) / 2^15 (0.1 becomes 0.100006), and the kept values are scaled by
1 / (1 - p') so the expectation is still exact. The mask uses PyTorch's default generator, so
``torch.manual_seed`` and a saved RNG state reproduce it like any other random op.
``tests/nn/test_dropout.py`` checks the drop rate, the scaling, the gradient and reproducibility.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Dropout", "dropout", "effective_p"]

_LEVELS = 1 << 15
"""The mask compares 15-bit uniform integers u in [0, 2^15) with a threshold: dropped if u < t."""


def effective_p(p: float) -> float:
    """The drop probability actually used, p' = round(p * 2^15) / 2^15."""
    return round(p * _LEVELS) / _LEVELS


def _uniform15(shape: torch.Size, device) -> Tensor:
    """Integers uniform on [0, 2^15), int16, of the given shape: two per 32-bit draw."""
    n = shape.numel()
    words = torch.empty((n + 1) // 2, dtype=torch.int32, device=device).random_()  # [0, 2^31)
    halves = words.view(torch.int16)[:n].view(shape)  # each 16-bit half; the high one's top bit is 0
    return halves.bitwise_and(_LEVELS - 1)  # low 15 bits of each half: uniform on [0, 2^15)


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """y = x * m / (1 - p') with m_i ~ Bernoulli(1 - p'), p' = :func:`effective_p` (p); identity when not training.

    Args:
        x: any shape and floating dtype.
        p: drop probability in [0, 1].
        training: apply dropout (False: return ``x`` unchanged).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    threshold = round(p * _LEVELS)
    if threshold == 0:
        return x
    if threshold == _LEVELS:
        return x * 0.0
    keep = _uniform15(x.shape, x.device) >= threshold  # m_i, True with probability 1 - p'
    scale = _LEVELS / (_LEVELS - threshold)  # 1 / (1 - p')
    return x * keep.to(x.dtype).mul_(scale)


class Dropout(nn.Module):
    """Module form of :func:`dropout`; a drop-in replacement for ``nn.Dropout(p)``."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
