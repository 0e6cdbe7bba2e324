"""The decoder-only Transformer: causal, cached steps equal the full forward pass, learns a sequence."""

import pytest
import torch
import torch.nn.functional as F

from seqlab.config import GPTConfig
from seqlab.models.gpt import build_gpt


def tiny(**kw):
    cfg = GPTConfig(**{"layers": 2, "d_model": 32, "heads": 4, "ffn": 64, "max_positions": 32, **kw})
    torch.manual_seed(0)
    return build_gpt(cfg, 20).eval()


@pytest.mark.parametrize("norm,positions", [("pre", "learned"), ("post", "sinusoidal")])
def test_cached_step_by_step_logits_equal_the_full_forward(norm, positions):
    model = tiny(norm=norm, positions=positions)
    tokens = torch.randint(4, 20, (3, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(tokens)  # (B, T, V)
        logits, state = model.start(tokens[:, :4])
        steps = [logits]
        for t in range(4, tokens.size(1)):
            logits, state = model.decode_step(state, tokens[:, t])
            steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), full[:, 3:], rtol=1e-5, atol=1e-5)


def test_a_later_token_does_not_change_earlier_logits():
    model = tiny()
    a = torch.tensor([[5, 6, 7, 8, 9]])
    b = torch.tensor([[5, 6, 7, 8, 15]])
    with torch.no_grad():
        la, lb = model(a), model(b)
    torch.testing.assert_close(la[:, :4], lb[:, :4])
    assert not torch.allclose(la[:, 4], lb[:, 4])


def test_output_layer_is_tied_to_the_token_embedding():
    model = tiny()
    assert model.generator.weight is model.embed.embedding.weight
    assert tiny(tie_output=False).generator.weight is not tiny(tie_output=False).embed.embedding.weight


def test_start_refuses_a_padded_prefix():
    with pytest.raises(ValueError, match="without <pad>"):
        tiny().start(torch.tensor([[5, 6, 0]]))


def test_learns_a_fixed_sequence_to_near_zero_loss():
    model = tiny(dropout=0.0).train()
    tokens = torch.tensor([[4, 5, 6, 7, 8, 9, 10, 11, 12, 13]] * 4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(120):
        logits = model(tokens[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
