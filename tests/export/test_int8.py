"""Dynamic int8 linear layers stay close to float32, and the int8 copy decodes like the float model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqlab.api import Translator
from seqlab.errors import SeqlabError
from seqlab.evaluation.metrics import translate_batch
from seqlab.export.int8 import Int8Linear, quantize_int8

OPTIONS = {"beam": 1, "length_penalty": 0.6, "max_len_ratio": 1.5, "max_len_offset": 10}


def test_int8_linear_is_close_to_the_float_product():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    x = torch.randn(5, 7, 64)
    expected = F.linear(x, linear.weight, linear.bias)
    got = Int8Linear(linear)(x)
    assert got.shape == (5, 7, 48)
    assert (got - expected).norm() / expected.norm() < 0.02
    assert not torch.equal(got, expected)  # it is really quantized


def test_quantize_int8_copies_the_model_and_swaps_every_linear(tiny_run):
    model = Translator.load(tiny_run.path).model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantized = quantize_int8(model)
    assert not any(isinstance(m, torch.nn.Linear) for m in quantized.modules())
    assert sum(isinstance(m, Int8Linear) for m in quantized.modules()) == sum(
        isinstance(m, torch.nn.Linear) for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the original is untouched


def test_int8_logits_and_translations_are_close_to_float32(tiny_run, export_sentences):
    translator = Translator.load(tiny_run.path)
    model, quantized = translator.model, quantize_int8(translator.model)
    ids = translator.tokenizers.src.encode_batch(export_sentences[:-1])
    src, tgt = torch.tensor([ids[0]]), torch.tensor([[1] + ids[1]])
    with torch.inference_mode():
        logits, int8_logits = model(src, tgt), quantized(src, tgt)
    assert (int8_logits - logits).abs().max() < 0.05 * logits.abs().max()
    fp32 = translate_batch(model, ids, **OPTIONS).tokens
    same = sum(a == b for a, b in zip(translate_batch(quantized, ids, **OPTIONS).tokens, fp32))
    assert same >= 0.7 * len(ids)


def test_without_the_x86_engine_int8_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("seqlab.export.int8._supported_engines", lambda: ["qnnpack"])  # an ARM build
    with pytest.raises(SeqlabError, match="x86/fbgemm quantized engine.*--precision fp32"):
        quantize_int8(torch.nn.Linear(2, 2))
