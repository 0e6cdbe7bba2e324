import math

import pytest
import torch
import torch.nn.functional as F

from seqlab.nn.attention import MultiHeadAttention, attention_explicit, attention_fused, causal_mask
from seqlab.nn.linear import PackedWeight, pack_for_decoding, packed_linear_works
from seqlab.precision import cpu_capability


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


def _count_fused_calls(monkeypatch) -> list:
    """A list that gains one entry per call of the fused kernel from MultiHeadAttention."""
    import seqlab.nn.attention as attention

    calls = []
    real = attention.attention_fused
    monkeypatch.setattr(attention, "attention_fused", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


@pytest.mark.parametrize("native", [True, False])
def test_auto_takes_the_explicit_path_for_bf16_only_where_bf16_is_native(monkeypatch, cpu_bf16, native):
    from seqlab.nn.attention import SHORT_KEYS

    cpu_bf16(native)
    calls = _count_fused_calls(monkeypatch)
    mha = MultiHeadAttention(16, 4).eval()
    x = torch.randn(2, SHORT_KEYS + 1, 16)  # longer than the short-key rule
    fp32, _ = mha(x, x, x)
    assert calls == [1]  # fp32: the fused kernel on every CPU
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16, _ = mha(x, x, x)
    assert calls == ([1] if native else [1, 1])  # bf16: explicit where native, the kernel elsewhere
    torch.testing.assert_close(bf16.float(), fp32, rtol=0, atol=5e-2)


@pytest.mark.parametrize("native", [True, False])
def test_auto_takes_the_explicit_path_for_short_float32_keys_also_in_training(monkeypatch, cpu_bf16, native):
    from seqlab.nn.attention import SHORT_KEYS

    cpu_bf16(native)
    calls = _count_fused_calls(monkeypatch)
    torch.manual_seed(0)
    auto = MultiHeadAttention(16, 4)
    fused = MultiHeadAttention(16, 4, impl="fused")
    fused.load_state_dict(auto.state_dict())
    x = torch.randn(3, 7, 16)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3, [True] * 6 + [False]])[:, None, None, :]
    outs, grads = [], []
    for mha in (auto, fused):
        xi = x.clone().requires_grad_()
        out, weights = mha(xi, xi, xi, mask)
        out.square().sum().backward()
        assert weights is None  # the explicit path keeps its weights to itself unless asked
        outs.append(out)
        grads.append((xi.grad, mha.W_qkv.weight.grad))
    assert calls == [1]  # only the forced fused module: short keys with autograd on are explicit
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    long = torch.randn(2, SHORT_KEYS + 1, 16)
    auto(long, long, long)
    assert calls == [1, 1]  # longer keys: the fused kernel
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto(x, x, x, mask)
    assert calls == ([1, 1] if native else [1, 1, 1])  # bf16 short keys: explicit only where native


def test_auto_takes_the_explicit_path_for_the_short_queries_of_a_decoding_step(monkeypatch):
    import seqlab.nn.attention as attention

    calls = _count_fused_calls(monkeypatch)
    mha = MultiHeadAttention(16, 4).eval()
    short = torch.randn(2, attention.DECODING_QUERIES, 16)
    long = torch.randn(2, attention.DECODING_QUERIES + 1, 16)
    memory = torch.randn(2, attention.SHORT_KEYS + 30, 16)  # too long for the short-key rule
    with torch.no_grad():
        steps = [mha(short, memory, memory)[0], mha(short[:, :1], memory, memory)[0]]
    assert calls == []  # a decoding step: explicit, autograd off, whatever the key length
    with torch.no_grad():
        mha(long, memory, memory)
    assert calls == [1]  # a longer query block: the fused kernel
    mha(short, memory, memory)
    assert calls == [1, 1]  # autograd on (training): the fused kernel
    with torch.no_grad():
        fused = [attention.attention_fused(mha.project_q(q), *mha.project_kv(memory, memory), None)
                 for q in (short, short[:, :1])]
    for step, f in zip(steps, fused):
        torch.testing.assert_close(step, mha.W_o(mha.merge_heads(f)), rtol=1e-5, atol=1e-5)


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


def _separate(mha, x, key=None, value=None):
    """x W_Q, key W_K, value W_V with W_Q, W_K, W_V the row blocks of W_qkv, each (B, h, T, d_k)."""
    W_q, W_k, W_v = mha.W_qkv.weight.chunk(3)
    b_q, b_k, b_v = mha.W_qkv.bias.chunk(3)
    key = x if key is None else key
    value = x if value is None else value
    return [mha.split_heads(F.linear(t, W, b)) for t, W, b in ((x, W_q, b_q), (key, W_k, b_k), (value, W_v, b_v))]


def test_stacked_qkv_projection_equals_the_three_projections():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4)
    x = torch.randn(3, 5, 16)
    for got, want in zip(mha.project_qkv(x), _separate(mha, x)):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    # self-attention (one tensor) takes the stacked path; equal copies take the separate one
    out_self, _ = mha(x, x, x)
    out_separate, _ = mha(x, x.clone(), x.clone())
    torch.testing.assert_close(out_self, out_separate, rtol=0, atol=1e-6)
    grads = torch.autograd.grad(out_self.sum(), [mha.W_qkv.weight, mha.W_qkv.bias])
    reference = torch.autograd.grad(out_separate.sum(), [mha.W_qkv.weight, mha.W_qkv.bias])
    for got, want in zip(grads, reference):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_cross_attention_projects_keys_and_values_with_one_product_equal_to_two():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4)
    y, memory = torch.randn(3, 2, 16), torch.randn(3, 5, 16)
    q_want, k_want, v_want = _separate(mha, y, memory, memory)
    k, v = mha.project_kv(memory, memory)  # key is value: [W_K; W_V] in one product
    torch.testing.assert_close(mha.project_q(y), q_want, rtol=0, atol=1e-6)
    torch.testing.assert_close(k, k_want, rtol=0, atol=1e-6)
    torch.testing.assert_close(v, v_want, rtol=0, atol=1e-6)
    k2, v2 = mha.project_kv(memory, memory.clone())  # distinct tensors: two products
    torch.testing.assert_close(k2, k, rtol=0, atol=1e-6)
    torch.testing.assert_close(v2, v, rtol=0, atol=1e-6)


def test_a_state_dict_with_separate_q_k_v_loads_into_the_stacked_parameter():
    # run folders written before W_qkv stored W_q, W_k and W_v apart
    torch.manual_seed(3)
    old = {name: torch.nn.Linear(16, 16) for name in ("W_q", "W_k", "W_v", "W_o")}
    state = {f"{name}.{part}": getattr(layer, part).detach()
             for name, layer in old.items() for part in ("weight", "bias")}
    mha = MultiHeadAttention(16, 4).eval()
    mha.load_state_dict(state)  # strict: no key missing or left over
    x, memory = torch.randn(2, 3, 16), torch.randn(2, 4, 16)
    with torch.no_grad():
        q, k, v = (old[n](t) for n, t in (("W_q", x), ("W_k", memory), ("W_v", memory)))
        heads = attention_explicit(mha.split_heads(q), mha.split_heads(k), mha.split_heads(v))[0]
        want = old["W_o"](mha.merge_heads(heads))
        torch.testing.assert_close(mha(x, memory, memory)[0], want, rtol=0, atol=1e-5)


def test_decoding_reads_the_parameters_themselves_so_every_update_is_seen():
    # no cache keyed on version counters: in-place writes, writes through .data and a fused
    # optimizer step (which moves no version counter) are all seen by the next decoding step
    torch.manual_seed(1)
    mha = MultiHeadAttention(16, 4)
    x = torch.randn(2, 3, 16)
    opt = torch.optim.Adam(mha.parameters(), lr=0.1, fused=True)
    with torch.inference_mode():
        mha.project_qkv(x)
    mha(x, x, x)[0].pow(2).sum().backward()
    opt.step()
    mha.W_qkv.bias.data[20:] = 0.5  # a write that moves nothing (weight averaging, surgery)
    with torch.inference_mode():
        for got, want in zip(mha.project_qkv(x), _separate(mha, x)):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_forward_writes_nothing_into_the_module():
    mha = MultiHeadAttention(16, 4).eval()
    pack_for_decoding(mha, precision="bf16")  # packs where this CPU can
    modules = list(mha.modules())
    before = [dict(vars(m)) for m in modules]
    x, memory = torch.randn(2, 3, 16), torch.randn(2, 4, 16)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        mha(x, x, x)
        mha(x, memory, memory)
    with torch.no_grad():
        mha(x, x, x)
    for m, old in zip(modules, before):
        assert vars(m).keys() == old.keys() and all(vars(m)[k] is v for k, v in old.items())


@pytest.mark.skipif(not packed_linear_works(), reason=f"this CPU (capability {cpu_capability()}) has no native "
                    "bf16 or no working oneDNN packed linear")
def test_packed_self_and_cross_attention_equal_the_unpacked_bf16_products(monkeypatch):
    torch.manual_seed(2)
    mha = MultiHeadAttention(16, 4).eval()
    x, memory = torch.randn(2, 3, 16), torch.randn(2, 4, 16)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        plain = [mha(x, x, x)[0], mha(x, memory, memory)[0]]
    assert pack_for_decoding(mha, precision="bf16")
    calls = []
    real = PackedWeight.__call__
    monkeypatch.setattr(PackedWeight, "__call__", lambda self, t: calls.append(1) or real(self, t))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        packed = [mha(x, x, x)[0], mha(x, memory, memory)[0]]
    assert len(calls) == 5  # W_qkv and W_o; then W_Q, [W_K; W_V] and W_o
    for got, want in zip(packed, plain):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
