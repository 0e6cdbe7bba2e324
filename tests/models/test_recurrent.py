"""Recurrent seq2seq: step decoding equals the full forward, states reorder, tiny tasks are learned."""

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from seqlab.config import RecurrentConfig
from seqlab.errors import ConfigError
from seqlab.models.recurrent import RecurrentDecoderState, build_recurrent
from seqlab.text.specials import EOS, PAD, SOS

V = 16


def _model(seed=0, **overrides):
    torch.manual_seed(seed)
    options = dict(type="lstm", layers=2, embedding=8, hidden=12, bidirectional=True, dropout=0.0)
    options.update(overrides)
    return build_recurrent(RecurrentConfig(**options), V, V).eval()


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, V, (3, 7), generator=g)
    src[1, 4:] = PAD
    src[2, 2:] = PAD
    tgt_in = torch.randint(4, V, (3, 5), generator=g)
    tgt_in[:, 0] = SOS
    tgt_in[2, 3:] = PAD
    return src, tgt_in


def _stepwise(model, src, tgt_in):
    state, logits, attention = model.encode(src), [], []
    for t in range(tgt_in.size(1)):
        step_logits, state = model.decode_step(state, tgt_in[:, t])
        logits.append(step_logits)
        attention.append(state.attention)
    return torch.stack(logits, dim=1), attention


@pytest.mark.parametrize(
    "options",
    [
        dict(attention="none", input_feeding=False),
        dict(attention="dot", input_feeding=False),
        dict(attention="general", input_feeding=False),
        dict(attention="additive", input_feeding=False),
        dict(attention="additive", input_feeding=True, type="gru"),
        dict(attention="none", input_feeding=False, type="gru", gru_reset="before", cells="explicit"),
    ],
)
def test_decode_step_reproduces_forward(options):
    model = _model(**options)
    src, tgt_in = _batch()
    with torch.no_grad():
        full = model(src, tgt_in)
        steps, attention = _stepwise(model, src, tgt_in)
    assert full.shape == (3, 5, V)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=0)
    if options["attention"] == "none":
        assert attention[0] is None and model.cross_attention(src, tgt_in) is None
    else:
        weights = model.cross_attention(src, tgt_in)
        torch.testing.assert_close(weights, torch.stack(attention, dim=1), atol=1e-6, rtol=0)
        assert torch.all(weights[1, :, 4:] == 0) and torch.all(weights[2, :, 2:] == 0)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_explicit_cells_load_fused_checkpoint_and_agree(kind):
    fused = _model(type=kind, cells="fused")
    explicit = _model(seed=1, type=kind, cells="explicit")
    explicit.load_state_dict(fused.state_dict())
    src, tgt_in = _batch(1)
    with torch.no_grad():
        torch.testing.assert_close(explicit(src, tgt_in), fused(src, tgt_in), atol=1e-5, rtol=0)


@pytest.mark.parametrize("lengths", [[7, 4, 2, 7], [7, 4, 4, 7]])
def test_fused_and_explicit_cells_give_equal_losses_and_gradients(lengths):
    """The fused encoder (padded head, short tail) trains exactly like the textbook cells."""
    fused = _model(attention="additive", cells="fused")
    explicit = _model(seed=1, attention="additive", cells="explicit")
    explicit.load_state_dict(fused.state_dict())
    src, tgt_in = _batch(6)
    src = torch.cat([src, src[:1]])
    tgt_in = torch.cat([tgt_in, tgt_in[:1]])
    for row, n in enumerate(lengths):
        src[row, n:] = PAD
    tgt_out = torch.roll(tgt_in, -1, dims=1)
    losses = []
    for model in (fused, explicit):
        model.train()
        loss = F.cross_entropy(model(src, tgt_in).reshape(-1, V), tgt_out.reshape(-1), ignore_index=PAD)
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[0], losses[1], atol=1e-6, rtol=0)
    explicit_grads = dict(explicit.named_parameters())
    for name, p in fused.named_parameters():
        torch.testing.assert_close(p.grad, explicit_grads[name].grad, atol=1e-5, rtol=0, msg=name)


def test_extra_source_padding_changes_nothing():
    model = _model(attention="general")
    src, tgt_in = _batch(2)
    padded = torch.cat([src, torch.full((3, 4), PAD)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(padded, tgt_in), model(src, tgt_in), atol=1e-6, rtol=0)


def test_state_select_reorders_and_repeats_rows():
    model = _model(attention="additive", input_feeding=True)
    src, tgt_in = _batch(3)
    index = torch.tensor([2, 0, 0])
    with torch.no_grad():
        state = model.encode(src)
        _, state = model.decode_step(state, tgt_in[:, 0])
        assert isinstance(state, RecurrentDecoderState)
        chosen = state.select(index)
        logits_sel, _ = model.decode_step(chosen, tgt_in[index, 1])
        logits, _ = model.decode_step(state, tgt_in[:, 1])
    torch.testing.assert_close(logits_sel, logits[index], atol=1e-6, rtol=0)
    assert chosen.h.shape == (3, 2, 12) and chosen.c.shape == (3, 2, 12)


def test_teacher_forcing_zero_feeds_argmax_and_sampling_follows_the_seed():
    model = _model(attention="dot")
    src, tgt_in = _batch(4)
    with torch.no_grad():
        free = model(src, tgt_in, teacher_forcing=0.0)
        state, y, greedy = model.encode(src), tgt_in[:, 0], []
        for _ in range(tgt_in.size(1)):
            logits, state = model.decode_step(state, y)
            greedy.append(logits)
            y = logits.argmax(-1)
        torch.testing.assert_close(free, torch.stack(greedy, dim=1), atol=1e-5, rtol=0)

        torch.manual_seed(7)
        mixed = model(src, tgt_in, teacher_forcing=0.5)
        torch.manual_seed(7)
        state, y, expected = model.encode(src), tgt_in[:, 0], []
        for t in range(tgt_in.size(1)):
            logits, state = model.decode_step(state, y)
            expected.append(logits)
            if t + 1 < tgt_in.size(1):
                y = torch.where(torch.rand(3) < 0.5, tgt_in[:, t + 1], logits.argmax(-1))
        torch.testing.assert_close(mixed, torch.stack(expected, dim=1), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="teacher_forcing"):
        model(src, tgt_in, teacher_forcing=1.5)


def test_safetensors_round_trip(tmp_path):
    model = _model(type="gru", attention="additive")
    save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
    other = _model(seed=5, type="gru", attention="additive")
    other.load_state_dict(load_file(str(tmp_path / "model.safetensors")))
    src, tgt_in = _batch(5)
    with torch.no_grad():
        torch.testing.assert_close(other(src, tgt_in), model(src, tgt_in), atol=0, rtol=0)


def test_shared_and_tied_embeddings():
    model = _model(embedding=12, share_embeddings=True, tie_output=True)
    assert model.encoder.embedding is model.tgt_embedding
    assert model.W_y.weight is model.tgt_embedding.weight


@pytest.mark.parametrize(
    "options, key",
    [
        (dict(type="gru", gru_reset="before", cells="fused"), "model.gru_reset"),
        (dict(tie_output=True, embedding=8, hidden=12), "model.tie_output"),
        (dict(share_embeddings=True), "model.share_embeddings"),
    ],
)
def test_impossible_configs_name_the_key(options, key):
    with pytest.raises(ConfigError, match=key):
        build_recurrent(RecurrentConfig(**options), 10, 12)


# ------------------------------------------------------------------ learning a tiny task


def _reverse_batch(g, n, lengths, symbols):
    """Random sequences over ids 4..4+symbols-1 and their reversal, with <eos> on both sides."""
    S = lengths[1]
    L = torch.randint(lengths[0], S + 1, (n,), generator=g)  # (n,)
    x = torch.randint(4, 4 + symbols, (n, S), generator=g)
    position = torch.arange(S)
    valid = position[None, :] < L[:, None]  # (n, S)
    y = x.gather(1, (L[:, None] - 1 - position).clamp(min=0))  # y_p = x_{L-1-p}
    rows, pad = torch.arange(n), torch.full((n, 1), PAD)
    src = torch.cat([torch.where(valid, x, PAD), pad], dim=1)
    tgt_out = torch.cat([torch.where(valid, y, PAD), pad], dim=1)
    src[rows, L], tgt_out[rows, L] = EOS, EOS
    tgt_in = torch.cat([torch.full((n, 1), SOS), torch.where(valid, y, PAD)], dim=1)
    return src, tgt_in, tgt_out


def _greedy(model, src, steps):
    state, y, out = model.encode(src), torch.full((src.size(0),), SOS), []
    for _ in range(steps):
        logits, state = model.decode_step(state, y)
        y = logits.argmax(-1)
        out.append(y)
    return torch.stack(out, dim=1)


def _train_until_exact(model, lengths, symbols, max_steps=400):
    """Adam + clipping on fresh batches; return held-out exact match (greedy) when it reaches 1."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    src_t, _, out_t = _reverse_batch(torch.Generator().manual_seed(123), 100, lengths, symbols)
    exact = 0.0
    for step in range(1, max_steps + 1):
        model.train()
        src, tgt_in, tgt_out = _reverse_batch(g, 128, lengths, symbols)
        loss = F.cross_entropy(model(src, tgt_in).reshape(-1, V), tgt_out.reshape(-1), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 25 == 0:
            model.eval()
            with torch.no_grad():
                pred = _greedy(model, src_t, out_t.size(1))
            exact = ((pred == out_t) | (out_t == PAD)).all(dim=1).float().mean().item()
            if exact == 1.0:
                break
    return exact


@pytest.mark.parametrize(
    "kind, attention, input_feeding",
    [
        ("rnn", "none", False),
        ("lstm", "none", False),
        ("gru", "none", False),
        ("rnn", "additive", False),
        ("lstm", "additive", False),
        ("gru", "additive", False),
        ("lstm", "dot", True),
        ("gru", "general", False),
    ],
)
def test_learns_to_reverse(kind, attention, input_feeding):
    """Held-out sequences reversed exactly by greedy decoding.

    With attention: 3-6 symbols from 10. The fixed context vector needs many more updates for long
    sequences (the bottleneck), so without attention the test uses 2-4 symbols from 6.
    """
    torch.manual_seed(0)
    cfg = RecurrentConfig(
        type=kind,
        attention=attention,
        layers=1,
        embedding=16,
        hidden=32,
        bidirectional=True,
        input_feeding=input_feeding,
        dropout=0.0,
    )
    model = build_recurrent(cfg, V, V)
    lengths, symbols = ((2, 4), 6) if attention == "none" else ((3, 6), 10)
    assert _train_until_exact(model, lengths, symbols) == 1.0


@pytest.mark.parametrize("input_feeding,teacher_forcing", [(False, 1.0), (True, 0.5)])
def test_trainer_loss_path_equals_forward_then_loss(input_feeding, teacher_forcing):
    # the trainer feeds features() into output_layer_nll; with dropout and sampled feeding under the
    # same seed that must be exactly the loss of forward()'s logits
    from seqlab.training.loss import label_smoothed_nll, output_layer_nll

    model = _model(attention="additive", input_feeding=input_feeding, dropout=0.3).train()
    src, tgt_in = _batch()
    tgt_out = torch.cat([tgt_in[:, 1:], torch.full((3, 1), EOS)], dim=1).masked_fill(tgt_in.eq(PAD), PAD)
    torch.manual_seed(5)
    ref = label_smoothed_nll(model(src, tgt_in, teacher_forcing=teacher_forcing), tgt_out, epsilon=0.1)
    torch.manual_seed(5)
    h = model.features(src, tgt_in, teacher_forcing=teacher_forcing)
    got = output_layer_nll(h, model.output_layer.weight, model.output_layer.bias, tgt_out, epsilon=0.1)
    torch.testing.assert_close(got[0], ref[0], rtol=1e-5, atol=1e-5)
    assert got[2] == ref[2]


def test_relu_is_for_the_vanilla_rnn_only():
    with pytest.raises(ConfigError, match="model.nonlinearity"):
        build_recurrent(RecurrentConfig(type="lstm", nonlinearity="relu"), 10, 10)
    model = build_recurrent(RecurrentConfig(type="rnn", nonlinearity="relu", embedding=8, hidden=8,
                                            attention="none", bidirectional=False), 10, 10)
    assert model.decoder_rnn.nonlinearity == "relu" and model.encoder.rnn.nonlinearity == "relu"
