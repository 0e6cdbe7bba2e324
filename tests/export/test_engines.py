"""Decoding through an engine from seqlab: the API and the command line, exported on first use."""

from __future__ import annotations

import json
import math

import pytest

import seqlab
from seqlab.cli import main
from seqlab.config import DecodeConfig
from seqlab.errors import SeqlabError
from seqlab.export.engines import check_settings, export_folder

SENTENCES = ["Is my brother tall?", "Maria is tired.", "The book is on the table in January.",
             "He will have these apples."]


def test_api_ctranslate2_engine_translates_as_native_and_reuses_its_export(tiny_run, copy_run):
    pytest.importorskip("ctranslate2", reason="the ctranslate2 package is not installed")
    run = copy_run(tiny_run)
    native = seqlab.load(run)
    engine = seqlab.load(run, engine="ctranslate2")
    folder = export_folder(run, "ctranslate2", "fp32")
    assert (folder / "model.bin").is_file()  # exported on first use
    assert engine.translate(SENTENCES, beam=1) == native.translate(SENTENCES, beam=1)
    mtime = (folder / "model.bin").stat().st_mtime_ns
    seqlab.load(run, engine="ctranslate2")
    assert (folder / "model.bin").stat().st_mtime_ns == mtime  # reused
    info = json.loads((folder / "seqlab.json").read_text())
    (folder / "seqlab.json").write_text(json.dumps({**info, "step": -1}))  # as if the checkpoint moved on
    seqlab.load(run, engine="ctranslate2")
    assert json.loads((folder / "seqlab.json").read_text())["step"] == info["step"]  # exported again


def test_an_int8_ctranslate2_export_from_before_7_bit_weights_is_exported_again(tiny_run, copy_run):
    pytest.importorskip("ctranslate2", reason="the ctranslate2 package is not installed")
    run = copy_run(tiny_run)
    seqlab.load(run, engine="ctranslate2", precision="int8")
    folder = export_folder(run, "ctranslate2", "int8")
    info = json.loads((folder / "seqlab.json").read_text())
    assert info["int8_weight_max"] == 63
    mtime = (folder / "model.bin").stat().st_mtime_ns
    seqlab.load(run, engine="ctranslate2", precision="int8")
    assert (folder / "model.bin").stat().st_mtime_ns == mtime  # current: reused
    del info["int8_weight_max"]  # as an export of an earlier seqlab wrote it (8-bit weights)
    (folder / "seqlab.json").write_text(json.dumps(info))
    seqlab.load(run, engine="ctranslate2", precision="int8")
    assert (folder / "model.bin").stat().st_mtime_ns != mtime
    assert json.loads((folder / "seqlab.json").read_text())["int8_weight_max"] == 63


def test_api_onnx_engine_translates_and_evaluates_as_native(tiny_run, copy_run, tiny_corpus):
    pytest.importorskip("onnxruntime", reason="the onnxruntime package is not installed")
    run = copy_run(tiny_run)
    native, engine = seqlab.load(run), seqlab.load(run, engine="onnx")
    assert engine.translate(SENTENCES, beam=2) == native.translate(SENTENCES, beam=2)
    assert engine.translate(SENTENCES[0], beam=2, n_best=2)[1][0] == native.translate(SENTENCES[0], beam=2,
                                                                                      n_best=2)[1][0]
    result, expected = engine.evaluate(tiny_corpus.dev_pairs, beam=2), native.evaluate(tiny_corpus.dev_pairs, beam=2)
    assert result.hypotheses == expected.hypotheses and result.bleu == expected.bleu
    assert math.isnan(result.perplexity)  # the engine only decodes


def test_api_native_int8_scores_perplexity_close_to_float32(tiny_run, tiny_corpus):
    translator = seqlab.load(tiny_run.path)
    fp32 = translator.evaluate(tiny_corpus.dev_pairs, beam=1)
    int8 = translator.evaluate(tiny_corpus.dev_pairs, beam=1, precision="int8")
    assert int8.perplexity == pytest.approx(fp32.perplexity, rel=0.02)
    assert int8.perplexity != fp32.perplexity


def test_cli_export_then_translate_through_ctranslate2(tiny_run, copy_run, tmp_path, capsys):
    # `export --quantization int8` writes RUN/export/ctranslate2-int8; translating in fp32 exports fp32 too.
    pytest.importorskip("ctranslate2", reason="the ctranslate2 package is not installed")
    run = copy_run(tiny_run)
    assert main(["export", str(run), "--format", "ctranslate2", "--quantization", "int8"]) == 0
    assert "ctranslate2-int8" in capsys.readouterr().out
    source = tmp_path / "in.txt"
    source.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    outputs = {}
    for engine in ("native", "ctranslate2"):
        assert main(["translate", str(run), "--input", str(source), "--beam", "1", "--engine", engine]) == 0
        outputs[engine] = capsys.readouterr().out
    assert outputs["ctranslate2"] == outputs["native"] and len(outputs["native"].splitlines()) == len(SENTENCES)


def test_cli_evaluate_reports_engine_and_precision(tiny_run, copy_run, tiny_corpus, capsys):
    pytest.importorskip("ctranslate2", reason="the ctranslate2 package is not installed")
    run = copy_run(tiny_run)
    assert main(["evaluate", str(run), "--data", str(tiny_corpus.dev), "--engine", "ctranslate2",
                 "--precision", "int8", "--beam", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["engine"], report["precision"], report["perplexity"]) == ("ctranslate2", "int8", None)
    assert export_folder(run, "ctranslate2", "int8").is_dir()


def test_precisions_an_engine_lacks_are_refused(tiny_run, copy_run, capsys):
    run = copy_run(tiny_run)
    assert main(["translate", str(run), "--engine", "onnx", "--precision", "int8"]) == 2
    assert "the onnx engine decodes in fp32, not 'int8'" in capsys.readouterr().err
    with pytest.raises(SeqlabError, match="ctranslate2 engine decodes in fp32, int8, not 'bf16'"):
        seqlab.load(run, engine="ctranslate2", precision="bf16")


def test_recurrent_runs_cannot_use_an_exported_engine(tiny_gru_run, copy_run, capsys):
    pytest.importorskip("ctranslate2", reason="the ctranslate2 package is not installed")
    assert main(["export", str(copy_run(tiny_gru_run)), "--format", "ctranslate2"]) == 2
    assert "supports Transformer runs" in capsys.readouterr().err


@pytest.mark.parametrize("options, key", [({"strategy": "sample", "top_k": 5}, "decode.strategy"),
                                          ({"repetition_penalty": 1.3}, "decode.repetition_penalty"),
                                          ({"no_repeat_ngram": 2}, "decode.no_repeat_ngram")])
def test_settings_ctranslate2_cannot_apply_are_refused_by_name(options, key):
    settings = DecodeConfig(**{"strategy": "beam", **options})
    with pytest.raises(SeqlabError, match=key):
        check_settings("ctranslate2", settings)
    check_settings("onnx", settings)  # seqlab's own decoding: every setting
    check_settings("native", settings)


def test_onnx_engine_samples_and_streams_as_native(tiny_run, copy_run):
    # The onnx engine runs seqlab's own decoding on the graphs' logits: seeded sampling with the
    # processors, and streaming, give the native engine's outputs.
    pytest.importorskip("onnxruntime", reason="the onnxruntime package is not installed")
    run = copy_run(tiny_run)
    native, engine = seqlab.load(run), seqlab.load(run, engine="onnx")
    options = {"strategy": "sample", "top_k": 5, "temperature": 1.5, "seed": 3, "no_repeat_ngram": 2}
    sampled = engine.translate(SENTENCES, **options)
    assert sampled == native.translate(SENTENCES, **options)
    assert sampled != engine.translate(SENTENCES, beam=1)  # it did sample
    assert "".join(engine.stream_translate(SENTENCES[2], beam=1)) == native.translate(SENTENCES[2], beam=1)


def test_ctranslate2_engine_refuses_sampling_and_streams_whole(tiny_run, copy_run):
    pytest.importorskip("ctranslate2", reason="the ctranslate2 package is not installed")
    run = copy_run(tiny_run)
    engine = seqlab.load(run, engine="ctranslate2")
    with pytest.raises(SeqlabError, match="decode.strategy"):
        engine.translate(SENTENCES, strategy="sample", seed=1)
    with pytest.raises(SeqlabError, match="decode.repetition_penalty"):
        engine.settings(repetition_penalty=1.2)
    assert list(engine.stream_translate(SENTENCES[2], beam=1)) == [engine.translate(SENTENCES[2], beam=1)]


def test_native_int8_streams_what_it_translates(tiny_run):
    translator = seqlab.load(tiny_run.path, precision="int8")
    assert translator.precision == "int8"
    for sentence in SENTENCES:
        assert "".join(translator.stream_translate(sentence, beam=1)) == translator.translate(sentence, beam=1)


def test_exported_engines_are_for_translation_runs_only(tiny_chat_run):
    with pytest.raises(SeqlabError, match="'chat' run; engine 'onnx' decodes translation runs only"):
        seqlab.load(tiny_chat_run.path, engine="onnx")
    bot = seqlab.load(tiny_chat_run.path, precision="int8")  # the native engine's int8 serves any run
    assert bot.reply([], "hello", beam=1) == "".join(bot.stream_reply([], "hello", beam=1))
