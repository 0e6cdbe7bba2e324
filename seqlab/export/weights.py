"""Read a trained Transformer's weights in the layout inference engines expect.

The CTranslate2 exporter reads attention weights through :func:`attention_weights` only, so a
change of how :class:`~seqlab.nn.attention.MultiHeadAttention` stores its projections is handled
here and nowhere else (the ONNX export traces the modules themselves).

    q = x W_Q^T + b_Q,  k = m W_K^T + b_K,  v = m W_V^T + b_V,  out = Concat(heads) W_O^T + b_O

All matrices are returned in ``nn.Linear``'s (out_features, in_features) orientation.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from seqlab.errors import SeqlabError
from seqlab.nn.attention import MultiHeadAttention

__all__ = ["AttentionWeights", "attention_weights", "position_table", "transformer_of"]


class AttentionWeights(NamedTuple):
    """The four projections of one multi-head attention, each (d, d) with a (d,) bias."""

    W_q: Tensor
    b_q: Tensor
    W_k: Tensor
    b_k: Tensor
    W_v: Tensor
    b_v: Tensor
    W_o: Tensor
    b_o: Tensor


def attention_weights(mha: MultiHeadAttention) -> AttentionWeights:
    """W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O of ``mha``, detached.

    :class:`~seqlab.nn.attention.MultiHeadAttention` stores [W_Q; W_K; W_V] stacked as one
    d -> 3d layer, ``W_qkv``, in self- and cross-attention alike.
    """
    W_q, W_k, W_v = mha.W_qkv.weight.detach().chunk(3)  # 3 x (d, d)
    b_q, b_k, b_v = mha.W_qkv.bias.detach().chunk(3)  # 3 x (d,)
    return AttentionWeights(W_q, b_q, W_k, b_k, W_v, b_v, mha.W_o.weight.detach(), mha.W_o.bias.detach())


def position_table(embed: nn.Module) -> Tensor:
    """The (max_positions, d) table PE of a :class:`~seqlab.nn.positional.PositionalEmbedding`,
    sinusoidal (a buffer) or learned (an embedding), detached."""
    table = embed.positions.table
    return (table.weight if isinstance(table, nn.Embedding) else table).detach()


def transformer_of(model: nn.Module, what: str):
    """``model`` if it is a :class:`~seqlab.models.transformer.TransformerSeq2Seq`, else a clear error.

    Args:
        what: the operation, for the message (e.g. ``"CTranslate2 export"``).
    """
    from seqlab.models.transformer import TransformerSeq2Seq

    if not isinstance(model, TransformerSeq2Seq):
        raise SeqlabError(f"{what} supports Transformer runs (model.type: transformer); this run holds a "
                          f"{type(model).__name__}")
    return model
