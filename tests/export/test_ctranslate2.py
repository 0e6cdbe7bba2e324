"""A seqlab Transformer exported to CTranslate2 scores and translates as seqlab does (float32)."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from seqlab.api import Translator
from seqlab.config import DecodeConfig
from seqlab.decoding.generate import translate_batch
from seqlab.errors import SeqlabError
from seqlab.text.specials import EOS, PAD, SOS

ctranslate2 = pytest.importorskip("ctranslate2", reason="the ctranslate2 package is not installed")

from seqlab.export.ctranslate2 import CTranslate2Engine, export_ctranslate2


def _settings(beam: int = 1, length_penalty: float = 0.6, **options) -> DecodeConfig:
    """Beam search of size ``beam`` (greedy for 1) with the length limits ceil(1.5 |x|) + 10."""
    return DecodeConfig(**{"strategy": "beam", "beam": beam, "length_penalty": length_penalty,
                           "max_len_ratio": 1.5, "max_len_offset": 10, **options})


@pytest.fixture(scope="module")
def trained(tiny_run):
    return Translator.load(tiny_run.path)


@pytest.fixture(scope="module")
def trained_export(trained, tmp_path_factory):
    return export_ctranslate2(trained.model, trained.tokenizers, tmp_path_factory.mktemp("ct2") / "model")


@pytest.fixture(scope="module")
def trained_engine(trained, trained_export):
    return CTranslate2Engine(trained_export, trained.tokenizers)


@pytest.fixture(scope="module")
def no_specials_engine(trained, tmp_path_factory):
    """The trained model with a bias of -1e4 on the <pad> and <sos> logits, and its export.

    CTranslate2 removes suppressed tokens before its softmax, seqlab after (see
    :mod:`seqlab.export.ctranslate2`): when these two tokens have no probability the two beam
    searches must agree exactly. (The 10-step tiny model gives them a lot.)
    """
    model = copy.deepcopy(trained.model)
    generator = torch.nn.Linear(model.generator.in_features, model.generator.out_features)
    with torch.no_grad():
        generator.weight.copy_(model.generator.weight)
        generator.bias.zero_()
        generator.bias[[PAD, SOS]] = -1e4
    model.generator = generator
    folder = export_ctranslate2(model, trained.tokenizers, tmp_path_factory.mktemp("ct2-nospecials") / "model")
    return model, CTranslate2Engine(folder, trained.tokenizers)


@pytest.fixture(scope="module")
def prenorm_engine(prenorm_transformer, tmp_path_factory):
    model, tokenizers = prenorm_transformer
    folder = export_ctranslate2(model, tokenizers, tmp_path_factory.mktemp("ct2-pre") / "model")
    return CTranslate2Engine(folder, tokenizers)


def _ids(tokenizers, sentences):
    return tokenizers.src.encode_batch(sentences)


def _teacher_forced_log_probs(model, src: list[int], tgt: list[int]) -> torch.Tensor:
    """log p(y_t | y_<t, x) of every token of tgt + <eos> under the PyTorch model, (T + 1,)."""
    with torch.inference_mode():
        logits = model(torch.tensor([src]), torch.tensor([[SOS] + tgt]))[0]  # (T + 1, V)
    return torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(tgt + [EOS])[:, None])[:, 0]


@pytest.mark.parametrize("which", ["trained", "prenorm"])
def test_exported_model_scores_every_token_as_seqlab(which, trained, trained_engine, prenorm_transformer,
                                                     prenorm_engine, export_sentences):
    # Teacher-forced log-probabilities of given targets: every weight, norm, position and the
    # output layer enter them, so a mapping mistake anywhere shows (argmax outputs could hide it).
    model, tokenizers = (trained.model, trained.tokenizers) if which == "trained" else prenorm_transformer
    engine = trained_engine if which == "trained" else prenorm_engine
    sources = _ids(tokenizers, export_sentences[:12])
    targets = tokenizers.tgt.encode_batch(export_sentences[12:24])
    results = engine.translator.score_batch(
        [[engine.src_tokens[i] for i in s] for s in sources],
        [[tokenizers.tgt.id_to_token(i) for i in t] for t in targets])
    for src, tgt, result in zip(sources, targets, results):
        expected = _teacher_forced_log_probs(model, src, tgt)
        assert torch.allclose(torch.tensor(result.log_probs), expected, atol=1e-4), (src, tgt)


def test_greedy_output_equals_seqlabs_on_a_trained_model(trained, trained_engine, export_sentences):
    ids = _ids(trained.tokenizers, export_sentences)
    native = translate_batch(trained.model, ids, _settings())
    exported = trained_engine.translate_ids(ids, _settings())
    assert len({tuple(t) for t in native.tokens}) > 4  # the model says different things
    assert exported.tokens == native.tokens
    assert exported.tokens[-1] == [] and exported.scores[-1] == 0.0  # the empty sentence


@pytest.mark.parametrize("beam, alpha", [(3, 0.6), (4, 0.0), (2, 1.5)])
def test_beam_output_equals_seqlabs(beam, alpha, trained, no_specials_engine, export_sentences):
    model, engine = no_specials_engine
    ids = _ids(trained.tokenizers, export_sentences)
    native = translate_batch(model, ids, _settings(beam, alpha, n_best=beam))
    exported = engine.translate_ids(ids, _settings(beam, alpha, n_best=beam))
    assert len({tuple(t) for t in native.tokens}) > 4
    assert exported.tokens == native.tokens
    assert [[t for t, _ in hyps] for hyps in exported.nbest] == [[t for t, _ in hyps] for hyps in native.nbest]


def test_untrained_prenorm_model_translates_greedily_as_seqlab(prenorm_transformer, prenorm_engine,
                                                               export_sentences):
    model, tokenizers = prenorm_transformer
    ids = _ids(tokenizers, export_sentences)
    native = translate_batch(model, ids, _settings())
    assert prenorm_engine.translate_ids(ids, _settings()).tokens == native.tokens


def test_length_limits_follow_the_source_length(trained, no_specials_engine, export_sentences):
    # L_i = ceil(0.2 |x_i|) + 1 steps: short outputs cut at different lengths per sentence.
    model, engine = no_specials_engine
    ids = _ids(trained.tokenizers, export_sentences)
    settings = _settings(2, max_len_ratio=0.2, max_len_offset=1)
    native = translate_batch(model, ids, settings)
    exported = engine.translate_ids(ids, settings)
    assert exported.tokens == native.tokens
    assert len({len(t) for t in native.tokens}) > 1


@pytest.mark.parametrize("beam", [1, 3])
def test_min_length_and_max_new_tokens_act_as_in_seqlab(beam, trained, no_specials_engine, export_sentences):
    # min_length blocks <eos> until that many tokens are out; max_new_tokens replaces the source rule.
    model, engine = no_specials_engine
    ids = _ids(trained.tokenizers, export_sentences)
    settings = _settings(beam, min_length=4, max_new_tokens=7)
    native = translate_batch(model, ids, settings)
    assert engine.translate_ids(ids, settings).tokens == native.tokens
    assert min(len(t) for t in native.tokens if t) >= 4 and max(len(t) for t in native.tokens) <= 7
    assert native.tokens != translate_batch(model, ids, _settings(beam)).tokens  # the settings changed outputs


def test_int8_model_mostly_agrees_with_float32(trained, trained_engine, trained_export, tmp_path, export_sentences):
    # Also run under oneDNN's AVX2 kernels by tests/test_portability.py, where int8 weights of
    # 8 bits saturate the u8 x s8 products (mean |d log p| 0.64 per token) and 7 bits do not.
    folder = export_ctranslate2(trained.model, trained.tokenizers, tmp_path / "int8", quantization="int8")
    assert json.loads((folder / "seqlab.json").read_text())["int8_weight_max"] == 63
    int8 = CTranslate2Engine(folder, trained.tokenizers, precision="int8")
    ids = _ids(trained.tokenizers, export_sentences)
    fp32 = trained_engine.translate_ids(ids, _settings()).tokens
    same = sum(a == b for a, b in zip(int8.translate_ids(ids, _settings()).tokens, fp32))
    assert same >= 0.7 * len(ids)
    sources = [[int8.src_tokens[i] for i in s] for s in ids]
    targets = [[trained.tokenizers.tgt.id_to_token(i) for i in t] for t in fp32]
    error = torch.cat([torch.tensor(a.log_probs) - torch.tensor(b.log_probs) for a, b in
                       zip(int8.translator.score_batch(sources, targets),
                           trained_engine.translator.score_batch(sources, targets))]).abs()
    assert error.mean() < 0.05 and error.max() < 0.3  # log-probabilities of the fp32 translations
    assert (folder / "model.bin").stat().st_size < 0.6 * (trained_export / "model.bin").stat().st_size


def test_int8_weights_are_7_bit_per_row_and_dequantize_to_the_float_weights():
    from seqlab.export.ctranslate2 import _quantize_rows

    w = torch.randn(6, 40).numpy()
    w[3] = 0.0  # an all-zero row keeps a finite scale
    q, scale = _quantize_rows(w, 63)
    q, scale = q.numpy(), scale.numpy()
    assert q.dtype.name == "int8" and abs(q).max() == 63
    assert (abs(q).max(axis=1)[[0, 1, 2, 4, 5]] == 63).all() and (q[3] == 0).all()
    step = abs(w).max(axis=1) / 63
    assert (abs(q / scale[:, None] - w) <= step[:, None] / 2 + 1e-6).all()


def test_recurrent_runs_are_refused(tiny_gru_run, tmp_path):
    gru = Translator.load(tiny_gru_run.path)
    with pytest.raises(SeqlabError, match="supports Transformer runs"):
        export_ctranslate2(gru.model, gru.tokenizers, tmp_path / "gru")


def test_a_folder_without_an_export_is_a_clear_error(trained, tmp_path):
    with pytest.raises(SeqlabError, match="not a CTranslate2 model exported by seqlab"):
        CTranslate2Engine(tmp_path, trained.tokenizers)
