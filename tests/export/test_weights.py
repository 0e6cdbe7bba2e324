"""The one accessor of attention weights reads both layouts of MultiHeadAttention."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
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
    attention = MultiHeadAttention(8, 2)
    with torch.no_grad():
        attention.W_qkv.bias.normal_()  # biases start at zero: make a mix-up visible
    return attention


def test_attention_weights_give_the_models_own_projections(mha):
    # x W_Q^T + b_Q etc. from the returned matrices equal what the module computes.
    w = attention_weights(mha)
    x, memory = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    heads = mha.split_heads
    with torch.no_grad():
        q, k, v = mha.project_qkv(x)
        cross_k, cross_v = mha.project_kv(memory, memory)
        torch.testing.assert_close(q, heads(F.linear(x, w.W_q, w.b_q)))
        torch.testing.assert_close(k, heads(F.linear(x, w.W_k, w.b_k)))
        torch.testing.assert_close(v, heads(F.linear(x, w.W_v, w.b_v)))
        torch.testing.assert_close(cross_k, heads(F.linear(memory, w.W_k, w.b_k)))
        torch.testing.assert_close(cross_v, heads(F.linear(memory, w.W_v, w.b_v)))
        torch.testing.assert_close(mha.W_o(x), F.linear(x, w.W_o, w.b_o))
    assert not w.W_q.requires_grad


def test_position_table_of_sinusoidal_and_learned_positions():
    embedding = nn.Embedding(10, 8)
    sinusoidal = PositionalEmbedding(embedding, SinusoidalPositions(6, 8), dropout=0.0)
    assert torch.equal(position_table(sinusoidal), sinusoidal_table(6, 8))
    learned = PositionalEmbedding(embedding, LearnedPositions(6, 8), dropout=0.0)
    assert torch.equal(position_table(learned), learned.positions.table.weight)


def test_transformer_of_refuses_other_models():
    with pytest.raises(SeqlabError, match="export --format onnx supports Transformer runs.*Linear"):
        transformer_of(nn.Linear(2, 2), "export --format onnx")
