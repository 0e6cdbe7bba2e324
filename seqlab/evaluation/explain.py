"""Every attention of a Transformer, step by step, with the model's real numbers.

For one source sentence x and its translation y, each attention of each layer is written out the
way the lesson teaches it (Vaswani et al. 2017, section 3.2.1), per head:

    q_i = h_i W_Q,   k_j = m_j W_K,   v_j = m_j W_V          (h = m for self-attention)
    s_ij = q_i . k_j                                            the scores
    s_ij / sqrt(d_k)                                            the scaled scores (-inf where masked)
    a_ij = softmax_j(s_ij / sqrt(d_k))                          the weights
    o_i  = sum_j a_ij v_j                                       the weighted sum of the values

for the three kinds of attention: ``encoder`` self-attention over x, ``decoder`` self-attention
over ``<sos>`` y under the causal mask, and ``cross`` attention from ``<sos>`` y to x.

The pass is the teacher-forced forward pass of :class:`~seqlab.models.transformer.TransformerSeq2Seq`
run through the model's own layers (their Add & Norm, feed-forward and projection methods); only
the attention itself goes through :func:`seqlab.nn.attention.attention_explicit`, which returns
the weights. ``tests/evaluation/test_explain.py`` holds every explained output, after W_O, equal
to the output of the model's own attention module, and the explained decoder output equal to the
model's ``features``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from seqlab.errors import SeqlabError
from seqlab.models.transformer import TransformerSeq2Seq
from seqlab.nn.attention import MultiHeadAttention, attention_explicit, causal_mask
from seqlab.text.specials import EOS, SOS

__all__ = ["AttentionSteps", "Explanation", "explain", "explain_ids"]

SIDES = ("encoder", "decoder", "cross")


@dataclass
class AttentionSteps:
    """One attention of one layer, every head, for one sentence (no batch dimension).

    Attributes:
        side: ``encoder``, ``decoder`` or ``cross``.
        layer: 0-based layer index.
        q: (h, T_q, d_k) queries.
        k, v: (h, T_k, d_k) keys and values.
        scores: (h, T_q, T_k) q . k.
        scaled: (h, T_q, T_k) scores / sqrt(d_k), -inf where the mask hides a key.
        weights: (h, T_q, T_k) softmax of the scaled scores (rows sum to one).
        heads_out: (h, T_q, d_k) the weighted sums of the values.
        output: (T_q, d_model) Concat(heads) W_O, the attention sub-layer's output.
    """

    side: str
    layer: int
    q: Tensor
    k: Tensor
    v: Tensor
    scores: Tensor
    scaled: Tensor
    weights: Tensor
    heads_out: Tensor
    output: Tensor

    def head(self, h: int) -> dict:
        """Head ``h`` as plain lists (JSON-ready): q, k, v, scores, scaled, weights, out."""
        if not 0 <= h < self.q.size(0):
            raise SeqlabError(f"head {h} does not exist: this model has heads 0..{self.q.size(0) - 1}")

        def plain(t: Tensor) -> list:
            return [[None if math.isinf(x) else round(x, 6) for x in row] for row in t.tolist()]

        return {"q": plain(self.q[h]), "k": plain(self.k[h]), "v": plain(self.v[h]),
                "scores": plain(self.scores[h]), "scaled": plain(self.scaled[h]),
                "weights": plain(self.weights[h]), "out": plain(self.heads_out[h])}


@dataclass
class Explanation:
    """All attentions of one translation.

    Attributes:
        src_tokens: the S source tokens (keys of ``encoder`` and ``cross``).
        tgt_tokens: the T decoder inputs, ``<sos>`` y (queries of ``decoder`` and ``cross``).
        predicted: the T tokens those positions predict, y ``<eos>``.
        translation: y as text.
        steps: per side, per layer, an :class:`AttentionSteps`.
        features: (T, d_model) the decoder's final outputs.
    """

    src_tokens: list[str]
    tgt_tokens: list[str]
    predicted: list[str]
    translation: str
    steps: dict[str, list[AttentionSteps]]
    features: Tensor

    def get(self, side: str, layer: int) -> AttentionSteps:
        if side not in self.steps:
            raise SeqlabError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
        layers = self.steps[side]
        if not 0 <= layer < len(layers):
            raise SeqlabError(f"layer {layer} does not exist: the {side} has layers 0..{len(layers) - 1}")
        return layers[layer]


def _explain_attention(attn: MultiHeadAttention, side: str, layer: int, h: Tensor, memory: Tensor | None,
                       mask: Tensor | None, record: list[AttentionSteps]) -> Tensor:
    """Run ``attn`` over (1, T, d) ``h`` (and ``memory`` for cross-attention), record its steps.

    Returns the (1, T, d) attention output, Concat(heads) W_O, as the sub-layer's result.
    """
    if memory is None:
        q, k, v = attn.project_qkv(h)  # (1, h, T, d_k) each
    else:
        q = attn.project_q(h)  # (1, h, T, d_k)
        k, v = attn.project_kv(memory, memory)  # (1, h, S, d_k)
    out, weights = attention_explicit(q, k, v, mask)
    scores = q @ k.transpose(-2, -1)  # (1, h, T_q, T_k)
    scaled = scores / math.sqrt(q.size(-1))
    if mask is not None:
        scaled = scaled.masked_fill(~mask, float("-inf"))
    output = attn.W_o(attn.merge_heads(out))  # (1, T_q, d)
    record.append(AttentionSteps(side, layer, q[0], k[0], v[0], scores[0], scaled[0], weights[0], out[0],
                                 output[0]))
    return output


@torch.inference_mode()
def explain_ids(model: TransformerSeq2Seq, src_ids: list[int], tgt_ids: list[int]) -> tuple[dict[str, list[AttentionSteps]], Tensor]:
    """Steps of every attention for source ids x and target ids y (no specials) of a Transformer.

    Returns:
        ``{side: [AttentionSteps per layer]}`` and the (T, d) decoder features, T = len(y) + 1.
    """
    if not isinstance(model, TransformerSeq2Seq):
        raise SeqlabError(f"attention steps need a Transformer run; this model is a {type(model).__name__}")
    if not src_ids:
        raise SeqlabError("nothing to explain: the source has no tokens")
    was_training = model.training
    model.eval()
    try:
        steps: dict[str, list[AttentionSteps]] = {side: [] for side in SIDES}
        device = next(model.parameters()).device
        src = torch.tensor([src_ids], dtype=torch.long, device=device)  # (1, S)
        tgt_in = torch.tensor([[SOS, *tgt_ids]], dtype=torch.long, device=device)  # (1, T)
        x = model.encoder.embed(src)
        for i, layer in enumerate(model.encoder.layers):
            x = layer.add_norm_1(x, lambda h, a=layer.self_attn, i=i: _explain_attention(
                a, "encoder", i, h, None, None, steps["encoder"]))
            x = layer.add_norm_2(x, layer.ffn)
        memory = model.encoder.norm(x)  # (1, S, d)
        causal = causal_mask(tgt_in.size(1), device=device)  # (T, T)
        y = model.tgt_embed(tgt_in)
        for i, layer in enumerate(model.decoder_layers):
            y = layer.add_norm_1(y, lambda h, a=layer.self_attn, i=i: _explain_attention(
                a, "decoder", i, h, None, causal, steps["decoder"]))
            y = layer.add_norm_2(y, lambda h, a=layer.cross_attn, i=i: _explain_attention(
                a, "cross", i, h, memory, None, steps["cross"]))
            y = layer.add_norm_3(y, layer.ffn)
        return steps, model.decoder_norm(y)[0]
    finally:
        model.train(was_training)


def explain(model: TransformerSeq2Seq, tokenizers, source: str, translation: str) -> Explanation:
    """Every attention of ``model`` translating ``source`` into ``translation``, step by step.

    Args:
        model: a trained :class:`~seqlab.models.transformer.TransformerSeq2Seq`.
        tokenizers: its :class:`~seqlab.text.pair.TokenizerPair`.
        source: the source sentence.
        translation: its translation (the model's own, or any other sentence to teacher-force).

    Raises:
        SeqlabError: for a model that is not a Transformer, an empty source, or a sentence longer
            than the model's positions.
    """
    src_ids = tokenizers.src.encode(source)
    tgt_ids = tokenizers.tgt.encode(translation)
    limit = model.max_positions - 1
    for label, ids in (("source", src_ids), ("translation", tgt_ids)):
        if len(ids) > limit:
            raise SeqlabError(f"the {label} has {len(ids)} tokens, more than the model's limit of {limit}")
    steps, features = explain_ids(model, src_ids, tgt_ids)
    tgt = tokenizers.tgt
    return Explanation(
        src_tokens=[tokenizers.src.id_to_token(i) for i in src_ids],
        tgt_tokens=[tgt.id_to_token(i) for i in [SOS, *tgt_ids]],
        predicted=[tgt.id_to_token(i) for i in [*tgt_ids, EOS]],
        translation=tgt.decode(tgt_ids),
        steps=steps,
        features=features,
    )
