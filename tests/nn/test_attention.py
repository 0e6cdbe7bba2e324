import math

import pytest
import torch

from seqlab.nn.attention import MultiHeadAttention, attention_explicit, attention_fused, causal_mask


def _qkv(seed=0, b=2, h=3, tq=5, tk=7, d=8):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, h, tq, d, generator=g), torch.randn(b, h, tk, d, generator=g),
            torch.randn(b, h, tk, d, generator=g))


def test_explicit_matches_the_formula_written_by_hand():
    q, k, v = _qkv()
    out, w = attention_explicit(q, k, v)
    b, h, i = 1, 2, 3
    scores = torch.tensor([q[b, h, i] @ k[b, h, j] / math.sqrt(8) for j in range(7)])
    expected_w = scores.exp() / scores.exp().sum()
    torch.testing.assert_close(w[b, h, i], expected_w, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out[b, h, i], expected_w @ v[b, h], rtol=1e-5, atol=1e-6)


def test_rows_sum_to_one_and_masked_keys_get_zero_weight():
    q, k, v = _qkv()
    key_mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])[:, None, None, :]
    _, w = attention_explicit(q, k, v, key_mask)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 5))
    assert torch.all(w[1, :, :, 4:] == 0)
    assert torch.all(w[1, :, :, :4] > 0)


def test_causal_mask_gives_zero_weight_to_future_positions():
    q, k, v = _qkv(tq=6, tk=6)
    _, w = attention_explicit(q, k, v, causal_mask(6))
    future = ~torch.ones(6, 6, dtype=torch.bool).tril()
    assert torch.all(w[..., future] == 0)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 6))
    # the first position can only see itself
    assert torch.all(w[..., 0, 0] == 1)


def test_causal_mask_for_a_query_block_at_the_end():
    m = causal_mask(2, 4)
    assert m.tolist() == [[True, True, True, False], [True, True, True, True]]


@pytest.mark.parametrize("causal", [False, True])
def test_explicit_and_fused_agree_in_float32(causal):
    q, k, v = _qkv(seed=3, tq=6, tk=6)
    mask = None if causal else torch.tensor([[True] * 6, [True] * 2 + [False] * 4])[:, None, None, :]
    fused = attention_fused(q, k, v, mask, causal=causal)
    explicit, _ = attention_explicit(q, k, v, causal_mask(6) if causal else mask)
    torch.testing.assert_close(fused, explicit, rtol=0, atol=1e-5)


def test_multi_head_fast_and_weight_paths_agree():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4).eval()
    x, m = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    mask = torch.tensor([[True] * 7, [True] * 3 + [False] * 4])[:, None, None, :]
    fast, none = mha(x, m, m, mask)
    slow, w = mha(x, m, m, mask, need_weights=True)
    assert none is None and w.shape == (2, 4, 5, 7)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-5)


def test_heads_are_independent_projections_of_size_d_over_h():
    mha = MultiHeadAttention(12, 3)
    x = torch.randn(2, 4, 12)
    heads = mha.split_heads(x)
    assert heads.shape == (2, 3, 4, 4)
    torch.testing.assert_close(heads[:, 1], x[..., 4:8])
    torch.testing.assert_close(mha.merge_heads(heads), x)


def test_auto_uses_the_explicit_path_under_cpu_bf16_autocast_and_the_kernel_otherwise(monkeypatch):
    import seqlab.nn.attention as attention

    calls = []
    real = attention.attention_fused
    monkeypatch.setattr(attention, "attention_fused", lambda *a, **k: calls.append(1) or real(*a, **k))
    mha = MultiHeadAttention(16, 4).eval()
    x = torch.randn(2, 5, 16)
    fp32, _ = mha(x, x, x)
    assert calls == [1]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16, _ = mha(x, x, x)
    assert calls == [1]
    torch.testing.assert_close(bf16.float(), fp32, rtol=0, atol=5e-2)


def test_impl_can_be_forced_and_is_validated():
    x = torch.randn(1, 3, 8)
    explicit = MultiHeadAttention(8, 2, impl="explicit").eval()
    fused = MultiHeadAttention(8, 2, impl="fused").eval()
    fused.load_state_dict(explicit.state_dict())
    torch.testing.assert_close(explicit(x, x, x)[0], fused(x, x, x)[0], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="auto, explicit or fused"):
        MultiHeadAttention(8, 2, impl="flash")


@pytest.mark.parametrize("impl", ["explicit", "fused"])
def test_query_groups_sharing_keys_equal_repeated_keys(impl):
    # beam search: g = 3 query rows per sentence attend over that sentence's single key row
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, impl=impl).eval()
    memory = torch.randn(2, 5, 16)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])[:, None, None, :]  # (2, 1, 1, 5)
    query = torch.randn(6, 1, 16)  # rows 0-2: sentence 0, rows 3-5: sentence 1
    k, v = mha.project_kv(memory, memory)  # (2, h, 5, d_k)
    rows = torch.tensor([0, 0, 0, 1, 1, 1])
    shared, shared_w = mha.attend(query, k, v, mask, need_weights=True)
    repeated, repeated_w = mha.attend(query, k[rows], v[rows], mask[rows], need_weights=True)
    torch.testing.assert_close(shared, repeated, rtol=0, atol=1e-6)
    torch.testing.assert_close(shared_w, repeated_w, rtol=0, atol=1e-6)
    assert shared_w[3:, :, :, 3:].abs().max() == 0  # the padding of sentence 1 stays masked
    out, _ = mha.attend(query, k, v, mask)  # the weight-free path too
    torch.testing.assert_close(out, repeated, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="cannot share"):
        mha.attend(query[:5], k, v, mask)


def test_stacked_qkv_projection_equals_the_three_projections():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4)
    x = torch.randn(3, 5, 16)
    q, k, v = mha.project_qkv(x)
    torch.testing.assert_close(q, mha.split_heads(mha.W_q(x)), rtol=0, atol=1e-6)
    torch.testing.assert_close(k, mha.split_heads(mha.W_k(x)), rtol=0, atol=1e-6)
    torch.testing.assert_close(v, mha.split_heads(mha.W_v(x)), rtol=0, atol=1e-6)
    # self-attention (one tensor) takes the stacked path; equal copies take the separate one
    out_self, _ = mha(x, x, x)
    out_separate, _ = mha(x, x.clone(), x.clone())
    torch.testing.assert_close(out_self, out_separate, rtol=0, atol=1e-6)
    grads = torch.autograd.grad(out_self.sum(), [mha.W_q.weight, mha.W_k.weight, mha.W_v.bias])
    reference = torch.autograd.grad(out_separate.sum(), [mha.W_q.weight, mha.W_k.weight, mha.W_v.bias])
    for got, want in zip(grads, reference):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_stacked_weights_kept_for_decoding_follow_parameter_updates():
    torch.manual_seed(1)
    mha = MultiHeadAttention(16, 4)
    x = torch.randn(2, 3, 16)

    def separate():
        return [mha.split_heads(W(x)) for W in (mha.W_q, mha.W_k, mha.W_v)]

    with torch.no_grad():
        for got, want in zip(mha.project_qkv(x), separate()):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
        mha.W_k.weight.add_(1.0)  # an ordinary in-place update (moves the version counter)
        mha.W_v.bias.zero_()
        for got, want in zip(mha.project_qkv(x), separate()):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            q, _, _ = mha.project_qkv(x)
            assert q.dtype == torch.bfloat16 and mha._stacked[1].dtype == torch.bfloat16
        torch.testing.assert_close(q.float(), separate()[0], rtol=0, atol=5e-2)
        assert mha.project_qkv(x)[0].dtype == torch.float32  # autocast off again: rebuilt in fp32


def test_stacked_weights_kept_for_decoding_follow_a_fused_optimizer_step():
    # torch.optim.Adam(fused=True), which the trainer uses, does not move the version counters
    torch.manual_seed(1)
    mha = MultiHeadAttention(16, 4)
    x = torch.randn(2, 3, 16)
    opt = torch.optim.Adam(mha.parameters(), lr=0.1, fused=True)
    with torch.inference_mode():
        mha.project_qkv(x)  # builds the stacked weights
    mha(x, x, x)[0].pow(2).sum().backward()
    opt.step()
    with torch.inference_mode():
        got = mha.project_qkv(x)
        want = [mha.split_heads(W(x)) for W in (mha.W_q, mha.W_k, mha.W_v)]
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-6)
