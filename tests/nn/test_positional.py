import math

import pytest
import torch
from torch import nn

from seqlab.nn.positional import PositionalEmbedding, SinusoidalPositions, sinusoidal_table


def test_table_matches_the_formula():
    d = 10
    pe = sinusoidal_table(50, d)
    for t in (0, 1, 7, 49):
        for i in range(d // 2):
            assert pe[t, 2 * i].item() == pytest.approx(math.sin(t / 10000 ** (2 * i / d)), abs=1e-6)
            assert pe[t, 2 * i + 1].item() == pytest.approx(math.cos(t / 10000 ** (2 * i / d)), abs=1e-6)


def test_embedding_is_scaled_by_sqrt_d_and_shifted_by_offset():
    emb = nn.Embedding(11, 8)
    layer = PositionalEmbedding(emb, SinusoidalPositions(32, 8), dropout=0.0)
    tokens = torch.tensor([[3, 4, 5]])
    out = layer(tokens, offset=2)
    expected = emb.weight[tokens] * math.sqrt(8) + sinusoidal_table(32, 8)[2:5]
    torch.testing.assert_close(out, expected)


def test_too_long_sequence_is_a_clear_error():
    layer = PositionalEmbedding(nn.Embedding(5, 4), SinusoidalPositions(3, 4), dropout=0.0)
    with pytest.raises(ValueError, match="limit of 3 positions"):
        layer(torch.zeros(1, 4, dtype=torch.long))
