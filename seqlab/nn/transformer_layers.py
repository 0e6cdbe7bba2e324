"""The Transformer's layers (Vaswani et al. 2017, section 3.1 and 3.3).

Encoder layer:   x = AddNorm(x, SelfAttention(x));  x = AddNorm(x, FFN(x))
Decoder layer:   y = AddNorm(y, MaskedSelfAttention(y))
                 y = AddNorm(y, CrossAttention(Q=y, K=V=memory))
                 y = AddNorm(y, FFN(y))
Causal block:    an encoder layer under the causal mask, with a key/value cache
                 (``EncoderLayer.forward_causal``: a decoder layer without cross-attention,
                 the block of a decoder-only model)
Encoder:         memory = Norm(EncoderLayer_N(... EncoderLayer_1(sqrt(d) E[x] + PE)))
                 (Norm only for pre-norm layers), reused by the encoder-decoder and by encoders
                 of other tasks (e.g. a classifier)
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
from seqlab.nn.positional import PositionalEmbedding
from seqlab.text.specials import PAD

__all__ = ["AddNorm", "DecoderLayer", "EncoderLayer", "FeedForward", "TransformerEncoder",
           "cached_self_attention"]


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

    def forward_causal(self, y: Tensor, past_k: Tensor | None, past_v: Tensor | None, *,
                       causal: bool, mask: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """The same layer under a causal mask, after ``t`` cached positions: the block of a
        decoder-only model (a decoder layer without cross-attention).

        Args:
            y: (B, T, d) inputs at the new positions.
            past_k, past_v, causal, mask: see :func:`cached_self_attention`.

        Returns:
            (B, T, d) outputs and the keys/values of all t + T positions (the new cache).
        """
        cache = None

        def masked_self(h: Tensor) -> Tensor:
            nonlocal cache
            out, cache = cached_self_attention(self.self_attn, h, past_k, past_v, causal=causal, mask=mask)
            return out

        y = self.add_norm_1(y, masked_self)
        return self.add_norm_2(y, self.ffn), cache


class TransformerEncoder(nn.Module):
    """Token + position embedding, N encoder layers, and a final LayerNorm when the layers are pre-norm.

    Args:
        embed: the source :class:`PositionalEmbedding`.
        layers: the N :class:`EncoderLayer`.
        pre_norm: the layers are pre-norm (their outputs are not normalised, so the stack ends
            with a LayerNorm).
    """

    def __init__(self, *, embed: PositionalEmbedding, layers: list[EncoderLayer], pre_norm: bool):
        super().__init__()
        self.embed = embed
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(embed.embedding.embedding_dim) if pre_norm else nn.Identity()

    def forward(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """(B, S) ids, right-padded -> memory (B, S, d) and its mask (B, 1, 1, S), True at real tokens."""
        mask = src.ne(PAD)[:, None, None, :]  # (B, 1, 1, S)
        x = self.embed(src)
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x), mask


def cached_self_attention(attn: MultiHeadAttention, h: Tensor, past_k: Tensor | None, past_v: Tensor | None, *,
                          causal: bool, mask: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Masked self-attention of the positions in ``h`` after the ``t`` positions already cached.

    Args:
        attn: the self-attention.
        h: (B, T, d) inputs at the new positions.
        past_k, past_v: (B, h, t, d_k) keys/values of the earlier positions, or None.
        causal: mask future positions (all positions at once, ``past_k`` None); False when ``h``
            is the single newest position.
        mask: (B, 1, T, t+T) bool, True where a new position may attend, given instead of
            ``causal`` (which must then be False) when some keys are padding.

    Returns:
        (B, T, d) outputs and the keys/values of all t + T positions (the extended cache).
    """
    q, k, v = attn.project_qkv(h)  # (B, h, T, d_k) each
    if past_k is not None:
        k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)  # (B, h, t+T, d_k)
    return attn.attend_projected(q, k, v, mask, causal=causal)[0], (k, v)


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
            out, cache = cached_self_attention(self.self_attn, h, past_k, past_v, causal=causal)
            return out

        def cross(h: Tensor) -> Tensor:
            nonlocal attn
            out, attn = self.cross_attn.attend(h, cross_k, cross_v, memory_mask, need_weights=need_weights)
            return out

        y = self.add_norm_1(y, masked_self)
        y = self.add_norm_2(y, cross)
        return self.add_norm_3(y, self.ffn), attn, cache
