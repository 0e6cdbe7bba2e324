"""A seqlab Transformer as a CTranslate2 model, and decoding through it with seqlab's options.

Export maps every weight onto CTranslate2's ``TransformerSpec`` (its Python specification API):

    x_t = sqrt(d) E[w_t] + PE(t)        -> embeddings.weight, scale_embeddings, position_encodings
    [W_Q; W_K; W_V], W_O                -> self_attention.linear[0], linear[1]
    W_Q, [W_K; W_V], W_O (cross)        -> attention.linear[0], linear[1], linear[2]
    FFN(x) = max(0, x W_1 + b_1) W_2    -> ffn.linear_0, ffn.linear_1, activation RELU
    Add & Norm (post or pre)            -> each sublayer's layer_norm, pre_norm, final layer_norm
    softmax(h W_out)                    -> decoder.projection (the tied matrix copied)

CTranslate2 would build its own sinusoidal table with the sines in the first half of each vector
and the cosines in the second; seqlab interleaves them (PE(t, 2i) = sin, PE(t, 2i+1) = cos,
:mod:`seqlab.nn.positional`), so the table is stored explicitly (learned tables the same way).
The vocabularies are seqlab's tokens in id order, so ids map one to one.

:class:`CTranslate2Engine` decodes through the exported model and returns what seqlab's own
decoding returns (:class:`~seqlab.decoding.greedy.DecodeOutput`):

* the per-sentence length limit L_i of :mod:`seqlab.decoding.lengths` becomes
  ``max_decoding_length`` (sentences are grouped by limit); ``<pad>`` and ``<sos>`` are suppressed
  and an immediate ``<eos>`` is allowed, as in seqlab;
* greedy search is CTranslate2's greedy search; ``decode.min_length`` becomes
  ``min_decoding_length`` and ``decode.max_new_tokens`` replaces the source-length limit, as in seqlab;
* beam search is CTranslate2's beam search, which keeps the same 2K candidates per step and, with
  a length penalty set, stops once K hypotheses have finished, as seqlab's does. Its penalty
  differs (s / |Y|^alpha instead of GNMT's ((5 + |Y|) / 6)^alpha), so it runs with an exponent of
  1e-12 (which changes no float32 score but keeps that stopping rule) and the finished
  hypotheses are ranked here by seqlab's GNMT penalty. (CTranslate2 keeps the K best finished
  hypotheses by raw score; for alpha >= 0 the GNMT-best one is always among them.)

One difference remains: CTranslate2 removes the suppressed ``<pad>``/``<sos>`` before its softmax,
seqlab after it, so log-probabilities differ by log(1 - p(<pad>) - p(<sos>)) per step. Greedy
choices are unaffected; beam search, which compares beams, agrees when these tokens have
negligible probability, as in a trained model (they are never targets), and may differ in a
barely trained one. Scores are CTranslate2's.

``tests/export/test_ctranslate2.py`` holds teacher-forced log-probabilities, greedy and beam outputs
equal to seqlab's in float32.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seqlab.config import DecodeConfig
from seqlab.decoding.beam import gnmt_length_penalty
from seqlab.decoding.generate import uses_beam
from seqlab.decoding.greedy import DecodeOutput
from seqlab.decoding.lengths import output_limits
from seqlab.errors import SeqlabError
from seqlab.export.weights import attention_weights, position_table, transformer_of
from seqlab.text.pair import TokenizerPair
from seqlab.text.specials import EOS, SOS, SPECIALS, UNK

__all__ = ["CTranslate2Engine", "export_ctranslate2", "import_ctranslate2", "transformer_spec"]

QUANTIZATIONS = {"fp32": "float32", "int8": "int8_float32"}
"""seqlab precision name -> CTranslate2 weight quantization / compute type."""

INT8_WEIGHT_MAX = 63
"""int8 exports store weights in [-63, 63] (7 bits), not [-127, 127].

CTranslate2 multiplies int8 weights by activations shifted to unsigned 8 bits (u8 x s8, through
oneDNN). On CPUs without VNNI (AVX2 only, AVX-512 before Cascade Lake) that product adds pairs of
u8 x s8 products in 16 bits (``vpmaddubsw``), which saturates once 2 * 255 * |Q| > 32767, i.e. for
|Q| > 64: translations then drift from fp32 (measured on a tiny model under ``ONEDNN_MAX_CPU_ISA=AVX2``:
mean |log p| error 0.64 per token, against 0.009 with VNNI). With |Q| <= 63 no pair saturates on any
CPU, at the cost of one bit of weight resolution everywhere. PyTorch's own x86 int8 kernels make the
same trade on the activation side (``reduce_range``), which seqlab's native int8 uses."""

_NO_PENALTY = 1e-12
"""A length-penalty exponent that changes no float32 score but keeps CTranslate2's beam search
stopping at K finished hypotheses (with exactly 0 it stops once the best beam has finished)."""


def import_ctranslate2():
    """The ``ctranslate2`` module, or an error saying how to install it."""
    try:
        import ctranslate2
    except ImportError:
        raise SeqlabError("the CTranslate2 engine needs the ctranslate2 package: "
                          "pip install 'seqlab[export]' (or pip install ctranslate2)") from None
    return ctranslate2


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy().copy()


def _set_linear(spec, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    spec.weight = _numpy(weight)
    if bias is not None:
        spec.bias = _numpy(bias)


def _set_norm(spec, norm: nn.LayerNorm) -> None:
    spec.gamma, spec.beta = _numpy(norm.weight), _numpy(norm.bias)


def _set_self_attention(spec, mha, norm: nn.LayerNorm) -> None:
    w = attention_weights(mha)
    _set_linear(spec.linear[0], torch.cat([w.W_q, w.W_k, w.W_v]), torch.cat([w.b_q, w.b_k, w.b_v]))  # (3d, d)
    _set_linear(spec.linear[1], w.W_o, w.b_o)
    _set_norm(spec.layer_norm, norm)


def _set_cross_attention(spec, mha, norm: nn.LayerNorm) -> None:
    w = attention_weights(mha)
    _set_linear(spec.linear[0], w.W_q, w.b_q)
    _set_linear(spec.linear[1], torch.cat([w.W_k, w.W_v]), torch.cat([w.b_k, w.b_v]))  # (2d, d)
    _set_linear(spec.linear[2], w.W_o, w.b_o)
    _set_norm(spec.layer_norm, norm)


def _set_ffn(spec, ffn, norm: nn.LayerNorm) -> None:
    _set_linear(spec.linear_0, ffn.W_1.weight, ffn.W_1.bias)
    _set_linear(spec.linear_1, ffn.W_2.weight, ffn.W_2.bias)
    _set_norm(spec.layer_norm, norm)


def _vocabulary(tokenizer, side: str) -> list[str]:
    tokens = [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)]
    if tokens[: len(SPECIALS)] != SPECIALS or len(set(tokens)) != len(tokens):
        raise SeqlabError(f"the {side} vocabulary cannot be exported: it must start with {SPECIALS} and "
                          "hold no token twice")
    return tokens


def transformer_spec(model: nn.Module, tokenizers: TokenizerPair):
    """A ``ctranslate2.specs.TransformerSpec`` holding ``model``'s weights and vocabularies.

    Raises:
        SeqlabError: for a model that is not a Transformer, or without the ctranslate2 package.
    """
    import_ctranslate2()  # a clear error without the package
    from ctranslate2.specs import common_spec
    from ctranslate2.specs import transformer_spec as ts

    model = transformer_of(model, "CTranslate2 export")
    pre_norm = isinstance(model.encoder.norm, nn.LayerNorm)
    enc, dec = model.encoder.layers, model.decoder_layers
    spec = ts.TransformerSpec.from_config((len(enc), len(dec)), enc[0].self_attn.h, pre_norm=pre_norm,
                                          activation=common_spec.Activation.RELU)
    for side, embed in ((spec.encoder, model.encoder.embed), (spec.decoder, model.tgt_embed)):
        emb = side.embeddings[0] if isinstance(side.embeddings, list) else side.embeddings
        emb.weight = _numpy(embed.embedding.weight)
        side.scale_embeddings = True  # sqrt(d) E[w]
        side.position_encodings.encodings = _numpy(position_table(embed))  # (max_positions, d)
    for layer, layer_spec in zip(enc, spec.encoder.layer):
        _set_self_attention(layer_spec.self_attention, layer.self_attn, layer.add_norm_1.norm)
        _set_ffn(layer_spec.ffn, layer.ffn, layer.add_norm_2.norm)
    for layer, layer_spec in zip(dec, spec.decoder.layer):
        _set_self_attention(layer_spec.self_attention, layer.self_attn, layer.add_norm_1.norm)
        _set_cross_attention(layer_spec.attention, layer.cross_attn, layer.add_norm_2.norm)
        _set_ffn(layer_spec.ffn, layer.ffn, layer.add_norm_3.norm)
    if pre_norm:
        _set_norm(spec.encoder.layer_norm, model.encoder.norm)
        _set_norm(spec.decoder.layer_norm, model.decoder_norm)
    _set_linear(spec.decoder.projection, model.generator.weight, model.generator.bias)
    spec.register_source_vocabulary(_vocabulary(tokenizers.src, "source"))
    spec.register_target_vocabulary(_vocabulary(tokenizers.tgt, "target"))
    config = spec.config
    config.unk_token, config.bos_token, config.eos_token = SPECIALS[UNK], SPECIALS[SOS], SPECIALS[EOS]
    config.decoder_start_token = SPECIALS[SOS]
    config.layer_norm_epsilon = float(enc[0].add_norm_1.norm.eps)
    return spec


def _weight_specs(spec):
    """Every layer spec of ``spec`` whose weight CTranslate2 may store in int8: linear layers, embeddings."""
    sides = (spec.encoder, spec.decoder)
    for side in sides:
        yield from side.embeddings if isinstance(side.embeddings, list) else [side.embeddings]
        for layer in side.layer:
            attentions = [layer.self_attention] + ([layer.attention] if side is spec.decoder else [])
            for attention in attentions:
                yield from attention.linear
            yield layer.ffn.linear_0
            yield layer.ffn.linear_1
    yield spec.decoder.projection


def _quantize_rows(weight: np.ndarray, top: int):
    """Symmetric per-row int8 weights in [-top, top] and their scales: Q = rint(W s), s = top / max|W_j|."""
    from ctranslate2.specs.model_spec import NumpyVariable

    amax = np.abs(weight).max(axis=1)
    amax[amax == 0] = top
    scale = (np.float32(top) / amax).astype(np.float32)
    q = np.rint(weight * scale[:, None]).astype(np.int8)
    return NumpyVariable(q), NumpyVariable(scale)


def export_ctranslate2(model: nn.Module, tokenizers: TokenizerPair, out: str | Path, *,
                       quantization: str = "fp32") -> Path:
    """Write ``model`` as a CTranslate2 model folder ``out`` (weights stored in ``quantization``).

    Also writes ``seqlab.json`` (what was exported: max_positions, quantization).

    Raises:
        SeqlabError: unknown quantization, a model that is not a Transformer, no ctranslate2.
    """
    if quantization not in QUANTIZATIONS:
        raise SeqlabError(f"--quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    spec = transformer_spec(model, tokenizers)
    spec.validate()
    weighted = list(_weight_specs(spec))
    floats = {id(s): s.weight.numpy().copy() for s in weighted if not isinstance(s.weight, str)}
    spec.optimize(quantization=QUANTIZATIONS[quantization])
    if quantization == "int8":
        for s in weighted:
            if id(s) in floats and not isinstance(s.weight, str) and s.weight.dtype == "int8":
                s.weight, s.weight_scale = _quantize_rows(floats[id(s)], INT8_WEIGHT_MAX)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec.save(str(out))
    info = {"format": "ctranslate2", "quantization": quantization, "max_positions": int(model.max_positions)}
    if quantization == "int8":
        info["int8_weight_max"] = INT8_WEIGHT_MAX
    (out / "seqlab.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out


class CTranslate2Engine:
    """Decode seqlab token ids through an exported CTranslate2 model (see the module docstring).

    Args:
        path: folder written by :func:`export_ctranslate2`.
        tokenizers: the run's tokenizers (their tokens are the model's vocabulary).
        precision: ``fp32`` or ``int8`` (the compute type; int8 quantizes an fp32 export on load).
        threads: CPU threads (default: ``torch.get_num_threads()``).
    """

    def __init__(self, path: str | Path, tokenizers: TokenizerPair, *, precision: str = "fp32",
                 threads: int | None = None):
        ct2 = import_ctranslate2()
        if precision not in QUANTIZATIONS:
            raise SeqlabError(f"the ctranslate2 engine runs in {' or '.join(QUANTIZATIONS)}, got {precision!r}")
        path = Path(path)
        info_path = path / "seqlab.json"
        if not info_path.is_file():
            raise SeqlabError(f"{path}: not a CTranslate2 model exported by seqlab (no seqlab.json)")
        self.max_positions = int(json.loads(info_path.read_text(encoding="utf-8"))["max_positions"])
        self.translator = ct2.Translator(str(path), device="cpu", compute_type=QUANTIZATIONS[precision],
                                         intra_threads=threads or torch.get_num_threads())
        self.src_tokens = [tokenizers.src.id_to_token(i) for i in range(tokenizers.src.vocab_size)]
        self.tgt_ids = {tokenizers.tgt.id_to_token(i): i for i in range(tokenizers.tgt.vocab_size)}

    def translate_ids(self, src_ids: list[list[int]], settings: DecodeConfig, *, batch_size: int = 64) -> DecodeOutput:
        """Like :func:`seqlab.decoding.generate.translate_batch`: one entry per input, in input order.

        Greedy or beam search under ``settings`` (beam, length penalty, n-best, ``min_length`` and the
        length limits; :func:`seqlab.export.engines.check_settings` refuses the other settings).
        """
        limits = [self._limit(len(ids), settings) if ids else 0 for ids in src_ids]
        greedy = not uses_beam(settings)
        return self.search(src_ids, limits, beam=1 if greedy else settings.beam,
                           n_best=1 if greedy else settings.n_best, length_penalty=settings.length_penalty,
                           min_length=settings.min_length, batch_size=batch_size)

    def search(self, src_ids: list[list[int]], limits: list[int], *, beam: int, n_best: int = 1,
               length_penalty: float = 0.0, min_length: int = 0, batch_size: int = 64) -> DecodeOutput:
        """CTranslate2's search with ``limits[i]`` decoder steps for source i (``<eos>`` included)
        and no ``<eos>`` before ``min_length`` tokens; beam 1 with n_best 1 is greedy search."""
        n = len(src_ids)
        tokens: list = [[] for _ in range(n)]
        scores: list = [0.0] * n
        nbest: list = [[([], 0.0)] for _ in range(n)]
        by_limit: dict[int, list[int]] = defaultdict(list)
        for i, ids in enumerate(src_ids):
            if ids:
                by_limit[limits[i]].append(i)
        greedy = beam == 1 and n_best == 1
        for limit, index in by_limit.items():
            results = self.translator.translate_batch(
                [[self.src_tokens[t] for t in src_ids[i]] for i in index], max_batch_size=batch_size,
                beam_size=beam, num_hypotheses=1 if greedy else beam,
                length_penalty=0.0 if greedy else _NO_PENALTY, max_decoding_length=limit,
                min_decoding_length=min_length, max_input_length=0,
                suppress_sequences=[[SPECIALS[0]], [SPECIALS[SOS]]], return_end_token=True, return_scores=True)
            for i, result in zip(index, results):
                ranked = self._rank(result, length_penalty, greedy)
                tokens[i], scores[i] = ranked[0][1], ranked[0][2]
                nbest[i] = [(toks, normalised) for normalised, toks, _ in ranked[:n_best]]
        return DecodeOutput(tokens=tokens, scores=scores, nbest=nbest if n_best > 1 else None)

    def _limit(self, length: int, settings: DecodeConfig) -> int:
        src = torch.ones(1, length, dtype=torch.long)  # any non-<pad> ids: only the length counts
        return int(output_limits(src, ratio=settings.max_len_ratio, offset=settings.max_len_offset,
                                 max_new_tokens=settings.max_new_tokens, limit=self.max_positions)[0])

    def _rank(self, result, alpha: float, greedy: bool) -> list[tuple[float, list[int], float]]:
        """(normalised score, ids without <eos>, raw score) per hypothesis, best first."""
        ranked = []
        for hyp, raw in zip(result.hypotheses, result.scores):
            ids = [self.tgt_ids[t] for t in hyp]
            steps = len(ids)  # decoder steps, <eos> included when the hypothesis ended with it
            if ids and ids[-1] == EOS:
                ids = ids[:-1]
            ranked.append((raw if greedy else raw / gnmt_length_penalty(steps, alpha), ids, raw))
        return sorted(ranked, key=lambda h: h[0], reverse=True)
