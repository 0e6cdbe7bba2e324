"""Pooling computes its equation and never reads padding."""

import pytest
import torch

from seqlab.nn.cells import make_recurrent
from seqlab.nn.pooling import AttentionPooling, build_pooling, final_pool, first_pool, mean_pool

LENGTHS = [5, 2, 3]


def _states(seed=0, d=4):
    torch.manual_seed(seed)
    h = torch.randn(3, 5, d)  # (B, T, d)
    mask = torch.arange(5)[None, :] < torch.tensor(LENGTHS)[:, None]  # (B, T)
    return h, mask


def test_mean_first_final_follow_their_equations():
    h, mask = _states()
    for b, n in enumerate(LENGTHS):
        torch.testing.assert_close(mean_pool(h, mask)[b], h[b, :n].sum(0) / n)
        torch.testing.assert_close(first_pool(h, mask)[b], h[b, 0])
        torch.testing.assert_close(final_pool(h, mask)[b], h[b, n - 1])
        both = final_pool(h, mask, bidirectional=True)[b]
        torch.testing.assert_close(both, torch.cat([h[b, n - 1, :2], h[b, 0, 2:]]))


def test_attention_pooling_is_softmax_of_the_additive_score():
    h, mask = _states(1)
    pool = AttentionPooling(d=4, attention_size=3)
    with torch.no_grad():
        c = pool(h, mask)
        for b, n in enumerate(LENGTHS):
            e = torch.stack([pool.v.weight[0] @ torch.tanh(pool.W.weight @ h[b, t] + pool.W.bias) for t in range(n)])
            a = torch.softmax(e, dim=0)
            torch.testing.assert_close(pool.last_weights[b, :n], a)
            assert torch.all(pool.last_weights[b, n:] == 0)
            torch.testing.assert_close(c[b], (a[:, None] * h[b, :n]).sum(0))


@pytest.mark.parametrize("name", ["mean", "first", "final", "attention"])
def test_padding_never_changes_the_pooled_vector(name):
    h, mask = _states(2)
    pool = build_pooling(name, d=4, bidirectional=True)
    with torch.no_grad():
        c = pool(h, mask)
        poisoned = h.masked_fill(~mask[..., None], 1e4)  # garbage at every padded position
        longer = torch.cat([poisoned, torch.full((3, 4, 4), -1e4)], dim=1)  # and more padding
        longer_mask = torch.cat([mask, torch.zeros(3, 4, dtype=torch.bool)], dim=1)
        torch.testing.assert_close(pool(longer, longer_mask), c, atol=0, rtol=0)
        for b, n in enumerate(LENGTHS):  # each row alone, unpadded
            torch.testing.assert_close(pool(h[b:b + 1, :n], mask[b:b + 1, :n])[0], c[b], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_final_pooling_equals_the_recurrent_layers_final_state(bidirectional):
    torch.manual_seed(3)
    rnn = make_recurrent("gru", 3, 4, num_layers=2, bidirectional=bidirectional)
    x = torch.randn(3, 5, 3)
    lengths = torch.tensor(LENGTHS)
    with torch.no_grad():
        out, h_final = rnn(x, lengths)  # out (B, T, D*H); h_final (L*D, B, H)
        mask = torch.arange(5)[None, :] < lengths[:, None]
        top = h_final[-2:] if bidirectional else h_final[-1:]  # (D, B, H) the top layer
        expected = torch.cat(list(top), dim=-1)  # (B, D*H) [forward; backward]
        torch.testing.assert_close(final_pool(out, mask, bidirectional=bidirectional), expected)


def test_unknown_pooling_is_rejected():
    with pytest.raises(ValueError, match="pooling must be one of mean, first, final, attention"):
        build_pooling("max", d=4)
