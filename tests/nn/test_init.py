"""Initialisation schemes: orthogonal recurrent blocks, forget-gate bias, bounds, padding rows."""

import math

import pytest
import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.nn.cells import ExplicitRecurrent
from seqlab.nn.init import UNIFORM_RANGE, init_weights


class _Tiny(nn.Module):
    def __init__(self, lstm: nn.Module):
        super().__init__()
        self.embedding = nn.Embedding(10, 6, padding_idx=0)
        self.rnn = lstm
        self.out = nn.Linear(8, 10)


@pytest.mark.parametrize("explicit", [False, True])
def test_orthogonal_recurrent_blocks_and_forget_bias(explicit):
    torch.manual_seed(0)
    rnn = ExplicitRecurrent("lstm", 6, 8, num_layers=2) if explicit else nn.LSTM(6, 8, num_layers=2)
    model = _Tiny(rnn)
    init_weights(model, "xavier", "orthogonal")
    H = 8
    for layer in range(2):
        W_h = getattr(model.rnn, f"weight_hh_l{layer}")
        for block in W_h.detach().split(H, dim=0):  # one (H, H) block per gate
            torch.testing.assert_close(block @ block.T, torch.eye(H), atol=1e-5, rtol=0)
        b = getattr(model.rnn, f"bias_ih_l{layer}") + getattr(model.rnn, f"bias_hh_l{layer}")
        expected = torch.zeros(4 * H)
        expected[H : 2 * H] = 1.0  # forget gate f_t (rows i, f, C~, o)
        assert torch.equal(b.detach(), expected)
    assert torch.all(model.embedding.weight[0] == 0)
    assert torch.all(model.out.bias == 0)


@pytest.mark.parametrize(
    "scheme, bound",
    [
        ("xavier", lambda fan_in, fan_out: math.sqrt(6 / (fan_in + fan_out))),
        ("kaiming", lambda fan_in, fan_out: math.sqrt(6 / fan_in)),
        ("uniform", lambda fan_in, fan_out: UNIFORM_RANGE),
    ],
)
def test_input_weight_bounds(scheme, bound):
    torch.manual_seed(1)
    gru = nn.GRU(20, 30)
    init_weights(gru, scheme, "same")
    limit = bound(20, 30)  # per gate block (30, 20)
    W_x = gru.weight_ih_l0.detach()
    assert W_x.abs().max() <= limit
    assert W_x.abs().max() > 0.9 * limit  # the whole range is used: it really is this scheme
    W_h = gru.weight_hh_l0.detach()[:30]
    assert W_h.abs().max() <= bound(30, 30)  # "same": the recurrent block uses the input scheme
    assert not torch.allclose(W_h @ W_h.T, torch.eye(30), atol=1e-2)
    assert torch.all(gru.bias_ih_l0 == 0)  # no forget gate in a GRU


def test_unknown_scheme_names_the_key():
    with pytest.raises(ConfigError, match="model.init"):
        init_weights(nn.Linear(3, 3), "lecun")
    with pytest.raises(ConfigError, match="model.recurrent_init"):
        init_weights(nn.RNN(3, 3), "xavier", "identity")


def test_untied_embeddings_start_at_unit_normal_and_pad_is_zero():
    from torch import nn

    from seqlab.nn.init import init_weights

    torch.manual_seed(0)
    model = nn.Module()
    model.embedding = nn.Embedding(2000, 64, padding_idx=0)
    model.out = nn.Linear(64, 10)
    init_weights(model, "xavier")
    w = model.embedding.weight.detach()
    assert torch.all(w[0] == 0)
    assert 0.95 < w[1:].std().item() < 1.05
