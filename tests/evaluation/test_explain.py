"""The attention steps of :mod:`seqlab.evaluation.explain` against the model's own computation."""

from __future__ import annotations

import math

import pytest
import torch

import seqlab
from seqlab.config import TransformerConfig
from seqlab.errors import SeqlabError
from seqlab.evaluation.explain import explain, explain_ids
from seqlab.models.transformer import build_transformer
from seqlab.text.specials import SOS

SRC, TGT = [5, 6, 7, 8, 9], [4, 5, 6]


def tiny(norm: str = "post"):
    cfg = TransformerConfig(layers=2, d_model=32, heads=4, ffn=64, dropout=0.0, max_positions=64, norm=norm)
    torch.manual_seed(0)
    return build_transformer(cfg, 20, 23).eval()


def _module_outputs(model, src, tgt_in):
    """The output of every attention module in one teacher-forced forward pass, recorded by hooks.

    Encoder self-attention runs through ``forward``; the decoder calls ``attend_projected``
    (self) and ``attend`` (cross), so those are wrapped to record what they return.
    """
    seen = {"encoder": [], "decoder": [], "cross": []}
    hooks = [layer.self_attn.register_forward_hook(lambda m, a, out: seen["encoder"].append(out[0][0]))
             for layer in model.encoder.layers]
    originals = []
    for layer in model.decoder_layers:
        for side, attn, name in (("decoder", layer.self_attn, "attend_projected"),
                                 ("cross", layer.cross_attn, "attend")):
            original = getattr(attn, name)

            def wrapped(*args, _original=original, _side=side, **kwargs):
                out = _original(*args, **kwargs)
                seen[_side].append(out[0][0])
                return out

            setattr(attn, name, wrapped)
            originals.append((attn, name))
    try:
        with torch.no_grad():
            features = model.features(src, tgt_in)[0]
    finally:
        for h in hooks:
            h.remove()
        for attn, name in originals:
            delattr(attn, name)  # the instance attribute goes; the method is the class's again
    return seen, features


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_explained_outputs_equal_the_models_own_attention_outputs(norm):
    model = tiny(norm)
    steps, features = explain_ids(model, SRC, TGT)
    seen, expected_features = _module_outputs(model, torch.tensor([SRC]), torch.tensor([[SOS, *TGT]]))
    for side in ("encoder", "decoder", "cross"):
        assert len(steps[side]) == 2
        for layer, explained in enumerate(steps[side]):
            torch.testing.assert_close(explained.output, seen[side][layer], rtol=0, atol=1e-5)
    torch.testing.assert_close(features, expected_features, rtol=0, atol=1e-5)


def test_each_step_follows_from_the_previous_one():
    model = tiny()
    steps, _ = explain_ids(model, SRC, TGT)
    for side in ("encoder", "decoder", "cross"):
        s = steps[side][1]
        torch.testing.assert_close(s.scores, s.q @ s.k.transpose(-2, -1))
        finite = torch.isfinite(s.scaled)
        torch.testing.assert_close(s.scaled[finite], (s.scores / math.sqrt(s.q.size(-1)))[finite])
        torch.testing.assert_close(s.weights, torch.softmax(s.scaled, dim=-1))
        torch.testing.assert_close(s.heads_out, s.weights @ s.v)
    assert s.q.shape == (4, 4, 8) and s.k.shape == (4, 5, 8)  # cross: h=4, T=4 queries, S=5 keys, d_k=8


def test_decoder_self_attention_masks_later_positions():
    steps, _ = explain_ids(tiny(), SRC, TGT)
    s = steps["decoder"][0]
    later = torch.ones(4, 4, dtype=torch.bool).triu(1)  # (T, T) j > i
    assert bool(torch.isinf(s.scaled[:, later]).all()) and not bool(torch.isinf(s.scaled[:, ~later]).any())
    assert float(s.weights[:, later].abs().max()) == 0.0
    assert s.head(0)["scaled"][0][1] is None  # -inf is written as null in the JSON-ready head


def test_last_cross_attention_averaged_over_heads_equals_the_models_plot_weights():
    model = tiny()
    steps, _ = explain_ids(model, SRC, TGT)
    with torch.no_grad():
        expected = model.cross_attention(torch.tensor([SRC]), torch.tensor([[SOS, *TGT]]))[0]
    torch.testing.assert_close(steps["cross"][-1].weights.mean(0), expected, rtol=0, atol=1e-6)


def test_explain_a_run_labels_tokens_and_checks_its_arguments(tiny_run, tiny_gru_run, tiny_corpus):
    translator = seqlab.load(tiny_run.path)
    source, target = tiny_corpus.train_pairs[0]
    exp = explain(translator.model, translator.tokenizers, source, target)
    tok = translator.tokenizers
    assert exp.src_tokens == [tok.src.id_to_token(i) for i in tok.src.encode(source)]
    assert exp.tgt_tokens == ["<sos>", *(tok.tgt.id_to_token(i) for i in tok.tgt.encode(target))]
    assert exp.predicted == [*exp.tgt_tokens[1:], "<eos>"]
    assert exp.translation == tok.tgt.decode(tok.tgt.encode(target))
    assert exp.get("cross", 0).weights.shape[1:] == (len(exp.tgt_tokens), len(exp.src_tokens))
    with pytest.raises(SeqlabError, match="layer 3 does not exist"):
        exp.get("encoder", 3)
    with pytest.raises(SeqlabError, match="head 7 does not exist"):
        exp.get("encoder", 0).head(7)
    gru = seqlab.load(tiny_gru_run.path)
    with pytest.raises(SeqlabError, match="need a Transformer run"):
        explain(gru.model, gru.tokenizers, "Maria is tired.", "Maria")
