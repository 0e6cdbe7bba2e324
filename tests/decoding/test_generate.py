import itertools

import pytest
import torch
from decoding_toys import GRUToy, MarkovLM, MarkovToy, log_table, random_source

from seqlab.config import DecodeConfig, generation_config
from seqlab.decoding.beam import beam_decode, beam_search
from seqlab.decoding.generate import generate, generate_steps, translate_batch
from seqlab.decoding.greedy import greedy, greedy_search
from seqlab.decoding.processors import build_processor
from seqlab.errors import ConfigError
from seqlab.text.specials import EOS, PAD, SOS

SOURCES = [[4, 5, 6], [7], [8, 6, 5, 4, 4], [], [5, 5], [6, 7, 8, 4]]


def _rows(src):
    return [row[row.ne(PAD)].tolist() for row in src]


@pytest.mark.parametrize("seed", [0, 1])
def test_a_processor_in_greedy_equals_the_same_processor_in_beam_one(seed):
    model, src = GRUToy(seed=seed), random_source(seed + 3)
    process = build_processor(repetition=1.8, no_repeat_ngram=2, min_length=3)
    plain = greedy_search(model, src, max_len=10)
    greedy_out = greedy_search(model, src, max_len=10, process=process)
    beam_out = beam_search(model, src, beam=1, max_len=10, length_penalty=0.0, process=process)
    assert greedy_out.tokens == beam_out.tokens
    assert greedy_out.tokens != plain.tokens  # the processor changed something


def test_min_length_really_blocks_eos():
    model, src = GRUToy(seed=2, eos_bias=6.0), random_source(4)
    assert min(len(t) for t in greedy_search(model, src, max_len=12).tokens) < 4
    for settings in (DecodeConfig(strategy="greedy", min_length=4), DecodeConfig(beam=3, min_length=4),
                     DecodeConfig(strategy="sample", min_length=4, seed=0)):
        out = translate_batch(model, _rows(src), settings)
        assert all(len(t) >= 4 for t in out.tokens)


def test_no_repeat_ngram_never_repeats_an_ngram():
    # a table that loves to say 4 5 4 5 4 5 ...
    table = log_table({(t, y): {5 if y == 4 else 4: 0.9, EOS: 0.1} for t in range(12) for y in (SOS, 4, 5)},
                      steps=12, vocab=7)
    model = MarkovToy(table)
    for settings in (DecodeConfig(strategy="greedy", no_repeat_ngram=2, max_new_tokens=12),
                     DecodeConfig(beam=3, no_repeat_ngram=2, max_new_tokens=12),
                     DecodeConfig(strategy="sample", no_repeat_ngram=2, seed=1, max_new_tokens=12)):
        for tokens in translate_batch(model, [[4]] * 4, settings).tokens:
            bigrams = list(itertools.pairwise(tokens))
            assert len(bigrams) == len(set(bigrams))
    repeated = translate_batch(model, [[4]], DecodeConfig(strategy="greedy", max_new_tokens=12)).tokens[0]
    assert len(repeated) == 12 and repeated[:4] == [4, 5, 4, 5]


def test_seeded_sampling_is_reproducible_and_independent_of_the_batch():
    model = GRUToy(seed=5, scale=0.5)
    settings = DecodeConfig(strategy="sample", temperature=1.5, seed=7, max_new_tokens=8)
    a = translate_batch(model, SOURCES, settings, batch_size=2).tokens
    b = translate_batch(model, SOURCES, settings, batch_size=6).tokens
    alone = [translate_batch(model, [s], settings).tokens[0] for s in SOURCES]
    assert a == b == alone
    other = translate_batch(model, SOURCES, generation_config(settings, seed=8)).tokens
    assert other != a


def test_translate_batch_restores_input_order_for_every_strategy():
    model = GRUToy(seed=1)
    for settings in (DecodeConfig(strategy="greedy"), DecodeConfig(beam=3), DecodeConfig(strategy="sample", seed=3)):
        out = translate_batch(model, SOURCES, settings, batch_size=2, return_attention=True)
        assert out.tokens[3] == [] and out.scores[3] == 0.0
        for i, s in enumerate(SOURCES):
            if s:
                assert out.tokens[i] == translate_batch(model, [s], settings).tokens[0]
                assert out.attention[i].size(1) == len(s)


def test_max_new_tokens_replaces_the_source_length_rule():
    model = GRUToy(seed=0, eos_bias=-20.0)  # never ends by itself
    by_ratio = translate_batch(model, SOURCES, DecodeConfig(strategy="greedy", max_len_ratio=1.0, max_len_offset=1))
    assert [len(t) for t in by_ratio.tokens] == [len(s) + 1 if s else 0 for s in SOURCES]
    fixed = translate_batch(model, SOURCES, DecodeConfig(strategy="greedy", max_new_tokens=5))
    assert [len(t) for t in fixed.tokens] == [5 if s else 0 for s in SOURCES]


def test_nbest_through_translate_batch():
    out = translate_batch(GRUToy(seed=2), SOURCES, DecodeConfig(beam=3, n_best=2))
    assert [hyps[0][0] for hyps in out.nbest] == out.tokens
    assert all(len(hyps) == 2 for s, hyps in zip(SOURCES, out.nbest) if s)


def test_language_model_gets_greedy_beam_and_sampling_from_its_start_state():
    table = log_table({(1, 4): {5: 0.6, 6: 0.4}, (2, 5): {EOS: 0.5, 4: 0.5}, (2, 6): {EOS: 1.0},
                       (3, 4): {EOS: 1.0}}, steps=6, vocab=7)
    lm = MarkovLM(table)
    logits, state = lm.start(torch.tensor([[SOS, 4]]))
    g = greedy(lm.decode_step, state, logits=logits, max_len=6)
    b1 = beam_decode(lm.decode_step, state, logits=logits, beam=1, max_len=6, length_penalty=0.0)
    b3 = beam_decode(lm.decode_step, state, logits=logits, beam=3, max_len=6, length_penalty=0.0)
    s0 = generate(lm.decode_step, state, logits=logits, max_len=6,
                  settings=DecodeConfig(strategy="sample", temperature=0.0))
    assert g.tokens == b1.tokens == s0.tokens == [[5]]  # 0.6 * 0.5 = 0.3
    assert b3.tokens == [[6]]  # 0.4 * 1.0 beats it


def test_generate_steps_streams_the_tokens_greedy_returns():
    model, src = GRUToy(seed=3), random_source(1)
    state = model.encode(src)
    sos = torch.full((src.size(0),), SOS)
    steps = generate_steps(model.decode_step, state, sos, settings=DecodeConfig(strategy="greedy"), max_len=9)
    streamed = []
    while True:
        try:
            streamed.append(next(steps))
        except StopIteration as stop:
            out = stop.value
            break
    columns = torch.stack(streamed, dim=1).tolist()  # (B, T)
    for row, tokens in zip(columns, out.tokens):
        assert [t for t in row if t not in (PAD, EOS)] == tokens


def test_generation_config_infers_the_strategy_and_names_bad_keys():
    base = DecodeConfig(beam=4)
    assert generation_config(base, top_p=0.9).strategy == "sample"
    assert generation_config(base, beam=1).strategy == "beam"
    assert generation_config(DecodeConfig(strategy="sample", temperature=0.5), beam=2).temperature is None
    with pytest.raises(ConfigError, match="decode.top_k.*sample only"):
        generation_config(base, strategy="greedy", top_k=3)
    with pytest.raises(ConfigError, match="decode.tmperature.*unknown key"):
        generation_config(base, tmperature=0.3)
    with pytest.raises(ConfigError, match="decode.top_p.*must be in"):
        generation_config(base, top_p=1.5)
    with pytest.raises(ConfigError, match="decode.min_length"):
        generation_config(base, min_length=5, max_new_tokens=5)
