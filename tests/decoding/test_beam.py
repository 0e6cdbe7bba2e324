import itertools

import pytest
import torch
from decoding_toys import GRUToy, MarkovToy, log_table, random_source, sequence_log_prob

from seqlab.decoding.beam import beam_decode, beam_search, gnmt_length_penalty
from seqlab.decoding.greedy import greedy_search
from seqlab.decoding.processors import mask_specials
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


def _reference_beam(model, src, K, limit, alpha):
    """Beam search for one sentence as the module docstring states it, in Python lists: every
    candidate ranked on the host, the finished hypotheses a list."""
    state, y = model.encode(src).repeat_rows(K), torch.full((K,), SOS)
    beams = [([], 0.0)] + [([], float("-inf"))] * (K - 1)
    finished = []
    for t in range(1, limit + 1):
        logits, state = model.decode_step(state, y)
        log_probs = mask_specials(torch.log_softmax(logits.float(), dim=-1)).tolist()
        candidates = sorted(((beams[k][1] + log_probs[k][v], k, v) for k in range(K)
                             for v in range(len(log_probs[k]))), key=lambda c: -c[0])[: 2 * K]
        for score, k, v in candidates[:K]:
            if (v == EOS or t == limit) and score > float("-inf"):
                tokens = beams[k][0] + ([] if v == EOS else [v])
                finished.append((score / gnmt_length_penalty(t, alpha), score, tokens))
        going = [c for c in candidates if c[2] != EOS][:K]
        beams = [(beams[k][0] + [v], score) for score, k, v in going]
        state, y = state.select(torch.tensor([k for _, k, _ in going])), torch.tensor([v for _, _, v in going])
        if len(finished) >= K or t == limit or all(s == float("-inf") for _, s in beams):
            break
    return sorted(finished, key=lambda h: -h[0])


@pytest.mark.parametrize("check_every", [1, 4, 16])
def test_device_side_beam_equals_the_host_reference_whenever_it_checks(check_every):
    """Sentences ending at different steps, some with <eos> mid-way, some at their limit: the
    search keeps done sentences on the device between checks, and the output does not change."""
    model = GRUToy(seed=3, eos_bias=0.5)
    src = random_source(7, batch=7, max_len=9)
    limits = [12, 3, 9, 12, 1, 6, 10]
    settings = dict(beam=3, max_len=torch.tensor(limits), length_penalty=0.6, n_best=3, return_attention=True,
                    src_lengths=src.ne(PAD).sum(dim=1))
    sos = torch.full((7,), SOS)
    with torch.inference_mode():
        out = beam_decode(model.decode_step, model.encode(src), sos, check_every=check_every, **settings)
        every_step = beam_decode(model.decode_step, model.encode(src), sos, check_every=1, **settings)
        # dropping done sentences changes the batch's size, so only rounding may differ
        assert out.tokens == every_step.tokens
        assert out.scores == pytest.approx(every_step.scores, abs=1e-6)
        for a, b in zip(out.nbest, every_step.nbest):
            assert [t for t, _ in a] == [t for t, _ in b]
        for a, b in zip(out.attention, every_step.attention):
            torch.testing.assert_close(a, b)
        lengths = set()
        for i, limit in enumerate(limits):
            reference = _reference_beam(model, _real(src, i), 3, limit, 0.6)
            assert [tokens for _, _, tokens in reference[:3]] == [tokens for tokens, _ in out.nbest[i]]
            assert [n for n, _, _ in reference[:3]] == pytest.approx([s for _, s in out.nbest[i]], abs=1e-5)
            assert out.scores[i] == pytest.approx(reference[0][1], abs=1e-5)
            lengths.add((len(out.tokens[i]), len(out.tokens[i]) < limit))
    assert len(lengths) > 3 and (0, True) in lengths  # <eos> at once, mid-way and truncated rows


def test_the_first_step_runs_once_per_sentence_and_the_search_is_unchanged():
    # The K beams of a sentence are equal before the first choice, so step 1 runs on B rows and
    # later steps on B*K; the result equals a search that ran step 1 on all B*K rows.
    model, src, K = GRUToy(seed=3), random_source(4, batch=6), 3
    rows = []

    def step(state, y_prev):
        rows.append(y_prev.size(0))
        return model.decode_step(state, y_prev)

    sos = torch.full((src.size(0),), SOS, dtype=torch.long)
    out = beam_decode(step, model.encode(src), sos, beam=K, max_len=6, return_attention=True)
    assert rows[0] == src.size(0) and rows[1] == K * src.size(0)
    # the same search entered through K copies of every sentence's state
    repeated = model.encode(src).repeat_rows(K)
    first = model.decode_step(repeated, sos.repeat_interleave(K))
    logits, state = first[0].view(src.size(0), K, -1)[:, 0], first[1].select(torch.arange(src.size(0)) * K)
    reference = beam_decode(model.decode_step, state, logits=logits, beam=K, max_len=6, return_attention=True)
    assert out.tokens == reference.tokens and out.scores == pytest.approx(reference.scores, abs=1e-5)


def test_blocked_top_n_gives_topks_values_and_columns():
    from seqlab.decoding.beam import top_n

    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 8000, generator=g).log_softmax(dim=-1)
    x[:, :2] = float("-inf")  # <pad>, <sos>
    x[3, 64:128] = x[3].max() + torch.arange(64.0)  # one block holds all the best
    x[4, ::64] = x[4].max() + 1 + torch.arange(125.0)  # each block holds one of them
    for n in (1, 10):
        values, columns = top_n(x, n)
        expected_values, expected_columns = x.topk(n, dim=-1)
        assert torch.equal(values, expected_values) and torch.equal(columns, expected_columns)
        assert torch.equal(x.gather(1, columns), values)
    small = torch.randn(5, 30, generator=g)  # too short for blocks: topk itself
    assert torch.equal(top_n(small, 4)[1], small.topk(4)[1])
