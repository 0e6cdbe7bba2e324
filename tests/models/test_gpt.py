"""The decoder-only Transformer: causal, cached steps equal the full forward pass, learns a sequence."""

import pytest
import torch
import torch.nn.functional as F

from seqlab.config import DecodeConfig, GPTConfig
from seqlab.decoding.generate import generate
from seqlab.models.gpt import build_gpt
from seqlab.text.specials import PAD


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


def test_start_refuses_padding_before_a_token_and_empty_rows():
    for prefix in ([[5, 0, 6]], [[0, 0], [5, 6]], [[0, 5, 6]]):
        with pytest.raises(ValueError, match="right-padded with <pad>"):
            tiny().start(torch.tensor(prefix))


def _prompts():
    """Five prompts of 1 to 6 tokens, right-padded into one batch."""
    g = torch.Generator().manual_seed(3)
    rows = [torch.randint(4, 20, (n,), generator=g).tolist() for n in (6, 2, 4, 1, 6)]
    batch = torch.tensor([row + [PAD] * (6 - len(row)) for row in rows])
    return rows, batch


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_unequal_prompts_in_one_batch_continue_as_each_alone(positions):
    """Left-padded inside the state: each row's cached logits equal its own full forward pass."""
    model = tiny(positions=positions)
    rows, batch = _prompts()
    continuation = torch.randint(4, 20, (5, 4), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        logits, state = model.start(batch)
        steps = [logits]
        for t in range(continuation.size(1)):
            logits, state = model.decode_step(state, continuation[:, t])
            steps.append(logits)
        steps = torch.stack(steps, 1)  # (B, 5, V)
        for i, row in enumerate(rows):
            alone = model(torch.tensor([row + continuation[i].tolist()]))[0, len(row) - 1:]  # (5, V)
            torch.testing.assert_close(steps[i], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("settings", [dict(strategy="greedy"), dict(strategy="sample", seed=7, top_k=8),
                                      dict(strategy="beam", beam=3)], ids=["greedy", "sample", "beam"])
def test_batched_generation_of_unequal_prompts_equals_each_prompt_alone(settings):
    model = tiny(positions="sinusoidal")
    rows, batch = _prompts()
    settings = DecodeConfig(**settings)
    with torch.inference_mode():
        logits, state = model.start(batch)
        together = generate(model.decode_step, state, logits=logits, settings=settings, max_len=10)
        for i, row in enumerate(rows):
            logits, state = model.start(torch.tensor([row]))
            alone = generate(model.decode_step, state, logits=logits, settings=settings, max_len=10)
            assert together.tokens[i] == alone.tokens[0]
            assert together.scores[i] == pytest.approx(alone.scores[0], abs=1e-4)


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
