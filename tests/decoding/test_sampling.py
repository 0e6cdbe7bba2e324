import pytest
import torch
from decoding_toys import GRUToy, MarkovLM, log_table, random_source

from seqlab.decoding.greedy import greedy_search
from seqlab.decoding.sampling import sample, sample_next, top_k_filter, top_p_filter
from seqlab.models.base import padding_mask
from seqlab.text.specials import EOS, PAD, SOS

NEG = float("-inf")


def test_top_k_keeps_exactly_k_even_with_ties():
    logits = torch.tensor([[1.0, 3.0, 3.0, 3.0, 0.0], [5.0, 4.0, 3.0, 2.0, 1.0]])
    out = top_k_filter(logits, 2)
    assert torch.isfinite(out).sum(dim=1).tolist() == [2, 2]
    assert out[1].tolist() == [5.0, 4.0, NEG, NEG, NEG]
    assert torch.equal(top_k_filter(logits, 9), logits)


def test_top_p_keeps_the_smallest_set_reaching_p():
    # probabilities 0.05, 0.5, 0.15, 0.3 (unsorted, to check the mapping back)
    logits = torch.tensor([[0.05, 0.5, 0.15, 0.3]]).log()
    assert torch.isfinite(top_p_filter(logits, 0.5)).tolist() == [[False, True, False, False]]
    assert torch.isfinite(top_p_filter(logits, 0.75)).tolist() == [[False, True, False, True]]
    assert torch.isfinite(top_p_filter(logits, 0.85)).tolist() == [[False, True, True, True]]
    assert torch.isfinite(top_p_filter(logits, 1.0)).all()
    kept = top_p_filter(logits, 0.75)
    assert kept[0, 1] == logits[0, 1] and kept[0, 3] == logits[0, 3]


def test_filters_reject_bad_arguments():
    with pytest.raises(ValueError, match="top_k must be >= 1, got 0"):
        top_k_filter(torch.zeros(1, 4), 0)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\], got 1.5"):
        top_p_filter(torch.zeros(1, 4), 1.5)


def test_temperature_towards_zero_is_argmax():
    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    assert torch.equal(sample_next(logits, temperature=1e-4, generator=g), logits.argmax(dim=-1))
    assert torch.equal(sample_next(logits, temperature=0.0), logits.argmax(dim=-1))


def test_seeded_generator_is_reproducible_and_respects_filters():
    logits = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    a = sample_next(logits, top_k=3, generator=torch.Generator().manual_seed(5))
    b = sample_next(logits, top_k=3, generator=torch.Generator().manual_seed(5))
    c = sample_next(logits, top_k=3, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    top3 = logits.topk(3, dim=-1).indices
    assert (top3 == a.unsqueeze(1)).any(dim=1).all()


def test_sample_at_temperature_zero_equals_greedy_search():
    model = GRUToy(seed=4)
    src = random_source(5)
    sos = torch.full((src.size(0),), SOS)
    out = sample(
        model.decode_step,
        model.encode(src),
        sos,
        max_len=8,
        temperature=0.0,
        src_lengths=padding_mask(src).sum(1),
        return_attention=True,
    )
    greedy = greedy_search(model, src, max_len=8, return_attention=True)
    assert out.tokens == greedy.tokens
    assert out.scores == pytest.approx(greedy.scores)
    for a, b in zip(out.attention, greedy.attention):
        torch.testing.assert_close(a, b)


def test_sample_from_language_model_start_logits():
    # after the prefix (length 2, last token 4): 5 is certain, then 4 with 0.9 or <eos> with 0.1
    table = log_table(
        {(1, 4): {5: 1.0}, (2, 5): {4: 0.9, EOS: 0.1}, (3, 4): {EOS: 1.0}}, steps=5, vocab=6
    )
    table[1, 4, PAD] = 10.0  # <pad> is never drawn, although the model favours it
    lm = MarkovLM(table)
    logits, state = lm.start(torch.tensor([[SOS, 4]] * 300))
    out = sample(
        lm.decode_step, state, logits=logits, max_len=6, generator=torch.Generator().manual_seed(0)
    )
    assert set(map(tuple, out.tokens)) == {(5, 4), (5,)}
    share = sum(t == [5, 4] for t in out.tokens) / 300
    assert 0.84 < share < 0.96
    scores = {tuple(t): s for t, s in zip(out.tokens, out.scores)}
    assert scores[(5,)] == pytest.approx(
        float(torch.log_softmax(table[1, 4], -1)[5] + table[2, 5, EOS]), abs=1e-5
    )


def test_sample_needs_exactly_one_start():
    model = GRUToy(seed=0)
    state = model.encode(random_source(0, batch=2))
    with pytest.raises(ValueError, match="exactly one of first_token and logits"):
        sample(model.decode_step, state, max_len=3)
