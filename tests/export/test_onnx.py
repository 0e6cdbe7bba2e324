"""The ONNX graphs compute seqlab's decoding steps, and seqlab's search through ONNX Runtime translates alike."""

from __future__ import annotations

import pytest
import torch

from seqlab.api import Translator
from seqlab.errors import SeqlabError
from seqlab.evaluation.metrics import translate_batch

pytest.importorskip("onnx", reason="the onnx package is not installed")
pytest.importorskip("onnxruntime", reason="the onnxruntime package is not installed")

from seqlab.export.onnx import OnnxSeq2Seq, export_onnx

OPTIONS = {"max_len_ratio": 1.5, "max_len_offset": 10}


@pytest.fixture(scope="module")
def trained(tiny_run):
    return Translator.load(tiny_run.path)


@pytest.fixture(scope="module")
def trained_onnx(trained, tmp_path_factory):
    return OnnxSeq2Seq(export_onnx(trained.model, tmp_path_factory.mktemp("onnx") / "model"))


@pytest.fixture(scope="module")
def prenorm_onnx(prenorm_transformer, tmp_path_factory):
    return OnnxSeq2Seq(export_onnx(prenorm_transformer[0], tmp_path_factory.mktemp("onnx-pre") / "model"))


@pytest.mark.parametrize("which", ["trained", "prenorm"])
def test_step_logits_equal_the_pytorch_models(which, trained, trained_onnx, prenorm_transformer, prenorm_onnx,
                                              export_sentences):
    # Feed both the same tokens for several steps (a batch with padding): logits agree at every step,
    # so the cache grows and the positions advance as in PyTorch.
    model, tokenizers = (trained.model, trained.tokenizers) if which == "trained" else prenorm_transformer
    onnx_model = trained_onnx if which == "trained" else prenorm_onnx
    ids = tokenizers.src.encode_batch(export_sentences[:4])
    src = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long)  # (B, S), <pad> = 0
    for i, row in enumerate(ids):
        src[i, : len(row)] = torch.tensor(row)
    with torch.inference_mode():
        state, onnx_state = model.encode(src), onnx_model.encode(src)
        y = torch.ones(len(ids), dtype=torch.long)  # <sos>
        for _ in range(5):
            logits, state = model.decode_step(state, y)
            onnx_logits, onnx_state = onnx_model.decode_step(onnx_state, y)
            assert torch.allclose(onnx_logits, logits, atol=1e-4)
            y = torch.randint(4, logits.size(1), (len(ids),))


@pytest.mark.parametrize("beam", [1, 3])
def test_translations_equal_seqlabs(beam, trained, trained_onnx, export_sentences):
    ids = trained.tokenizers.src.encode_batch(export_sentences)
    native = translate_batch(trained.model, ids, beam=beam, length_penalty=0.6, **OPTIONS)
    exported = translate_batch(trained_onnx, ids, beam=beam, length_penalty=0.6, **OPTIONS)
    assert len({tuple(t) for t in native.tokens}) > 4
    assert exported.tokens == native.tokens
    assert exported.scores == pytest.approx(native.scores, abs=1e-3)


def test_prenorm_translations_equal_seqlabs(prenorm_transformer, prenorm_onnx, export_sentences):
    model, tokenizers = prenorm_transformer
    ids = tokenizers.src.encode_batch(export_sentences)
    native = translate_batch(model, ids, beam=2, length_penalty=0.6, **OPTIONS)
    assert translate_batch(prenorm_onnx, ids, beam=2, length_penalty=0.6, **OPTIONS).tokens == native.tokens


def test_recurrent_runs_are_refused(tiny_gru_run, tmp_path):
    with pytest.raises(SeqlabError, match="supports Transformer runs"):
        export_onnx(Translator.load(tiny_gru_run.path).model, tmp_path / "gru")


def test_the_onnx_model_decodes_only(trained_onnx):
    with pytest.raises(SeqlabError, match="decodes only"):
        trained_onnx.features(torch.ones(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.long))
