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
(the default), which on the CPU takes the explicit path

* when the attention weights are asked for;
* for short key sequences (at most :data:`SHORT_KEYS` positions) in float32, with or without
  autograd: there the fused kernel's fixed costs outweigh the (B, h, T_q, T_k) weights it saves.
  Forward + backward of one attention of 1,024 tokens with 4 heads of 64 on the 2-core dev machine
  (AMD EPYC Zen 4, PyTorch 2.13, float32, padding mask; ``AVX512`` capability / limited to ``AVX2``):

  ======  =========================  =========================
  T_k     explicit / fused, AVX512   explicit / fused, AVX2
  ======  =========================  =========================
  16      2.1 / 4.9 ms               2.1 / 4.3 ms
  32      2.9 / 3.2 ms               3.4 / 3.6 ms
  64      3.5 / 4.2 ms               4.3 / 4.5 ms
  128     6.1 / 5.8 ms               7.3 / 6.4 ms
  512     26.3 / 16.9 ms             26.3 / 19.1 ms
  ======  =========================  =========================

  (batches of 1,024 / T_k sequences; the causal mask gives the same picture);
* for the few query rows of a decoding step (autograd off, at most :data:`DECODING_QUERIES` query
  positions: one per step, or a sentence's K beams stacked for cross-attention), whatever the
  cache length: 32 sentences x 5 beams x 4 heads over 16 source tokens took 0.27 ms fused
  against 0.09 ms explicit (2 threads, fp32, same machine), 160 rows over a 20-token cache 0.26 ms
  against 0.16 ms;
* for bf16 products on a CPU with native bf16 (:func:`seqlab.precision.native_bf16`), where
  PyTorch 2.13's fused CPU kernel was several times slower than the explicit bf16 matrix products
  for sentence-length sequences (``benchmarks/translation_speed.py`` on the AVX-512 BF16 dev
  machine: 6 ms against 16 ms for forward and backward of one attention over 64 x 16 tokens).

The fused kernel everywhere else: longer sequences, other devices, and bf16 on CPUs without native
bf16 (whose explicit bf16 products run a slow reference path).

The projections W_Q, W_K, W_V are stored stacked as one parameter, ``W_qkv`` = [W_Q; W_K; W_V]
(3 d_model x d_model): self-attention computes all three with one product, cross-attention takes
W_Q and [W_K; W_V] as row blocks of it (views, no copy). Run folders written when the three were
separate (``W_q``, ``W_k``, ``W_v``) load through :meth:`MultiHeadAttention.upgrade_state_dict`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab import precision
from seqlab.nn.linear import Linear, PackedModule, PackedWeight, linear, product_dtype, worth_packing

DECODING_QUERIES = 16
"""Query blocks this short (autograd off, on the CPU) take the explicit path: a decoding step."""

SHORT_KEYS = 64
"""Key sequences this short take the explicit path on the CPU in float32 (see the module docstring)."""

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


class MultiHeadAttention(nn.Module, PackedModule):
    """h parallel attention heads of size d_k = d_model / h, then the output projection W_O.

    Args:
        d_model: model width.
        heads: number of heads h.
        dropout: dropout on the attention weights.
        impl: ``auto``, ``explicit`` or ``fused`` (see the module docstring).
    """

    def __init__(self, d_model: int, heads: int, *, dropout: float = 0.0, impl: str = "auto"):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
        if impl not in ("auto", "explicit", "fused"):
            raise ValueError(f"impl must be auto, explicit or fused, got {impl!r}")
        self.h, self.d_k, self.dropout, self.impl = heads, d_model // heads, dropout, impl
        self.W_qkv = Linear(d_model, 3 * d_model)  # [W_Q; W_K; W_V]
        self.W_o = Linear(d_model, d_model)
        # W_Q and [W_K; W_V] packed for decoding (cross-attention); see seqlab.nn.linear
        self._packed_q: PackedWeight | None = None
        self._packed_kv: PackedWeight | None = None

    @property
    def d_model(self) -> int:
        return self.h * self.d_k

    def _rows(self, start: int, stop: int) -> tuple[Tensor, Tensor]:
        """Rows [start, stop) of [W_Q; W_K; W_V] and of its bias (views)."""
        return self.W_qkv.weight[start:stop], self.W_qkv.bias[start:stop]

    def _pack_for_decoding(self, dtype: torch.dtype | None) -> None:
        # cross-attention multiplies by these two blocks, self-attention by W_qkv whole (packed as a
        # Linear); a module does not know which role it plays, so both are packed (small)
        d = self.d_model
        q, kv = self._rows(0, d), self._rows(d, 3 * d)
        self._packed_q = PackedWeight(*q, dtype) if dtype is not None and worth_packing(q[0], dtype) else None
        self._packed_kv = PackedWeight(*kv, dtype) if dtype is not None and worth_packing(kv[0], dtype) else None

    def split_heads(self, x: Tensor) -> Tensor:
        """(B, T, d_model) -> (B, h, T, d_k)."""
        b, t, _ = x.shape
        return x.view(b, t, self.h, self.d_k).transpose(1, 2)  # (B, h, T, d_k)

    def merge_heads(self, x: Tensor) -> Tensor:
        """(B, h, T, d_k) -> (B, T, d_model): the concatenation of the heads."""
        b, _, t, _ = x.shape
        return x.transpose(1, 2).reshape(b, t, self.h * self.d_k)  # (B, T, d_model)

    def project_q(self, query: Tensor) -> Tensor:
        """query W_Q split into heads: (B, T_q, d) -> (B, h, T_q, d_k)."""
        return self.split_heads(linear(query, *self._rows(0, self.d_model), self._packed_q))

    def project_kv(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """K W_K and V W_V split into heads: two (B, h, T_k, d_k) tensors (cacheable).

        When ``key is value`` (cross-attention over the encoder output) both come from one product
        with [W_K; W_V].
        """
        d = self.d_model
        if key is value:
            k, v = linear(key, *self._rows(d, 3 * d), self._packed_kv).chunk(2, dim=-1)  # 2 x (B, T_k, d)
            return self.split_heads(k), self.split_heads(v)
        k, v = F.linear(key, *self._rows(d, 2 * d)), F.linear(value, *self._rows(2 * d, 3 * d))  # (B, T_k, d)
        return self.split_heads(k), self.split_heads(v)

    def project_qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Self-attention's x W_Q, x W_K, x W_V, each (B, h, T, d_k), as one product with [W_Q; W_K; W_V].

        x is read once and the product is one larger matrix multiplication instead of three; the
        result equals the separate projections.
        """
        q, k, v = self.W_qkv(x).chunk(3, dim=-1)  # 3 x (B, T, d)
        return self.split_heads(q), self.split_heads(k), self.split_heads(v)

    @staticmethod
    def upgrade_state_dict(state_dict: dict, prefix: str) -> None:
        """Rewrite, in place, the separate ``W_q``/``W_k``/``W_v`` weights of older run folders as ``W_qkv``.

        Called by :meth:`load_state_dict` (through ``_load_from_state_dict``) and by
        :func:`seqlab.training.checkpoint.load_checkpoint` before it matches names.
        """
        if f"{prefix}W_q.weight" not in state_dict or f"{prefix}W_qkv.weight" in state_dict:
            return
        for part in ("weight", "bias"):
            blocks = [state_dict.pop(f"{prefix}W_{name}.{part}") for name in "qkv"]
            state_dict[f"{prefix}W_qkv.{part}"] = torch.cat(blocks)  # (3d, d) or (3d,)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self.upgrade_state_dict(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

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
            q, (k, v) = self.project_q(query), self.project_kv(key, value)
        return self.attend_projected(q, k, v, mask, causal=causal, need_weights=need_weights)

    def attend(
        self, query: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *,
        causal: bool = False, need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Like :meth:`forward` with keys and values already projected (from a cache)."""
        q = self.project_q(query)  # (B_q, h, T_q, d_k)
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
        if need_weights or self._explicit(q, k):
            if causal:
                mask = causal_mask(q.size(2), k.size(2), device=q.device)
            out, weights = attention_explicit(q, k, v, mask, dropout=self.dropout, training=self.training)
            weights = weights if need_weights else None
        else:
            out = attention_fused(q, k, v, mask, causal=causal, dropout=self.dropout, training=self.training)
            weights = None
        return out, weights

    def _explicit(self, q: Tensor, k: Tensor) -> bool:
        """The path choice of ``impl="auto"`` for (B, h, T_q, d_k) queries and (B, h, T_k, d_k) keys
        (see the module docstring)."""
        if self.impl != "auto":
            return self.impl == "explicit"
        if q.device.type != "cpu":
            return False
        if not torch.is_grad_enabled() and q.size(2) <= DECODING_QUERIES:
            return True
        dtype = product_dtype(q)
        if dtype == torch.float32:
            return k.size(2) <= SHORT_KEYS
        return dtype == torch.bfloat16 and precision.native_bf16(q.device)


def _stack_groups(x: Tensor, g: int) -> Tensor:
    """(B*g, h, T, d) -> (B, h, g*T, d): the g rows of a group become one row's query axis."""
    Bg, h, T, d = x.shape
    return x.view(Bg // g, g, h, T, d).transpose(1, 2).reshape(Bg // g, h, g * T, d)  # (B, h, g*T, d)


def _unstack_groups(x: Tensor, g: int) -> Tensor:
    """Inverse of :func:`_stack_groups`: (B, h, g*T, d) -> (B*g, h, T, d)."""
    B, h, gT, d = x.shape
    return x.view(B, h, g, gT // g, d).transpose(1, 2).reshape(B * g, h, gT // g, d)  # (B*g, h, T, d)
