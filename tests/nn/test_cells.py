"""Explicit textbook cells and fused layers against PyTorch (packed sequences), and the two GRU forms."""

import pytest
import torch
from torch import nn

from seqlab.nn.cells import (
    ExplicitRecurrent,
    FusedGRU,
    FusedLSTM,
    GRUCell,
    LSTMCell,
    RNNCell,
    make_recurrent,
    state_to_batch_first,
    state_to_layer_first,
)

TORCH_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
TORCH_CELLS = {"rnn": (RNNCell, nn.RNNCell), "lstm": (LSTMCell, nn.LSTMCell), "gru": (GRUCell, nn.GRUCell)}


@pytest.mark.parametrize("mode", ["rnn", "lstm", "gru"])
def test_cell_equals_torch_cell(mode):
    torch.manual_seed(0)
    ours_cls, ref_cls = TORCH_CELLS[mode]
    ref = ref_cls(5, 7)
    ours = ours_cls(5, 7)
    ours.load_state_dict(ref.state_dict())
    x_t, h = torch.randn(3, 5), torch.randn(3, 7)
    if mode == "lstm":
        C = torch.randn(3, 7)
        for a, b in zip(ours(x_t, (h, C)), ref(x_t, (h, C))):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    else:
        torch.testing.assert_close(ours(x_t, h), ref(x_t, h), atol=1e-6, rtol=0)


@pytest.mark.parametrize("mode", ["rnn", "lstm", "gru"])
def test_explicit_layer_equals_torch_layer(mode):
    """2 layers, bidirectional, padded variable lengths, given initial state: values and gradients."""
    torch.manual_seed(0)
    ref = TORCH_LAYERS[mode](5, 6, num_layers=2, bidirectional=True, batch_first=True)
    ours = ExplicitRecurrent.from_torch(ref)
    B, T = 4, 7
    lengths = torch.tensor([7, 3, 1, 5])
    x = torch.randn(B, T, 5)
    h0 = torch.randn(4, B, 6)
    state = (h0, torch.randn(4, B, 6)) if mode == "lstm" else h0

    x_ref = x.clone().requires_grad_(True)
    packed = nn.utils.rnn.pack_padded_sequence(x_ref, lengths, batch_first=True, enforce_sorted=False)
    out_ref, final_ref = ref(packed, state)
    out_ref, _ = nn.utils.rnn.pad_packed_sequence(out_ref, batch_first=True, total_length=T)
    x_ours = x.clone().requires_grad_(True)
    out, final = ours(x_ours, lengths, state)

    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=0)
    assert out.shape == (B, T, 12)
    assert out[1, 3:].abs().max() == 0  # padding outputs zero, like pad_packed_sequence
    for a, b in zip(final if mode == "lstm" else (final,), final_ref if mode == "lstm" else (final_ref,)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)

    weights = torch.randn(B, T, 12)
    (out_ref * weights).sum().backward()
    (out * weights).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=0)
    ref_grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[name].grad, atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_make_recurrent_switch_gives_identical_results(mode):
    """Same state_dict keys; a fused layer's weights loaded into an explicit one give equal outputs."""
    torch.manual_seed(1)
    fused = make_recurrent(mode, 4, 5, num_layers=2, bidirectional=True, cells="fused")
    explicit = make_recurrent(mode, 4, 5, num_layers=2, bidirectional=True, cells="explicit")
    assert list(fused.state_dict()) == list(explicit.state_dict())
    explicit.load_state_dict(fused.state_dict())
    x, lengths = torch.randn(3, 6, 4), torch.tensor([2, 6, 4])
    (out_f, _), (out_e, _) = fused(x, lengths), explicit(x, lengths)
    torch.testing.assert_close(out_e, out_f, atol=1e-5, rtol=0)
    back = explicit.to_torch()
    assert isinstance(back, FusedGRU if mode == "gru" else FusedLSTM)
    torch.testing.assert_close(back(x, lengths)[0], out_f, atol=0, rtol=0)


def _cho_gru(x, weights):
    """h_t = (1 - z_t) h_{t-1} + z_t tanh(W [r_t * h_{t-1}, x_t]) transcribed step by step.

    Our weights keep PyTorch's update gate u_t, which weighs h_{t-1}: the textbook gate is
    z_t = sigma(W_z [h, x] + b_z) with W_z = -W_u and b_z = -b_u.
    """
    W_x, W_h, b_x, b_h = weights
    H = W_h.size(1)
    W_r = torch.cat([W_h[:H], W_x[:H]], dim=1)  # acts on [h_{t-1}, x_t]
    W_z = -torch.cat([W_h[H : 2 * H], W_x[H : 2 * H]], dim=1)
    W = torch.cat([W_h[2 * H :], W_x[2 * H :]], dim=1)
    b_r, b_z, b = b_x[:H] + b_h[:H], -(b_x[H : 2 * H] + b_h[H : 2 * H]), b_x[2 * H :] + b_h[2 * H :]
    h = torch.zeros(x.size(0), H)
    outputs = []
    for t in range(x.size(1)):
        z = torch.sigmoid(torch.cat([h, x[:, t]], dim=1) @ W_z.T + b_z)
        r = torch.sigmoid(torch.cat([h, x[:, t]], dim=1) @ W_r.T + b_r)
        h_tilde = torch.tanh(torch.cat([r * h, x[:, t]], dim=1) @ W.T + b)
        h = (1 - z) * h + z * h_tilde
        outputs.append(h)
    return torch.stack(outputs, dim=1)


def test_gru_reset_before_is_cho_equation_and_differs_from_after():
    torch.manual_seed(2)
    before = ExplicitRecurrent("gru", 3, 4, gru_reset="before")
    after = ExplicitRecurrent("gru", 3, 4, gru_reset="after")
    after.load_state_dict(before.state_dict())
    x = torch.randn(2, 5, 3)
    out_before, _ = before(x)
    torch.testing.assert_close(out_before, _cho_gru(x, before.cell_weights(0, 0)), atol=1e-6, rtol=0)
    out_after, _ = after(x)
    assert (out_before - out_after).abs().max() > 1e-3
    with pytest.raises(ValueError, match="no fused equivalent"):
        before.to_torch()
    with pytest.raises(ValueError, match="explicit cells"):
        make_recurrent("gru", 3, 4, cells="fused", gru_reset="before")


def test_recorded_states_are_the_graph_tensors():
    torch.manual_seed(3)
    layer = ExplicitRecurrent("lstm", 3, 4, num_layers=2)
    layer.record_states = True
    x, lengths = torch.randn(2, 5, 3), torch.tensor([5, 2])
    out, (h_n, _) = layer(x, lengths)
    top = layer.recorded_states[1][0]
    assert len(layer.recorded_states) == 2 and len(top) == 5
    torch.testing.assert_close(torch.stack(top, dim=1)[0], out[0], atol=0, rtol=0)
    torch.testing.assert_close(top[1][1], h_n[1, 1], atol=0, rtol=0)  # row 1 stops at t = 1
    for h_t in top:
        h_t.retain_grad()
    out[:, -1].sum().backward()
    assert top[0].grad.abs().sum() > 0  # dL/dh_0 flows back through the recurrence


def test_state_layout_round_trip():
    h, C = torch.randn(3, 2, 4), torch.randn(3, 2, 4)  # (L, B, H)
    hb, Cb = state_to_batch_first((h, C))
    assert hb.shape == (2, 3, 4)
    h2, C2 = state_to_layer_first(hb, Cb)
    assert torch.equal(h2, h) and torch.equal(C2, C) and h2.is_contiguous()
    assert torch.equal(state_to_layer_first(*state_to_batch_first(h)), h)


def _packed_reference(ref, x, lengths, state):
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, final = ref(packed, state)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
    return out, final


@pytest.mark.parametrize(
    "mode, lengths",
    [
        ("lstm", [7, 3, 1, 7, 5, 2]),  # five lengths, one of them 1
        ("lstm", [4, 6, 4, 6, 6, 4]),  # two lengths
        ("lstm", [5, 5, 5, 5, 5, 5]),  # one length, shorter than the batch: one fused call
        ("gru", [2, 7, 4, 7, 3, 6]),
        ("rnn", [8, 1, 8, 5, 1, 3]),  # including the full width T
    ],
)
def test_fused_variable_lengths_equal_packing(mode, lengths):
    """Outputs, final states and gradients equal those of the whole batch packed, as before."""
    torch.manual_seed(4)
    ref = TORCH_LAYERS[mode](5, 6, num_layers=2, bidirectional=True, batch_first=True)
    ours = make_recurrent(mode, 5, 6, num_layers=2, bidirectional=True)
    ours.load_state_dict(ref.state_dict())
    B, T = len(lengths), 8
    lengths = torch.tensor(lengths)
    x = torch.randn(B, T, 5)
    h0 = torch.randn(4, B, 6)
    state = (h0, torch.randn(4, B, 6)) if mode == "lstm" else h0

    x_ref, x_ours = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_ref, final_ref = _packed_reference(ref, x_ref, lengths, state)
    out, final = ours(x_ours, lengths, state)
    finals = (final, final_ref) if mode == "lstm" else ((final,), (final_ref,))

    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=0)
    valid = torch.arange(T)[None, :] < lengths[:, None]
    assert out[~valid].abs().max() == 0
    for a, b in zip(*finals):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    weights = torch.randn(B, T, 12)
    ((out_ref * weights).sum() + sum((f**2).sum() for f in finals[1])).backward()
    ((out * weights).sum() + sum((f**2).sum() for f in finals[0])).backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=0)
    ref_grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[name].grad, atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn"])
def test_packed_path_of_accelerators_equals_the_grouped_path(mode):
    """Off the CPU the fused layers pack the whole batch (one kernel call); run here, that path
    gives the grouped path's outputs and final states, from a given state or from zeros."""
    torch.manual_seed(5)
    layer = make_recurrent(mode, 5, 6, num_layers=2, bidirectional=True)
    lengths = torch.tensor([7, 3, 1, 7, 5, 2])
    x = torch.randn(6, 8, 5)
    h0 = torch.randn(4, 6, 6)
    for state in (None, (h0, torch.randn(4, 6, 6)) if mode == "lstm" else h0):
        grouped, grouped_final = layer(x, lengths, state)
        packed, packed_final = layer.forward_packed(x, lengths, state)
        torch.testing.assert_close(packed, grouped, atol=1e-5, rtol=0)
        pairs = zip(packed_final, grouped_final) if mode == "lstm" else [(packed_final, grouped_final)]
        for a, b in pairs:
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"lengths must be 6 values in \[1, 8\]"):
        layer.forward_packed(x, torch.tensor([7, 3, 0, 7, 5, 2]))


def test_fused_runs_one_call_per_length_on_real_steps_only(monkeypatch):
    """Each length among the rows is one call of the fused layer, over those rows' real steps."""
    calls = []
    forward = nn.LSTM.forward

    def recording_forward(self, x, hx=None):
        calls.append(tuple(x.shape[:2]))
        return forward(self, x, hx)

    monkeypatch.setattr(nn.LSTM, "forward", recording_forward)
    monkeypatch.setattr(nn.utils.rnn, "pack_padded_sequence", None)  # packing would fail
    layer = make_recurrent("lstm", 3, 4, num_layers=2, bidirectional=True)
    layer(torch.randn(6, 10, 3), torch.tensor([9, 6, 7, 6, 9, 8]))
    assert calls == [(2, 9), (2, 6), (1, 7), (1, 8)]  # (rows, steps), in order of first appearance
    calls.clear()
    layer(torch.randn(6, 10, 3), torch.tensor([9, 9, 9, 9, 9, 9]))
    assert calls == [(6, 9)]


@pytest.mark.parametrize("lengths", [[0, 3], [3, 11], [3]])
def test_fused_rejects_lengths_outside_the_batch(lengths):
    layer = make_recurrent("gru", 3, 4)
    with pytest.raises(ValueError, match=r"lengths must be 2 values in \[1, 10\]"):
        layer(torch.randn(2, 10, 3), torch.tensor(lengths))


def test_relu_rnn_explicit_equals_torch_and_round_trips():
    torch.manual_seed(0)
    ref = nn.RNN(5, 6, num_layers=2, nonlinearity="relu", batch_first=True)
    ours = ExplicitRecurrent.from_torch(ref)
    assert ours.nonlinearity == "relu"
    x = torch.randn(3, 7, 5)
    torch.testing.assert_close(ours(x)[0], ref(x)[0], atol=1e-5, rtol=0)
    assert ours(x)[0].min() >= 0  # max(0, .): the ReLU RNN's states are never negative
    back = ours.to_torch()
    assert back.nonlinearity == "relu"
    torch.testing.assert_close(back(x)[0], ref(x)[0], atol=1e-6, rtol=0)
    tanh = ExplicitRecurrent("rnn", 5, 6, num_layers=2)
    tanh.load_state_dict(ours.state_dict())
    assert not torch.allclose(tanh(x)[0], ours(x)[0])
