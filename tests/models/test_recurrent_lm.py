"""Recurrent language model: "hello", step decoding equals the forward, padded prefixes."""

import pytest
import torch
import torch.nn.functional as F

from seqlab.config import RecurrentConfig
from seqlab.errors import ConfigError
from seqlab.models.recurrent_lm import RecurrentLM, RecurrentLMState, build_recurrent_lm
from seqlab.text.specials import PAD

CHARS = {c: 4 + i for i, c in enumerate("helo")}


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_learns_hello(kind):
    """Given h, e, l, l predict e, l, l, o: the two l's need different answers, so memory matters."""
    torch.manual_seed(0)
    model = RecurrentLM(8, kind=kind, embedding=8, hidden=16)
    x = torch.tensor([[CHARS[c] for c in "hell"]])
    y = torch.tensor([[CHARS[c] for c in "ello"]])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = F.cross_entropy(model(x).reshape(-1, 8), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(model(x).argmax(-1), y)
    # generation through start/decode_step: "h" -> e, l, l, o
    logits, state = model.start(x[:, :1])
    generated = []
    for _ in range(4):
        y_next = logits.argmax(-1)
        generated.append(int(y_next))
        logits, state = model.decode_step(state, y_next)
    assert generated == y[0].tolist()


@pytest.mark.parametrize("cells", ["fused", "explicit"])
def test_start_and_steps_reproduce_forward(cells):
    torch.manual_seed(1)
    model = RecurrentLM(12, kind="lstm", embedding=6, hidden=7, layers=2, cells=cells).eval()
    tokens = torch.randint(4, 12, (3, 6))
    with torch.no_grad():
        full = model(tokens)
        logits, state = model.start(tokens[:, :2])
        steps = [logits]
        for t in range(2, 6):
            logits, state = model.decode_step(state, tokens[:, t])
            steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, dim=1), full[:, 1:], atol=1e-5, rtol=0)
    assert isinstance(state, RecurrentLMState) and state.h.shape == (3, 2, 7)


def test_padded_prefixes_start_from_their_last_real_token():
    torch.manual_seed(2)
    model = RecurrentLM(12, kind="gru", embedding=6, hidden=7, layers=2).eval()
    prefix = torch.tensor([[5, 6, 7, 8], [9, 10, PAD, PAD]])
    with torch.no_grad():
        logits, state = model.start(prefix)
        alone, alone_state = model.start(prefix[1:, :2])
        next_logits, _ = model.decode_step(state.select(torch.tensor([1])), torch.tensor([4]))
        alone_next, _ = model.decode_step(alone_state, torch.tensor([4]))
    torch.testing.assert_close(logits[1:], alone, atol=1e-6, rtol=0)
    torch.testing.assert_close(next_logits, alone_next, atol=1e-6, rtol=0)
    torch.testing.assert_close(logits[:1], model(prefix[:1])[:, -1], atol=1e-6, rtol=0)


def test_builder():
    cfg = RecurrentConfig(type="gru", layers=1, embedding=8, hidden=8, tie_output=True, init="uniform")
    model = build_recurrent_lm(cfg, 20)
    assert model.W_y.weight is model.embedding.weight
    assert model.embedding.weight.abs().max() <= 0.1
    with pytest.raises(ConfigError, match="model.gru_reset"):
        build_recurrent_lm(RecurrentConfig(type="gru", gru_reset="before"), 20)
