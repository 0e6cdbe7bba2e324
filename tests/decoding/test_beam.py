import itertools

import pytest
import torch
from decoding_toys import GRUToy, MarkovToy, log_table, random_source, sequence_log_prob

from seqlab.decoding.beam import beam_search, gnmt_length_penalty
from seqlab.decoding.greedy import greedy_search
from seqlab.text.specials import EOS, PAD, SOS


def _real(src, i):
    return src[i : i + 1, : int(src[i].ne(PAD).sum())]


def test_gnmt_length_penalty():
    assert gnmt_length_penalty(7, 0.6) == pytest.approx((12 / 6) ** 0.6)
    assert gnmt_length_penalty(7, 0.0) == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_one_equals_greedy(seed):
    model = GRUToy(seed=seed)
    src = random_source(seed + 20)
    greedy = greedy_search(model, src, max_len=8)
    beam = beam_search(model, src, beam=1, max_len=8, length_penalty=1.0)
    assert beam.tokens == greedy.tokens
    assert beam.scores == pytest.approx(greedy.scores, abs=1e-4)


def test_beam_finds_the_sequence_greedy_misses():
    # greedy takes 4 (0.5), then 6 (0.3), then <eos> (1.0): 0.15 in total;
    # 5 (0.4) followed by <eos> (0.9) is 0.36.
    after_4 = {6: 0.3, 4: 0.25, 5: 0.25, EOS: 0.2}
    table = log_table(
        {(0, SOS): {4: 0.5, 5: 0.4, EOS: 0.1}, (1, 4): after_4, (1, 5): {EOS: 0.9, 6: 0.1}},
        steps=3,
        vocab=7,
    )
    model, src = MarkovToy(table), torch.tensor([[4, 4]])
    assert greedy_search(model, src, max_len=5).tokens == [[4, 6]]
    out = beam_search(model, src, beam=2, max_len=5, length_penalty=0.0)
    assert out.tokens == [[5]]
    assert out.scores[0] == pytest.approx(torch.tensor(0.36).log().item(), abs=1e-6)


def test_length_penalty_trades_probability_for_length():
    # [] scores log 0.4; [4] scores log 0.36, but lp(2) = (7/6)^2 makes it -0.75 against -0.92.
    table = log_table({(0, SOS): {4: 0.6, EOS: 0.4}, (1, 4): {EOS: 0.6, 5: 0.4}}, steps=3, vocab=6)
    model, src = MarkovToy(table), torch.tensor([[4]])
    assert beam_search(model, src, beam=2, max_len=4, length_penalty=0.0).tokens == [[]]
    assert beam_search(model, src, beam=2, max_len=4, length_penalty=2.0).tokens == [[4]]


def test_large_beam_without_penalty_finds_the_brute_force_argmax():
    g = torch.Generator().manual_seed(6)
    vocab, max_len = 6, 4
    table = torch.randn(max_len, vocab, vocab, generator=g) * 1.5
    table[..., EOS] -= 1.0
    model, src = MarkovToy(table), torch.tensor([[4, 5]])
    best_score, best_tokens = float("-inf"), None
    allowed = [EOS, 3, 4, 5]
    for length in range(1, max_len + 1):
        for seq in itertools.product(allowed, repeat=length):
            if EOS in seq[:-1]:
                continue
            ended = seq[-1] == EOS
            if not ended and length < max_len:
                continue
            tokens = list(seq[:-1]) if ended else list(seq)
            score = sequence_log_prob(model, src, tokens, ended)
            if score > best_score:
                best_score, best_tokens = score, tokens
    out = beam_search(model, src, beam=128, max_len=max_len, length_penalty=0.0)
    assert out.tokens == [best_tokens]
    assert out.scores[0] == pytest.approx(best_score, abs=1e-5)
    assert best_tokens == [4, 4, 3, 4]  # truncated at the limit: a case beyond <eos> endings
    assert greedy_search(model, src, max_len=max_len).scores[0] < best_score - 0.1


def test_batched_beam_equals_one_sentence_at_a_time():
    model = GRUToy(seed=5)
    src = random_source(6, batch=6)
    limits = torch.tensor([8, 3, 6, 8, 1, 5])
    out = beam_search(model, src, beam=4, max_len=limits, length_penalty=0.6)
    for i in range(src.size(0)):
        alone = beam_search(
            model, _real(src, i), beam=4, max_len=int(limits[i]), length_penalty=0.6
        )
        assert out.tokens[i] == alone.tokens[0]
        assert out.scores[i] == pytest.approx(alone.scores[0], abs=1e-4)
        assert len(out.tokens[i]) <= limits[i]


def test_nbest_is_ranked_and_scored_by_normalised_log_probability():
    model = GRUToy(seed=8)
    src = random_source(9, batch=3)
    out = beam_search(model, src, beam=4, max_len=6, length_penalty=0.8, n_best=3)
    for i in range(src.size(0)):
        hyps = out.nbest[i]
        assert len(hyps) == 3 and hyps[0][0] == out.tokens[i]
        assert [s for _, s in hyps] == sorted((s for _, s in hyps), reverse=True)
        for tokens, score in hyps:
            ended = len(tokens) < 6
            raw = sequence_log_prob(model, _real(src, i), tokens, ended)
            steps = len(tokens) + int(ended)
            assert score == pytest.approx(raw / gnmt_length_penalty(steps, 0.8), abs=1e-4)
        assert out.scores[i] == pytest.approx(
            sequence_log_prob(model, _real(src, i), out.tokens[i], len(out.tokens[i]) < 6), abs=1e-4
        )


def test_attention_follows_the_reordered_beams():
    model = GRUToy(seed=11)
    src = random_source(12, batch=4)
    out = beam_search(model, src, beam=3, max_len=6, return_attention=True)
    for i, tokens in enumerate(out.tokens):
        ended = len(tokens) < 6
        steps = [SOS] + (tokens if ended else tokens[:-1])
        expected = model.cross_attention(_real(src, i), torch.tensor([steps]))[0].detach()
        assert out.attention[i].shape == (len(tokens) + int(ended), int(src[i].ne(PAD).sum()))
        torch.testing.assert_close(out.attention[i], expected)


def test_beam_one_attention_equals_greedy_attention():
    model = GRUToy(seed=13)
    src = random_source(14)
    greedy = greedy_search(model, src, max_len=7, return_attention=True)
    beam = beam_search(model, src, beam=1, max_len=7, return_attention=True)
    for a, b in zip(greedy.attention, beam.attention):
        torch.testing.assert_close(a, b)


def test_bad_arguments_are_rejected():
    model, src = GRUToy(seed=0), random_source(0, batch=2)
    with pytest.raises(ValueError, match="n_best must be between 1 and beam=2, got 3"):
        beam_search(model, src, beam=2, max_len=4, n_best=3)
    with pytest.raises(ValueError, match="beam must be >= 1, got 0"):
        beam_search(model, src, beam=0, max_len=4)


def test_row_candidates_are_the_best_masked_log_probabilities():
    from seqlab.decoding.beam import _row_candidates
    from seqlab.text.specials import PAD, SOS

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 11, generator=g)
    logits[0, PAD] = logits[1, SOS] = 50.0  # the best logits, yet never proposed
    log_probs, tokens = _row_candidates(logits.bfloat16().float(), 4)
    reference = torch.log_softmax(logits.bfloat16().float(), dim=-1)
    masked = reference.clone()
    masked[:, [PAD, SOS]] = float("-inf")
    expected, expected_tokens = masked.topk(4, dim=-1)
    assert torch.equal(tokens, expected_tokens)
    torch.testing.assert_close(log_probs, expected)
    assert not torch.equal(logits[:, PAD], torch.full((6,), float("-inf")))  # the input is untouched
