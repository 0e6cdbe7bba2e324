import pytest
import torch
import torch.nn.functional as F

from seqlab.config import TransformerConfig
from seqlab.models.transformer import build_transformer
from seqlab.text.specials import EOS, PAD, SOS


def tiny(**kw):
    cfg = TransformerConfig(layers=2, d_model=32, heads=4, ffn=64, dropout=0.0, max_positions=64, **kw)
    torch.manual_seed(0)
    return build_transformer(cfg, 20, 23).eval()


def _batch():
    src = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, PAD, PAD]])
    tgt_in = torch.tensor([[SOS, 4, 5, 6], [SOS, 7, 8, PAD]])
    return src, tgt_in


@pytest.mark.parametrize("options", [dict(norm="post", positions="sinusoidal"), dict(norm="pre", positions="learned"),
                                     dict(norm="none", residual=False, positions="none")],  # the ablated one too
                         ids=["post-sinusoidal", "pre-learned", "ablated"])
def test_cached_step_by_step_decoding_equals_full_forward(options):
    model = tiny(**options)
    src, tgt_in = _batch()
    with torch.no_grad():
        full = model(src, tgt_in)
        state = model.encode(src)
        steps = []
        for t in range(tgt_in.size(1)):
            logits, state = model.decode_step(state, tgt_in[:, t])
            steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=0, atol=1e-5)
    assert state.step == 4 and state.self_k[0].shape == (2, 4, 4, 8)


def test_future_target_tokens_do_not_change_earlier_logits():
    model = tiny()
    src, tgt_in = _batch()
    changed = tgt_in.clone()
    changed[:, 3] = 13
    with torch.no_grad():
        a, b = model(src, tgt_in), model(src, changed)
    torch.testing.assert_close(a[:, :3], b[:, :3])
    assert not torch.allclose(a[:, 3], b[:, 3])


def test_source_padding_does_not_change_the_output():
    model = tiny()
    src = torch.tensor([[10, 11, 12]])
    padded = torch.tensor([[10, 11, 12, PAD, PAD, PAD]])
    tgt_in = torch.tensor([[SOS, 7, 8]])
    with torch.no_grad():
        torch.testing.assert_close(model(src, tgt_in), model(padded, tgt_in), rtol=0, atol=1e-5)


def test_cross_attention_weights_cover_the_source_and_ignore_padding():
    model = tiny()
    src, tgt_in = _batch()
    with torch.no_grad():
        attn = model.cross_attention(src, tgt_in)
        _, state = model.decode_step(model.encode(src), tgt_in[:, 0])
    assert attn.shape == (2, 4, 5)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 4))
    assert torch.all(attn[1, :, 3:] == 0)
    torch.testing.assert_close(state.attention, attn[:, 0], rtol=0, atol=1e-5)


def test_tied_and_shared_embeddings_are_one_parameter():
    cfg = TransformerConfig(layers=1, d_model=16, heads=2, ffn=32, share_embeddings=True, tie_output=True)
    model = build_transformer(cfg, 30, 30)
    assert model.generator.weight is model.encoder.embed.embedding.weight is model.tgt_embed.embedding.weight
    untied = build_transformer(TransformerConfig(layers=1, d_model=16, heads=2, ffn=32, tie_output=False), 30, 31)
    assert untied.generator.weight is not untied.tgt_embed.embedding.weight


def test_state_select_reorders_the_cache_for_beam_search():
    model = tiny()
    src, tgt_in = _batch()
    with torch.no_grad():
        _, state = model.decode_step(model.encode(src), tgt_in[:, 0])
        picked = state.select(torch.tensor([1, 1, 0]))
        logits, _ = model.decode_step(picked, torch.tensor([7, 7, 4]))
        ref1, _ = model.decode_step(state, torch.tensor([4, 7]))
    torch.testing.assert_close(logits[0], ref1[1])
    torch.testing.assert_close(logits[2], ref1[0])


def test_learns_to_copy_sequences_exactly():
    """The annotated-transformer's first proof: a small model learns the copy task."""
    torch.manual_seed(0)
    cfg = TransformerConfig(layers=2, d_model=64, heads=4, ffn=128, dropout=0.0, max_positions=32)
    model = build_transformer(cfg, 14, 14)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.9, 0.98))
    steps = 300  # linear warmup over 50 steps, then linear decay (200 leave 1 of 50 rows wrong for some seeds)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50) * max(0.02, 1 - s / steps))
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        src = torch.randint(4, 14, (64, 5), generator=g)
        tgt_in = torch.cat([torch.full((64, 1), SOS), src], 1)
        tgt_out = torch.cat([src, torch.full((64, 1), EOS)], 1)
        loss = F.cross_entropy(model(src, tgt_in).flatten(0, 1), tgt_out.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    src = torch.randint(4, 14, (50, 5), generator=g)
    with torch.no_grad():
        state, y, out = model.encode(src), torch.full((50,), SOS), []
        for _ in range(6):
            logits, state = model.decode_step(state, y)
            y = logits.argmax(-1)
            out.append(y)
    out = torch.stack(out, 1)
    assert torch.equal(out[:, :5], src)
    assert torch.all(out[:, 5] == EOS)


def test_trainer_loss_path_equals_forward_then_loss():
    from seqlab.training.loss import label_smoothed_nll, output_layer_nll

    cfg = TransformerConfig(layers=2, d_model=32, heads=4, ffn=64, dropout=0.2, max_positions=64)
    torch.manual_seed(0)
    model = build_transformer(cfg, 23, 23).train()
    src, tgt_in = _batch()
    tgt_out = torch.tensor([[4, 5, 6, EOS], [7, 8, EOS, PAD]])
    torch.manual_seed(1)
    ref = label_smoothed_nll(model(src, tgt_in), tgt_out, epsilon=0.1)
    torch.manual_seed(1)
    out = model.output_layer
    assert out.weight is model.tgt_embed.embedding.weight  # tied
    got = output_layer_nll(model.features(src, tgt_in), out.weight, out.bias, tgt_out, epsilon=0.1)
    torch.testing.assert_close(got[0], ref[0], rtol=1e-5, atol=1e-5)
    ref_grad = torch.autograd.grad(ref[0], out.weight)[0]
    torch.manual_seed(1)
    got = output_layer_nll(model.features(src, tgt_in), out.weight, out.bias, tgt_out, epsilon=0.1)
    torch.testing.assert_close(torch.autograd.grad(got[0], out.weight)[0], ref_grad, rtol=1e-4, atol=1e-6)


def test_beam_rows_share_the_cross_attention_keys_and_match_repeated_ones():
    model = tiny()
    src, _ = _batch()
    with torch.no_grad():
        grouped = model.encode(src).repeat_rows(3)  # rows 0-2: sentence 0, rows 3-5: sentence 1
        assert grouped.group == 3 and grouped.cross_k[0].size(0) == 2 and grouped.self_k[0].size(0) == 6
        rows = torch.tensor([0, 0, 0, 1, 1, 1])
        plain = model.encode(src).select(rows)  # group 1: every field copied per row
        assert plain.cross_k[0].size(0) == 6
        y = torch.tensor([SOS] * 6)
        for step_tokens in ([4, 5, 6, 7, 8, 9], [9, 4, 4, 5, 6, 7]):
            a, grouped = model.decode_step(grouped, y)
            b, plain = model.decode_step(plain, y)
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
            torch.testing.assert_close(grouped.attention, plain.attention, rtol=0, atol=1e-6)
            reorder = torch.tensor([2, 0, 0, 4, 5, 3])  # within each sentence's beams
            grouped, plain = grouped.select(reorder), plain.select(reorder)
            y = torch.tensor(step_tokens)
        a, _ = model.decode_step(grouped, y)
        b, _ = model.decode_step(plain, y)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
        kept = grouped.select(torch.tensor([3, 4, 5]))  # sentence 0 finished: drop its rows
        assert kept.cross_k[0].size(0) == 1 and torch.equal(kept.cross_k[0], grouped.cross_k[0][1:])
        with pytest.raises(ValueError, match="single old group"):
            grouped.select(torch.tensor([0, 1, 3, 3, 4, 5]))


def test_without_positions_the_encoder_is_permutation_equivariant():
    perm = torch.tensor([3, 0, 4, 1, 2])
    src = torch.tensor([[5, 6, 7, 8, 9]])
    for positions, equivariant in (("none", True), ("sinusoidal", False)):
        model = tiny(positions=positions)
        with torch.no_grad():
            memory, _ = model.run_encoder(src)
            permuted, _ = model.run_encoder(src[:, perm])
        assert torch.allclose(permuted, memory[:, perm], atol=1e-5) == equivariant, positions


@pytest.mark.parametrize("norm,residual", [("none", True), ("post", False), ("pre", False)])
def test_add_norm_ablations_compute_what_they_say(norm, residual):
    from seqlab.nn.transformer_layers import AddNorm

    torch.manual_seed(0)
    layer = AddNorm(8, dropout=0.0, pre_norm=norm == "pre", residual=residual, layer_norm=norm != "none")
    x, W = torch.randn(2, 3, 8), torch.randn(8, 8)
    sublayer = lambda h: h @ W  # noqa: E731
    ln = F.layer_norm
    expected = {("none", True): x + x @ W, ("post", False): ln(x @ W, (8,)), ("pre", False): ln(x, (8,)) @ W}
    torch.testing.assert_close(layer(x, sublayer), expected[(norm, residual)], atol=1e-5, rtol=0)


def test_weights_saved_before_the_encoder_was_a_module_load_into_the_same_model():
    """Run folders name the encoder's weights src_embed.*, encoder_layers.*, encoder_norm.*."""
    model = tiny(norm="pre")
    old_names = {"encoder.embed.": "src_embed.", "encoder.layers.": "encoder_layers.", "encoder.norm.": "encoder_norm."}
    saved = {}
    for key, value in model.state_dict().items():
        prefix = next((p for p in old_names if key.startswith(p)), None)
        saved[old_names[prefix] + key[len(prefix):] if prefix else key] = value.clone()
    assert any(k.startswith("encoder_layers.") for k in saved)
    fresh = tiny(norm="pre")
    torch.nn.init.zeros_(fresh.encoder.layers[0].ffn.W_1.weight)
    type(fresh).upgrade_state_dict(saved, "")
    fresh.load_state_dict(saved, strict=True)
    src, tgt_in = _batch()
    with torch.no_grad():
        assert torch.equal(fresh(src, tgt_in), model(src, tgt_in))
