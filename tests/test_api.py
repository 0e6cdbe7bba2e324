"""The Python API over a run folder (``seqlab.load``), for a Transformer and a recurrent model alike."""

from __future__ import annotations

import math

import pytest
import torch

import seqlab
from seqlab.api import SentenceTooLong, Translator
from seqlab.decoding.beam import beam_search
from seqlab.decoding.lengths import max_target_lengths
from seqlab.errors import CheckpointError
from seqlab.evaluation.metrics import bleu, chrf
from seqlab.nn.linear import Linear, pack_for_decoding, packed_linear_works
from seqlab.precision import SlowPrecisionWarning, cpu_capability
from seqlab.text.specials import EOS

RUNS = ["tiny_run", "tiny_gru_run"]
SENTENCES = ["Is my brother tall?", "Maria is tired.", "The book is on the table in January."]


@pytest.fixture(params=RUNS)
def translator(request) -> Translator:
    """A freshly loaded translator of each tiny run (function scope: tests may patch it)."""
    return seqlab.load(request.getfixturevalue(request.param).path)


def test_load_returns_a_translator_with_the_runs_config(tiny_run):
    translator = seqlab.load(tiny_run.path)
    assert isinstance(translator, Translator)
    assert translator.config.name == "tiny-transformer"
    assert translator.config.train.max_steps == 10  # the command-line override was recorded
    assert not translator.model.training


def test_unknown_checkpoint_lists_the_available_ones(tiny_run):
    with pytest.raises(CheckpointError, match=r"no checkpoint 'final' \(available: best, last\)"):
        seqlab.load(tiny_run.path, checkpoint="final")


def test_translate_str_returns_str_equal_to_the_list_form(translator):
    single = translator.translate(SENTENCES[0], beam=2)
    assert isinstance(single, str)
    assert single == translator.translate([SENTENCES[0]], beam=2)[0]


def test_translate_batch_equals_one_by_one(translator):
    # Length-sorted batching with padding must not change any translation.
    batch = translator.translate(SENTENCES, beam=1)
    assert batch == [translator.translate(s, beam=1) for s in SENTENCES]


def test_beam_1_equals_greedy(translator):
    greedy = translator.translate(SENTENCES, beam=1)  # the API decodes beam=1 greedily
    d = translator.config.decode
    for sentence, expected in zip(SENTENCES, greedy):
        src = torch.tensor([translator.tokenizers.src.encode(sentence)])
        max_len = max_target_lengths(src, d.max_len_ratio, d.max_len_offset, translator.model.max_positions)
        with torch.no_grad():
            out = beam_search(translator.model, src, beam=1, max_len=max_len, length_penalty=0.0)
        assert translator.tokenizers.tgt.decode(out.tokens[0]) == expected


def test_blank_sentence_gives_blank_translation(translator):
    assert translator.translate(["", SENTENCES[1]], beam=1) == ["", translator.translate(SENTENCES[1], beam=1)]
    assert translator.translate([]) == []


def test_whitespace_only_sentence_gives_blank_translation(translator):
    expected = ["", "", translator.translate(SENTENCES[1], beam=2)]
    assert translator.translate(["   ", "\t \u00a0", SENTENCES[1]], beam=2) == expected
    assert translator.translate("  ") == ""


def test_n_best_returns_scored_candidates_best_first(translator):
    results = translator.translate(SENTENCES[:2], beam=3, n_best=3)
    assert len(results) == 2
    for sentence, candidates in zip(SENTENCES, results):
        assert len(candidates) == 3
        assert all(isinstance(text, str) and isinstance(score, float) for text, score in candidates)
        scores = [score for _, score in candidates]
        assert scores == sorted(scores, reverse=True)
        assert candidates[0][0] == translator.translate(sentence, beam=3)


def test_n_best_larger_than_the_beam_is_an_error(translator):
    with pytest.raises(seqlab.errors.SeqlabError, match="n_best=3 needs decode.strategy: beam with a beam of at least 3"):
        translator.translate(SENTENCES[0], beam=2, n_best=3)


def test_too_long_sentence_names_its_position(tiny_run):
    translator = seqlab.load(tiny_run.path)
    long = " ".join(["Maria"] * 70)
    with pytest.raises(SentenceTooLong) as info:
        translator.translate([SENTENCES[0], long], beam=1)
    assert (info.value.index, info.value.n_tokens, info.value.limit) == (1, 70, 63)
    assert "sentence 2 has 70 tokens" in str(info.value)
    assert isinstance(translator.translate(long, beam=1, truncate=True), str)


def test_evaluate_agrees_with_translate_and_the_metrics(translator, tiny_corpus):
    pairs = tiny_corpus.dev_pairs
    result = translator.evaluate(pairs, beam=2)
    hyps = translator.translate([s for s, _ in pairs], beam=2)
    refs = [t for _, t in pairs]
    assert result.hypotheses == hyps
    assert result.bleu == pytest.approx(bleu(hyps, refs)) and 0.0 <= result.bleu <= 100.0
    assert result.chrf == pytest.approx(chrf(hyps, refs)) and 0.0 <= result.chrf <= 100.0
    assert result.sentences == len(pairs)
    assert result.perplexity == pytest.approx(math.exp(result.nll_per_token))
    assert 1.0 < result.perplexity < math.inf


def test_attention_has_one_row_per_target_token_and_one_column_per_source_token(translator):
    amap = translator.attention(SENTENCES[0])
    assert amap.src_tokens == [translator.tokenizers.src.id_to_token(i)
                               for i in translator.tokenizers.src.encode(SENTENCES[0])]
    assert tuple(amap.weights.shape) == (len(amap.tgt_tokens), len(amap.src_tokens))
    torch.testing.assert_close(amap.weights.sum(dim=1), torch.ones(len(amap.tgt_tokens)))
    assert amap.translation == translator.translate(SENTENCES[0], beam=1)


def _force_eos(translator, *, after: int | None):
    """Patch the model so that it emits <eos> as its token ``after + 1`` (never when None)."""
    step_fn, calls = translator.model.decode_step, []

    def decode_step(state, y_prev):
        logits, state = step_fn(state, y_prev)
        calls.append(1)
        logits = logits.clone()
        logits[:, EOS] = 1e4 if after is not None and len(calls) > after else -1e4
        return logits, state

    translator.model.decode_step = decode_step


def test_attention_labels_end_with_eos_when_the_translation_does(translator):
    _force_eos(translator, after=2)
    amap = translator.attention(SENTENCES[1])
    assert len(amap.tgt_tokens) == 3 and amap.tgt_tokens[-1] == "<eos>"
    assert amap.weights.shape[0] == 3


def test_attention_labels_have_no_eos_when_the_length_limit_stops_decoding(translator):
    _force_eos(translator, after=None)
    amap = translator.attention(SENTENCES[1])
    d = translator.config.decode
    src = torch.tensor([translator.tokenizers.src.encode(SENTENCES[1])])
    limit = int(max_target_lengths(src, d.max_len_ratio, d.max_len_offset, translator.model.max_positions)[0])
    assert "<eos>" not in amap.tgt_tokens
    assert amap.weights.shape[0] == len(amap.tgt_tokens) == limit


def _first_logits(translator: Translator, precision: str | None = None) -> torch.Tensor:
    src = torch.tensor([translator.tokenizers.src.encode("Lucas is visiting Chile.")])
    with torch.inference_mode(), translator._precision(precision):
        logits, _ = translator.model.decode_step(translator.model.encode(src), torch.tensor([1]))
    return logits


def _packed(translator: Translator) -> bool:
    return any(isinstance(m, Linear) and m.packed is not None for m in translator.model.modules())


@pytest.mark.skipif(not packed_linear_works(), reason=f"this CPU (capability {cpu_capability()}) computes bf16 "
                    "in a slow reference path; the fallback is tested by the forced-capability tests")
def test_bf16_decoding_uses_packed_weights_and_stays_close_to_float32(tiny_run):
    fp32 = _first_logits(seqlab.load(tiny_run.path))
    model = Translator.load(tiny_run.path, precision="bf16")
    assert model.precision == "bf16" and _packed(model)
    bf16 = _first_logits(model)
    assert bf16.dtype == torch.bfloat16
    assert not torch.equal(bf16.float(), fp32)
    torch.testing.assert_close(bf16.float(), fp32, rtol=0, atol=0.1)
    unpacked = seqlab.load(tiny_run.path)  # packed for fp32 (its default); bf16 on request runs unpacked
    assert model.translate(SENTENCES, beam=2) == unpacked.translate(SENTENCES, beam=2, precision="bf16")


@pytest.mark.skipif(not packed_linear_works("fp32"), reason=f"this CPU (capability {cpu_capability()}) or PyTorch "
                    "has no working oneDNN packed fp32 linear; the fallback is tested in tests/nn/test_linear.py")
def test_fp32_decoding_uses_packed_weights_and_translates_as_the_plain_products(tiny_run):
    model = Translator.load(tiny_run.path, precision="fp32")
    assert _packed(model)
    packed = [model.translate(SENTENCES, beam=1), model.translate(SENTENCES, beam=3)]
    packed_logits = _first_logits(model)
    pack_for_decoding(model.model, precision=None)
    assert not _packed(model)
    assert [model.translate(SENTENCES, beam=1), model.translate(SENTENCES, beam=3)] == packed
    torch.testing.assert_close(packed_logits, _first_logits(model), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("native, resolved", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_follows_the_hardware(tiny_run, cpu_bf16, native, resolved):
    cpu_bf16(native)
    model = seqlab.load(tiny_run.path, precision="auto")
    assert model.precision == resolved
    assert _packed(model) == packed_linear_works(resolved)
    assert _first_logits(model).dtype == (torch.bfloat16 if native else torch.float32)


def test_bf16_without_native_bf16_warns_once_and_decodes_unpacked(tiny_run, cpu_bf16):
    # what an AVX2-only CPU does with --precision bf16: one warning, then the plain bf16 products
    cpu_bf16(False)
    with pytest.warns(SlowPrecisionWarning) as caught:
        model = Translator.load(tiny_run.path, precision="bf16")
        model.translate(SENTENCES[:1], beam=1)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert f"capability {cpu_capability()}" in message and "slower than fp32" in message
    assert not _packed(model)
    bf16 = _first_logits(model)
    assert bf16.dtype == torch.bfloat16
    torch.testing.assert_close(bf16.float(), _first_logits(model, "fp32"), rtol=0, atol=0.1)


def test_an_unknown_precision_names_the_choices(translator):
    with pytest.raises(seqlab.errors.SeqlabError, match="auto, fp32, bf16, fp16, got 'fp8'"):
        translator.translate(["x"], precision="fp8")
