import pytest
import torch
from decoding_toys import (
    GRUToy,
    MarkovToy,
    log_table,
    random_source,
    sequence_log_prob,
    teacher_forced_log_probs,
)

from seqlab.decoding.greedy import argmax, check_interval, decode_steps, greedy_search, run_to_end
from seqlab.decoding.processors import mask_specials
from seqlab.text.specials import EOS, PAD, SOS


def _real(src, i):
    return src[i : i + 1, : int(src[i].ne(PAD).sum())]


def test_greedy_follows_the_argmax_chain_of_a_table():
    table = log_table(
        {(0, SOS): {4: 0.6, 5: 0.4}, (1, 4): {5: 0.7, EOS: 0.3}, (2, 5): {EOS: 0.9, 4: 0.1}},
        steps=4,
        vocab=6,
    )
    out = greedy_search(MarkovToy(table), torch.tensor([[4, 5]]), max_len=10)
    assert out.tokens == [[4, 5]]
    assert out.scores[0] == pytest.approx(torch.tensor([0.6 * 0.7 * 0.9]).log().item(), abs=1e-6)


def test_greedy_never_emits_pad_or_sos():
    table = log_table(
        {(0, SOS): {PAD: 0.5, SOS: 0.3, 4: 0.2}, (1, 4): {EOS: 1.0}}, steps=3, vocab=5
    )
    out = greedy_search(MarkovToy(table), torch.tensor([[4]]), max_len=5)
    assert out.tokens == [[4]]
    assert out.scores[0] == pytest.approx(torch.tensor(0.2).log().item(), abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_token_is_the_teacher_forced_argmax_and_rows_are_independent(seed):
    model = GRUToy(seed=seed)
    src = random_source(seed + 10)
    out = greedy_search(model, src, max_len=8)
    for i, tokens in enumerate(out.tokens):
        ended = len(tokens) < 8
        log_probs, target = teacher_forced_log_probs(model, _real(src, i), tokens, ended)
        log_probs[:, [PAD, SOS]] = float("-inf")
        assert log_probs.argmax(dim=-1).tolist() == target
        assert out.scores[i] == pytest.approx(
            sequence_log_prob(model, _real(src, i), tokens, ended), abs=1e-4
        )
        alone = greedy_search(model, _real(src, i), max_len=8)
        assert alone.tokens[0] == tokens


def test_per_sentence_max_len_truncates_each_row():
    table = log_table({(t, y): {4: 1.0} for t in range(6) for y in range(5)}, steps=6, vocab=5)
    out = greedy_search(
        MarkovToy(table), torch.tensor([[4], [4], [4]]), max_len=torch.tensor([1, 3, 2])
    )
    assert out.tokens == [[4], [4, 4, 4], [4, 4]]


def test_attention_matches_teacher_forced_cross_attention():
    model = GRUToy(seed=3)
    src = random_source(4)
    out = greedy_search(model, src, max_len=6, return_attention=True)
    for i, tokens in enumerate(out.tokens):
        ended = len(tokens) < 6
        steps = [SOS] + tokens if ended else [SOS] + tokens[:-1]
        expected = model.cross_attention(_real(src, i), torch.tensor([steps]))[0]
        assert out.attention[i].shape == (len(tokens) + int(ended), int(src[i].ne(PAD).sum()))
        torch.testing.assert_close(out.attention[i], expected.detach())


def test_no_attention_from_a_model_without_it():
    table = log_table({(0, SOS): {4: 1.0}}, steps=2, vocab=5)
    out = greedy_search(MarkovToy(table), torch.tensor([[4]]), max_len=3, return_attention=True)
    assert out.attention is None


def _reference_greedy(model, src, limits):
    """The plain loop: read every row's token on the host at every step, stop at the first step
    where all rows are done (finished rows are fed <pad>, as the search does)."""
    state, y = model.encode(src), torch.full((src.size(0),), SOS)
    tokens, scores = [[] for _ in limits], [0.0] * len(limits)
    done = [False] * len(limits)
    for t in range(1, max(limits) + 1):
        logits, state = model.decode_step(state, y)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        choice = mask_specials(logits.float()).argmax(dim=-1).tolist()
        for i, token in enumerate(choice):
            if done[i]:
                choice[i] = PAD
                continue
            scores[i] += log_probs[i, token].double().item()
            if token != EOS:
                tokens[i].append(token)
            done[i] = token == EOS or t >= limits[i]
        if all(done):
            break
        y = torch.tensor(choice)
    return tokens, scores


@pytest.mark.parametrize("check_every", [1, 3, 16])
def test_device_side_loop_equals_the_host_loop_whenever_it_checks(check_every):
    """Rows finishing at different steps (<eos> and limits): the same tokens and bit-equal scores,
    however rarely the loop looks at the finished flags."""
    model = GRUToy(seed=1, eos_bias=0.5)
    src = random_source(7, batch=7, max_len=9)
    limits = [12, 3, 9, 12, 1, 6, 10]
    with torch.inference_mode():
        tokens, scores = _reference_greedy(model, src, limits)
        out = run_to_end(decode_steps(model.decode_step, model.encode(src), torch.full((7,), SOS),
                                      max_len=torch.tensor(limits), choose=argmax, check_every=check_every))
    assert len({len(t) for t in tokens}) > 3 and any(len(t) < n for t, n in zip(tokens, limits))
    assert out.tokens == tokens
    assert out.scores == scores


def test_check_interval_is_every_step_on_cpu_only():
    assert check_interval(torch.device("cpu")) == 1
    assert check_interval(torch.device("meta")) > 1


def test_blocked_argmax_is_torchs_argmax_with_ties_infinities_and_nan():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 8000, generator=g)
    x[1, [100, 5000]] = 50.0  # a tie across blocks: the first one
    x[2, [70, 71]] = 50.0  # a tie inside a block
    x[3, 7000] = float("nan")  # NaN counts as the maximum for both
    x[4, 9] = float("inf")
    x[5] = float("-inf")  # a fully masked row: column 0
    x[6, 7999] = 60.0  # the last column
    assert torch.equal(argmax(x), x.argmax(dim=-1))
    strided = torch.randn(6, 8002, generator=g)[:, 2:]  # a view, as of logits with columns cut off
    assert torch.equal(argmax(strided), strided.argmax(dim=-1))
    odd = torch.randn(3, 8001, generator=g)  # not a multiple of the block: torch.argmax itself
    assert torch.equal(argmax(odd), odd.argmax(dim=-1))
