"""Recurrent attention: scores match their formulas, weights normalise and padding gets zero."""

import pytest
import torch

from seqlab.nn.recurrent_attention import AdditiveAttention, GeneralAttention, build_attention

KINDS = ["dot", "general", "additive"]


def _inputs(seed=0):
    torch.manual_seed(seed)
    s = torch.randn(2, 3, 4)  # (B, T, H) decoder states
    memory = torch.randn(2, 5, 4)  # (B, S, H) encoder states
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    return s, memory, mask


@pytest.mark.parametrize("kind", KINDS)
def test_weights_sum_to_one_and_padding_gets_zero(kind):
    s, memory, mask = _inputs()
    attention = build_attention(kind, 4)
    c, a = attention(s, memory, mask)
    assert c.shape == (2, 3, 4) and a.shape == (2, 3, 5)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 3))
    assert torch.all(a[1, :, 2:] == 0)
    assert torch.all(a[1, :, :2] > 0)
    # values at padded positions cannot leak into the context
    poisoned = memory.clone()
    poisoned[1, 2:] = 1e4
    c2, a2 = attention(s, poisoned, mask)
    torch.testing.assert_close(c2, c, atol=0, rtol=0)
    torch.testing.assert_close(a2, a, atol=0, rtol=0)


def _reference_scores(kind, attention, s, memory):
    """score(s_i, h_j) computed one pair at a time from the formula."""
    B, T, _ = s.shape
    S = memory.size(1)
    scores = torch.empty(B, T, S)
    for b in range(B):
        for i in range(T):
            for j in range(S):
                s_i, h_j = s[b, i], memory[b, j]
                if kind == "dot":
                    scores[b, i, j] = s_i @ h_j
                elif kind == "general":
                    scores[b, i, j] = s_i @ (attention.W.weight @ h_j)
                else:
                    hidden = torch.tanh(attention.W_s.weight @ s_i + attention.W_h.weight @ h_j + attention.W_h.bias)
                    scores[b, i, j] = attention.v.weight[0] @ hidden
    return scores


@pytest.mark.parametrize("kind", KINDS)
def test_weights_are_softmax_of_formula_and_context_is_weighted_sum(kind):
    s, memory, mask = _inputs(1)
    attention = build_attention(kind, 4)
    with torch.no_grad():
        c, a = attention(s, memory, mask)
        scores = _reference_scores(kind, attention, s, memory)
    scores[1, :, 2:] = float("-inf")
    expected = torch.softmax(scores, dim=-1)
    torch.testing.assert_close(a, expected, atol=1e-6, rtol=0)
    expected_c = torch.einsum("bts,bsh->bth", expected, memory)  # c_i = sum_j a_ij h_j
    torch.testing.assert_close(c, expected_c, atol=1e-6, rtol=0)


def test_precomputed_keys_are_reused():
    s, memory, mask = _inputs(2)
    for attention in (GeneralAttention(4), AdditiveAttention(4)):
        keys = attention.keys(memory)
        c1, a1 = attention(s, memory, mask, keys)
        c2, a2 = attention(s, memory, mask)
        torch.testing.assert_close(a1, a2, atol=0, rtol=0)
        torch.testing.assert_close(c1, c2, atol=0, rtol=0)
        # keys that differ change the result: they really are used
        _, a3 = attention(s, memory, mask, keys * 2)
        assert (a3 - a1).abs().max() > 1e-4


def test_unknown_kind():
    with pytest.raises(ValueError, match="additive"):
        build_attention("location", 4)


def _score_grads(attention, score, s, memory, G):
    params = [s, memory, attention.W_s.weight, attention.W_h.weight, attention.W_h.bias, attention.v.weight]
    out = score(s, attention.keys(memory))
    return out, torch.autograd.grad((out * G).sum(), params)


def test_additive_fast_scores_equal_the_textbook_formula_with_gradients():
    torch.manual_seed(0)
    attention = AdditiveAttention(8)
    s = torch.randn(5, 3, 8, requires_grad=True)
    memory = torch.randn(5, 7, 8, requires_grad=True)
    G = torch.randn(5, 3, 7)  # an arbitrary upstream gradient, not just ones
    fast, g_fast = _score_grads(attention, attention.score, s, memory, G)
    slow, g_slow = _score_grads(attention, attention.score_textbook, s, memory, G)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-5)
    for a, b in zip(g_fast, g_slow):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_additive_fast_scores_span_several_blocks(monkeypatch):
    import seqlab.nn.recurrent_attention as module

    monkeypatch.setattr(module, "_BLOCK_ELEMENTS", 64)  # forces one batch row per block
    torch.manual_seed(1)
    attention = AdditiveAttention(4)
    s = torch.randn(6, 2, 4, requires_grad=True)
    memory = torch.randn(6, 5, 4, requires_grad=True)
    G = torch.randn(6, 2, 5)
    fast, g_fast = _score_grads(attention, attention.score, s, memory, G)
    slow, g_slow = _score_grads(attention, attention.score_textbook, s, memory, G)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-5)
    for a, b in zip(g_fast, g_slow):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
