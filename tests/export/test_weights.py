"""The one accessor of attention weights reads both layouts of MultiHeadAttention."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seqlab.errors import SeqlabError
from seqlab.export.weights import attention_weights, position_table, transformer_of
from seqlab.nn.attention import MultiHeadAttention
from seqlab.nn.positional import (
    LearnedPositions,
    PositionalEmbedding,
    SinusoidalPositions,
    sinusoidal_table,
)


@pytest.fixture
def mha() -> MultiHeadAttention:
    torch.manual_seed(0)
    return MultiHeadAttention(8, 2)


def test_separate_layout_returns_each_projection(mha):
    w = attention_weights(mha)
    assert torch.equal(w.W_q, mha.W_q.weight) and torch.equal(w.b_k, mha.W_k.bias)
    assert torch.equal(w.W_v, mha.W_v.weight) and torch.equal(w.W_o, mha.W_o.weight)
    assert not w.W_q.requires_grad


class _Stacked(nn.Module):
    """The stacked self-attention layout: [W_Q; W_K; W_V] as one d -> 3d layer."""

    def __init__(self, mha: MultiHeadAttention):
        super().__init__()
        self.W_qkv = nn.Linear(8, 24)
        self.W_o = mha.W_o
        with torch.no_grad():
            self.W_qkv.weight.copy_(torch.cat([mha.W_q.weight, mha.W_k.weight, mha.W_v.weight]))
            self.W_qkv.bias.copy_(torch.cat([mha.W_q.bias, mha.W_k.bias, mha.W_v.bias]))


class _StackedCross(nn.Module):
    """The stacked cross-attention layout: W_Q, and [W_K; W_V] as one d -> 2d layer."""

    def __init__(self, mha: MultiHeadAttention):
        super().__init__()
        self.W_q, self.W_o, self.W_kv = mha.W_q, mha.W_o, nn.Linear(8, 16)
        with torch.no_grad():
            self.W_kv.weight.copy_(torch.cat([mha.W_k.weight, mha.W_v.weight]))
            self.W_kv.bias.copy_(torch.cat([mha.W_k.bias, mha.W_v.bias]))


@pytest.mark.parametrize("layout", [_Stacked, _StackedCross])
def test_stacked_layouts_give_the_same_weights(mha, layout):
    expected, got = attention_weights(mha), attention_weights(layout(mha))
    for name, a, b in zip(expected._fields, expected, got):
        assert torch.equal(a, b), name


def test_position_table_of_sinusoidal_and_learned_positions():
    embedding = nn.Embedding(10, 8)
    sinusoidal = PositionalEmbedding(embedding, SinusoidalPositions(6, 8), dropout=0.0)
    assert torch.equal(position_table(sinusoidal), sinusoidal_table(6, 8))
    learned = PositionalEmbedding(embedding, LearnedPositions(6, 8), dropout=0.0)
    assert torch.equal(position_table(learned), learned.positions.table.weight)


def test_transformer_of_refuses_other_models():
    with pytest.raises(SeqlabError, match="export --format onnx supports Transformer runs.*Linear"):
        transformer_of(nn.Linear(2, 2), "export --format onnx")
