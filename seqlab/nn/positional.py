"""Token embeddings with positional information (Vaswani et al. 2017, section 3.5).

    PE(t, 2i)   = sin(t / 10000^(2i / d_model))
    PE(t, 2i+1) = cos(t / 10000^(2i / d_model))

    x_t = sqrt(d_model) * E[w_t] + PE(t)

:class:`NoPositions` (PE(t) = 0) leaves the Transformer without any notion of order: self-attention
is then permutation-equivariant, which ``seqlab study positions`` measures.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from seqlab.nn.dropout import Dropout

__all__ = ["LearnedPositions", "NoPositions", "PositionalEmbedding", "SinusoidalPositions", "sinusoidal_table"]


def sinusoidal_table(max_positions: int, d_model: int) -> Tensor:
    """(max_positions, d_model) table of PE(t, .) for t = 0 .. max_positions - 1."""
    t = torch.arange(max_positions, dtype=torch.float64).unsqueeze(1)  # (T, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d/2,)
    angle = t / torch.pow(10000.0, two_i / d_model)  # (T, d/2)
    pe = torch.zeros(max_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return pe.float()


class SinusoidalPositions(nn.Module):
    """Fixed sinusoidal encodings (a buffer, not trained, not saved in checkpoints)."""

    def __init__(self, max_positions: int, d_model: int):
        super().__init__()
        self.max_positions = max_positions
        self.register_buffer("table", sinusoidal_table(max_positions, d_model), persistent=False)

    def forward(self, positions: Tensor) -> Tensor:
        """(T,) or (B, T) integer positions -> (..., d_model)."""
        return self.table[positions]


class LearnedPositions(nn.Module):
    """A trained embedding per position (as in BERT/GPT), the alternative the paper compares."""

    def __init__(self, max_positions: int, d_model: int):
        super().__init__()
        self.max_positions = max_positions
        self.table = nn.Embedding(max_positions, d_model)
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, positions: Tensor) -> Tensor:
        return self.table(positions)


class NoPositions(nn.Module):
    """PE(t) = 0: no positional information at all (for the ablation of ``seqlab study positions``)."""

    def __init__(self, max_positions: int, d_model: int):
        super().__init__()
        self.max_positions, self.d_model = max_positions, d_model

    def forward(self, positions: Tensor) -> Tensor:
        """(T,) or (B, T) positions -> zeros (..., d_model)."""
        return torch.zeros(*positions.shape, self.d_model, device=positions.device)


class PositionalEmbedding(nn.Module):
    """x_t = s E[w_t] + PE(t), followed by dropout; s = sqrt(d_model) by default (Vaswani et al. 2017).

    Args:
        embedding: the token embedding E (may be shared between source and target).
        positions: :class:`SinusoidalPositions`, :class:`LearnedPositions` or :class:`NoPositions`.
        dropout: dropout probability on the sum.
        scale: s; None for sqrt(d_model). GPT-2 uses s = 1 (:func:`seqlab.models.gpt.build_gpt`).
    """

    def __init__(self, embedding: nn.Embedding, positions: nn.Module, *, dropout: float,
                 scale: float | None = None):
        super().__init__()
        self.embedding, self.positions = embedding, positions
        self.scale = math.sqrt(embedding.embedding_dim) if scale is None else scale
        self.dropout = Dropout(dropout)
        self.max_positions = positions.max_positions

    def forward(self, tokens: Tensor, offset: int = 0, *, shift: Tensor | None = None) -> Tensor:
        """(B, T) ids starting at position ``offset`` -> (B, T, d_model).

        ``shift`` (B,) moves each row's positions back by that many (a left-padded row, whose
        first real token sits in column ``shift``, starts at position 0 there); the positions of
        the padding before it are clamped to 0.
        """
        t = tokens.size(1)
        if offset + t > self.max_positions:
            raise ValueError(
                f"sequence of {offset + t} tokens is longer than the model's limit of "
                f"{self.max_positions} positions"
            )
        pos = torch.arange(offset, offset + t, device=tokens.device)
        if shift is not None:
            pos = (pos[None, :] - shift[:, None]).clamp(min=0)  # (B, T)
        return self.dropout(self.embedding(tokens) * self.scale + self.positions(pos))
