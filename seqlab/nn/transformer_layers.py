"""The Transformer's layers (Vaswani et al. 2017, section 3.1 and 3.3).

Encoder layer:   x = AddNorm(x, SelfAttention(x));  x = AddNorm(x, FFN(x))
Decoder layer:   y = AddNorm(y, MaskedSelfAttention(y))
                 y = AddNorm(y, CrossAttention(Q=y, K=V=memory))
                 y = AddNorm(y, FFN(y))
Add & Norm:      post-norm (the paper):  LayerNorm(x + Dropout(Sublayer(x)))
                 pre-norm (option):      x + Dropout(Sublayer(LayerNorm(x)))
                 ablations (``seqlab study transformer-norm``): without the residual the "x +" is
                 dropped; without layer normalisation LayerNorm is the identity.
Feed-forward:    FFN(x) = max(0, x W_1 + b_1) W_2 + b_2
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from seqlab.nn.attention import MultiHeadAttention
from seqlab.nn.dropout import Dropout
from seqlab.nn.linear import Linear

__all__ = ["AddNorm", "DecoderLayer", "EncoderLayer", "FeedForward"]


class FeedForward(nn.Module):
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2, applied at every position alike.

    As in the paper, dropout is applied to the sub-layer's output (by :class:`AddNorm`), not to
    the inner activation.
    """

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.W_1 = Linear(d_model, d_ff)
        self.W_2 = Linear(d_ff, d_model)

    def forward(self, x: Tensor) -> Tensor:
        return self.W_2(self.W_1(x).relu())


class AddNorm(nn.Module):
    """Residual connection with layer normalisation, post-norm or pre-norm.

    Args:
        d_model: features d.
        dropout: on the sub-layer's output.
        pre_norm: normalise the sub-layer's input (pre) rather than the sum (post).
        residual: add the input back, x + Sublayer(x); False keeps only Sublayer(x) (ablation).
        layer_norm: False replaces LayerNorm by the identity (ablation).
    """

    def __init__(self, d_model: int, *, dropout: float, pre_norm: bool, residual: bool = True,
                 layer_norm: bool = True):
        super().__init__()
        self.norm = nn.LayerNorm(d_model) if layer_norm else nn.Identity()
        self.dropout = Dropout(dropout)
        self.pre_norm, self.residual = pre_norm, residual

    def forward(self, x: Tensor, sublayer: Callable[[Tensor], Tensor]) -> Tensor:
        skip = x if self.residual else 0.0
        if self.pre_norm:
            return skip + self.dropout(sublayer(self.norm(x)))
        return self.norm(skip + self.dropout(sublayer(x)))


class EncoderLayer(nn.Module):
    """Self-attention then feed-forward, each wrapped in Add & Norm."""

    def __init__(self, d_model: int, heads: int, d_ff: int, *, dropout: float, attention_dropout: float,
                 pre_norm: bool, residual: bool = True, layer_norm: bool = True):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, heads, dropout=attention_dropout)
        self.ffn = FeedForward(d_model, d_ff)
        add_norm = dict(dropout=dropout, pre_norm=pre_norm, residual=residual, layer_norm=layer_norm)
        self.add_norm_1 = AddNorm(d_model, **add_norm)
        self.add_norm_2 = AddNorm(d_model, **add_norm)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, S, d); mask (B, 1, 1, S) bool, True at real tokens."""
        x = self.add_norm_1(x, lambda h: self.self_attn(h, h, h, mask)[0])
        return self.add_norm_2(x, self.ffn)


class DecoderLayer(nn.Module):
    """Masked self-attention, cross-attention over the encoder output, feed-forward."""

    def __init__(self, d_model: int, heads: int, d_ff: int, *, dropout: float, attention_dropout: float,
                 pre_norm: bool, residual: bool = True, layer_norm: bool = True):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, heads, dropout=attention_dropout)
        self.cross_attn = MultiHeadAttention(d_model, heads, dropout=attention_dropout)
        self.ffn = FeedForward(d_model, d_ff)
        add_norm = dict(dropout=dropout, pre_norm=pre_norm, residual=residual, layer_norm=layer_norm)
        self.add_norm_1 = AddNorm(d_model, **add_norm)
        self.add_norm_2 = AddNorm(d_model, **add_norm)
        self.add_norm_3 = AddNorm(d_model, **add_norm)

    def forward(
        self, y: Tensor, past_k: Tensor | None, past_v: Tensor | None, cross_k: Tensor, cross_v: Tensor,
        memory_mask: Tensor, *, causal: bool, need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None, tuple[Tensor, Tensor]]:
        """One decoder layer at the positions in ``y``, after the positions already cached.

        Args:
            y: (B, T, d) decoder inputs at the positions being computed.
            past_k, past_v: (B, h, t, d_k) self-attention keys/values of the t earlier positions
                (the cache in step-by-step decoding), or None (training: all positions in ``y``).
            cross_k, cross_v: (B_src, h, S, d_k) projections of the encoder output.
            memory_mask: (B_src, 1, 1, S) bool, True at real source tokens.
            causal: mask future positions (training); False when ``y`` is the single newest step.
            need_weights: also return the cross-attention weights (B, h, T, S).

        Returns:
            the layer's output (B, T, d), the cross-attention weights or None, and the
            self-attention keys/values of all t + T positions (the new cache).
        """
        attn, cache = None, None

        def masked_self(h: Tensor) -> Tensor:
            nonlocal cache
            q, k, v = self.self_attn.project_qkv(h)  # (B, h, T, d_k) each
            if past_k is not None:
                k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)  # (B, h, t+T, d_k)
            cache = (k, v)
            return self.self_attn.attend_projected(q, k, v, causal=causal)[0]

        def cross(h: Tensor) -> Tensor:
            nonlocal attn
            out, attn = self.cross_attn.attend(h, cross_k, cross_v, memory_mask, need_weights=need_weights)
            return out

        y = self.add_norm_1(y, masked_self)
        y = self.add_norm_2(y, cross)
        return self.add_norm_3(y, self.ffn), attn, cache
