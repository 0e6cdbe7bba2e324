"""Scaled dot-product and multi-head attention (Vaswani et al. 2017, section 3.2).

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + M) V

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W_O,
        head_i = Attention(Q W_Q^i, K W_K^i, V W_V^i)

Masks are boolean and broadcast to (B, h, T_q, T_k): True where a query may attend to a key. The
additive mask M of the paper is 0 where the boolean mask is True and -inf where it is False.

Two paths compute the same function:

* :func:`attention_explicit` writes the equation out and returns the weights (for plots and for
  teaching);
* :func:`attention_fused` calls ``torch.nn.functional.scaled_dot_product_attention`` (a fused kernel,
  no weights). ``tests/nn/test_attention.py`` holds the two equal within 1e-5 in float32.

:class:`MultiHeadAttention` picks the path with ``impl``: ``"explicit"``, ``"fused"``, or ``"auto"``
(the default): the explicit path when weights are asked for, and also under CPU bf16 autocast, where
PyTorch 2.13's fused CPU kernel is several times slower than the explicit bf16 matrix products for
sentence-length sequences (``benchmarks/translation_speed.py``: 6 ms against 16 ms for forward and
backward of one attention over 64 x 16 tokens); the fused kernel otherwise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.nn.linear import Linear, PackedWeight, tensor_identity

__all__ = ["MultiHeadAttention", "attention_explicit", "attention_fused", "causal_mask"]


def causal_mask(t_q: int, t_k: int | None = None, *, device=None) -> Tensor:
    """(T_q, T_k) bool, True on and below the diagonal: position i may attend to j <= i.

    With ``t_k > t_q`` (a query block at the end of a longer key sequence, as in cached decoding)
    the diagonal is shifted so the last query sees every key.
    """
    t_k = t_q if t_k is None else t_k
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril(diagonal=t_k - t_q)


def attention_explicit(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *, dropout: float = 0.0, training: bool = False
) -> tuple[Tensor, Tensor]:
    """softmax(Q K^T / sqrt(d_k) + M) V, written out.

    Args:
        q: (B, h, T_q, d_k) queries.
        k: (B, h, T_k, d_k) keys.
        v: (B, h, T_k, d_v) values.
        mask: bool, broadcastable to (B, h, T_q, T_k); True = may attend.
        dropout: dropout probability on the attention weights (training only).

    Returns:
        (B, h, T_q, d_v) outputs and (B, h, T_q, T_k) attention weights (rows sum to one).
    """
    d_k = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (B, h, T_q, T_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if dropout > 0.0 and training:
        return F.dropout(weights, p=dropout) @ v, weights
    return weights @ v, weights


def attention_fused(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *, causal: bool = False,
    dropout: float = 0.0, training: bool = False,
) -> Tensor:
    """The same function through PyTorch's fused kernel; returns (B, h, T_q, d_v) only.

    ``causal=True`` applies the causal mask without materialising it (``mask`` must then be None).
    """
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, dropout_p=dropout if training else 0.0, is_causal=causal
    )


class MultiHeadAttention(nn.Module):
    """h parallel attention heads of size d_k = d_model / h, then the output projection W_O.

    Args:
        d_model: model width.
        heads: number of heads h.
        dropout: dropout on the attention weights.
    """

    def __init__(self, d_model: int, heads: int, *, dropout: float = 0.0, impl: str = "auto"):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
        if impl not in ("auto", "explicit", "fused"):
            raise ValueError(f"impl must be auto, explicit or fused, got {impl!r}")
        self.h, self.d_k, self.dropout, self.impl = heads, d_model // heads, dropout, impl
        self.W_q = Linear(d_model, d_model)
        self.W_k = Linear(d_model, d_model)
        self.W_v = Linear(d_model, d_model)
        self.W_o = Linear(d_model, d_model)
        self._stacked: tuple | None = None  # see _stacked_qkv
        self._stacked_packed = PackedWeight()

    def split_heads(self, x: Tensor) -> Tensor:
        """(B, T, d_model) -> (B, h, T, d_k)."""
        b, t, _ = x.shape
        return x.view(b, t, self.h, self.d_k).transpose(1, 2)  # (B, h, T, d_k)

    def merge_heads(self, x: Tensor) -> Tensor:
        """(B, h, T, d_k) -> (B, T, d_model): the concatenation of the heads."""
        b, _, t, _ = x.shape
        return x.transpose(1, 2).reshape(b, t, self.h * self.d_k)  # (B, T, d_model)

    def project_kv(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """K W_K and V W_V split into heads: two (B, h, T_k, d_k) tensors (cacheable)."""
        return self.split_heads(self.W_k(key)), self.split_heads(self.W_v(value))

    def project_qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Self-attention's x W_Q, x W_K, x W_V, each (B, h, T, d_k), as one product.

        The three matrices are stacked, [W_Q; W_K; W_V] (3 d_model x d_model), so x is read once
        and the product is one larger matrix multiplication instead of three; the result equals
        the separate projections.
        """
        weight, bias = self._stacked_qkv()  # (3d, d), (3d,)
        if self._stacked_packed.applies(x, weight):
            qkv = self._stacked_packed.linear(x, weight, bias)  # bf16 decoding: see seqlab.nn.linear
        else:
            qkv = F.linear(x, weight, bias)
        q, k, v = qkv.chunk(3, dim=-1)  # 3 x (B, T, d)
        return self.split_heads(q), self.split_heads(k), self.split_heads(v)

    def _stacked_qkv(self) -> tuple[Tensor, Tensor]:
        """[W_Q; W_K; W_V] and [b_Q; b_K; b_V].

        Without autograd (decoding) they are kept between calls, already in the autocast dtype
        when autocast is on, and rebuilt when a parameter may have changed (replaced, changed in
        place, or after any optimizer step: :func:`seqlab.nn.linear.tensor_identity`), so a
        decoding step does not stack and cast them again.
        """
        params = (self.W_q.weight, self.W_k.weight, self.W_v.weight, self.W_q.bias, self.W_k.bias, self.W_v.bias)
        if torch.is_grad_enabled():
            return torch.cat(params[:3]), torch.cat(params[3:])
        device_type = params[0].device.type
        autocast = torch.is_autocast_enabled(device_type)
        dtype = torch.get_autocast_dtype(device_type) if autocast else params[0].dtype
        key = (dtype, *map(tensor_identity, params))
        stacked = self._stacked  # read once: another thread may swap in another dtype's tuple
        if stacked is None or stacked[0] != key:
            stacked = (key, torch.cat(params[:3]).to(dtype), torch.cat(params[3:]).to(dtype))
            self._stacked = stacked
        return stacked[1], stacked[2]

    def forward(
        self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None, *,
        causal: bool = False, need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``query`` (B, T_q, d) to ``key``/``value`` (B, T_k, d).

        Returns:
            (B, T_q, d) outputs and, when ``need_weights``, (B, h, T_q, T_k) weights.
        """
        if query is key and key is value:  # self-attention: one stacked projection
            q, k, v = self.project_qkv(query)
        else:
            q, (k, v) = self.split_heads(self.W_q(query)), self.project_kv(key, value)
        return self.attend_projected(q, k, v, mask, causal=causal, need_weights=need_weights)

    def attend(
        self, query: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *,
        causal: bool = False, need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Like :meth:`forward` with keys and values already projected (from a cache)."""
        q = self.split_heads(self.W_q(query))  # (B_q, h, T_q, d_k)
        return self.attend_projected(q, k, v, mask, causal=causal, need_weights=need_weights)

    def attend_projected(
        self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *,
        causal: bool = False, need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attention of projected heads, then W_O: (B_q, h, T_q, d_k) queries -> (B_q, T_q, d).

        ``k``/``v`` may have fewer rows than ``q``: then g = B_q / B_k consecutive query rows
        share one key/value row (the beams of one sentence in beam search), and their queries are
        stacked along the query axis, (B_k, h, g * T_q, d_k), instead of copying the keys g times.
        """
        g = q.size(0) // k.size(0)
        if g > 1:
            if causal or q.size(0) != g * k.size(0):
                raise ValueError(f"{q.size(0)} query rows cannot share {k.size(0)} key rows"
                                 + (" under a causal mask" if causal else ""))
            out, weights = self._attend_heads(_stack_groups(q, g), k, v, mask, False, need_weights)
            weights = None if weights is None else _unstack_groups(weights, g)  # (B_q, h, T_q, T_k)
            return self.W_o(self.merge_heads(_unstack_groups(out, g))), weights
        out, weights = self._attend_heads(q, k, v, mask, causal, need_weights)
        return self.W_o(self.merge_heads(out)), weights

    def _attend_heads(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool,
                      need_weights: bool) -> tuple[Tensor, Tensor | None]:
        """Attention of (B, h, T_q, d_k) queries: (B, h, T_q, d_k) outputs and the weights or None."""
        if need_weights or self._explicit(q):
            if causal:
                mask = causal_mask(q.size(2), k.size(2), device=q.device)
            out, weights = attention_explicit(q, k, v, mask, dropout=self.dropout, training=self.training)
        else:
            out = attention_fused(q, k, v, mask, causal=causal, dropout=self.dropout, training=self.training)
            weights = None
        return out, weights

    def _explicit(self, q: Tensor) -> bool:
        if self.impl != "auto":
            return self.impl == "explicit"
        return q.device.type == "cpu" and (torch.is_autocast_enabled("cpu") or q.dtype != torch.float32)


def _stack_groups(x: Tensor, g: int) -> Tensor:
    """(B*g, h, T, d) -> (B, h, g*T, d): the g rows of a group become one row's query axis."""
    Bg, h, T, d = x.shape
    return x.view(Bg // g, g, h, T, d).transpose(1, 2).reshape(Bg // g, h, g * T, d)  # (B, h, g*T, d)


def _unstack_groups(x: Tensor, g: int) -> Tensor:
    """Inverse of :func:`_stack_groups`: (B, h, g*T, d) -> (B*g, h, T, d)."""
    B, h, gT, d = x.shape
    return x.view(B, h, g, gT // g, d).transpose(1, 2).reshape(B * g, h, gT // g, d)  # (B*g, h, T, d)
