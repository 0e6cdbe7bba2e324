"""The encoder-decoder Transformer (Vaswani et al. 2017, "Attention Is All You Need").

    memory = Encoder(sqrt(d) E_src[x] + PE)                         N x EncoderLayer
    h      = Decoder(sqrt(d) E_tgt[y_<t] + PE, memory)              N x DecoderLayer
    p(y_t | y_<t, x) = softmax(h_t W_out)      W_out = E_tgt^T when tied

Decoding keeps a key/value cache: each decoder layer's self-attention keys and values of the
positions already generated, and the cross-attention projections of the encoder output, computed
once. ``tests/models/test_transformer.py`` holds cached step-by-step logits equal to the parallel
forward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn

from seqlab.config import TransformerConfig
from seqlab.models.base import DecoderState, Seq2SeqModel
from seqlab.nn.linear import Linear
from seqlab.nn.positional import (
    LearnedPositions,
    NoPositions,
    PositionalEmbedding,
    SinusoidalPositions,
)
from seqlab.nn.transformer_layers import DecoderLayer, EncoderLayer, TransformerEncoder
from seqlab.text.specials import PAD

__all__ = ["TransformerSeq2Seq", "TransformerState", "build_transformer"]


@dataclass
class TransformerState(DecoderState):
    """Decoder state: key/value caches and the encoder side, batch on dim 0.

    Attributes:
        memory_mask: (B_src, 1, 1, S) bool, True at real source tokens.
        cross_k, cross_v: per layer (B_src, h, S, d_k), projections of the encoder output: one row
            per source sentence, shared by ``group`` rows (the beams of that sentence).
        self_k, self_v: per layer (B, h, t, d_k), the self-attention cache of the t steps so far.
        step: t, the number of target positions already consumed.
    """

    per_source: ClassVar[tuple[str, ...]] = ("memory_mask", "cross_k", "cross_v")

    memory_mask: Tensor | None = None
    cross_k: list[Tensor] = field(default_factory=list)
    cross_v: list[Tensor] = field(default_factory=list)
    self_k: list[Tensor] = field(default_factory=list)
    self_v: list[Tensor] = field(default_factory=list)
    step: int = 0


class TransformerSeq2Seq(Seq2SeqModel):
    """Encoder-decoder Transformer built from already-constructed parts.

    Args:
        encoder: the :class:`TransformerEncoder` (source embedding, N encoder layers).
        tgt_embed: target :class:`PositionalEmbedding`.
        decoder_layers: N :class:`DecoderLayer`.
        generator: the output projection d_model -> V (weight may be tied to the target embedding).
        pre_norm: layers are pre-norm, so the decoder ends with a LayerNorm.
    """

    def __init__(self, *, encoder: TransformerEncoder, tgt_embed: PositionalEmbedding,
                 decoder_layers: list[DecoderLayer], generator: nn.Linear, pre_norm: bool):
        super().__init__()
        self.encoder, self.tgt_embed = encoder, tgt_embed
        self.decoder_layers = nn.ModuleList(decoder_layers)
        d = generator.in_features
        self.decoder_norm = nn.LayerNorm(d) if pre_norm else nn.Identity()
        self.generator = generator
        self.src_vocab_size = encoder.embed.embedding.num_embeddings
        self.tgt_vocab_size = generator.out_features
        self.max_positions = min(encoder.embed.max_positions, tgt_embed.max_positions)

    @staticmethod
    def upgrade_state_dict(state_dict: dict, prefix: str) -> None:
        """Rename, in place, the weights of run folders written before the encoder was a module of
        its own (``src_embed.*``, ``encoder_layers.*``, ``encoder_norm.*``)."""
        renames = {"src_embed.": "encoder.embed.", "encoder_layers.": "encoder.layers.", "encoder_norm.": "encoder.norm."}
        for key in list(state_dict):
            for old, new in renames.items():
                if key.startswith(prefix + old):
                    state_dict[prefix + new + key[len(prefix + old):]] = state_dict.pop(key)

    # ---------------------------------------------------------------- encoder

    def run_encoder(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """(B, S) ids -> memory (B, S, d) and its mask (B, 1, 1, S)."""
        return self.encoder(src)

    # ---------------------------------------------------------------- teacher forcing

    def _decode_all(self, memory: Tensor, memory_mask: Tensor, tgt_in: Tensor,
                    need_weights: bool) -> tuple[Tensor, Tensor | None]:
        """All target positions in parallel under the causal mask -> (B, T, d), last cross weights."""
        y = self.tgt_embed(tgt_in)
        attn = None
        last = len(self.decoder_layers) - 1
        for i, layer in enumerate(self.decoder_layers):
            cross_k, cross_v = layer.cross_attn.project_kv(memory, memory)
            y, attn, _ = layer(y, None, None, cross_k, cross_v, memory_mask, causal=True,
                               need_weights=need_weights and i == last)
        return self.decoder_norm(y), attn

    def features(self, src: Tensor, tgt_in: Tensor, *, teacher_forcing: float = 1.0) -> Tensor:
        """(B, S), (B, T) -> (B, T, d) decoder outputs with teacher forcing (see :class:`Seq2SeqModel`)."""
        if teacher_forcing != 1.0:
            raise ValueError("the Transformer is trained with teacher forcing only (teacher_forcing=1.0)")
        memory, memory_mask = self.run_encoder(src)
        return self._decode_all(memory, memory_mask, tgt_in, need_weights=False)[0]

    @property
    def output_layer(self) -> nn.Linear:
        return self.generator

    def cross_attention(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """(B, T, S): the last decoder layer's cross-attention, averaged over heads."""
        memory, memory_mask = self.run_encoder(src)
        _, attn = self._decode_all(memory, memory_mask, tgt_in, need_weights=True)
        return attn.mean(dim=1)

    # ---------------------------------------------------------------- cached decoding

    def encode(self, src: Tensor) -> TransformerState:
        memory, memory_mask = self.run_encoder(src)
        state = TransformerState(memory_mask=memory_mask)
        for layer in self.decoder_layers:
            k, v = layer.cross_attn.project_kv(memory, memory)  # (B, h, S, d_k) views of (B, S, d)
            state.cross_k.append(k.contiguous())  # contiguous once here, not copied at every step
            state.cross_v.append(v.contiguous())
            state.self_k.append(k.new_zeros(k.size(0), k.size(1), 0, k.size(3)))
            state.self_v.append(v.new_zeros(v.size(0), v.size(1), 0, v.size(3)))
        return state

    def decode_step(self, state: TransformerState, y_prev: Tensor) -> tuple[Tensor, TransformerState]:
        """Feed y_{t-1}, (B,); extend each layer's cache by one position; return (B, V) logits.

        The last layer's cross-attention is computed explicitly so the weights (averaged over heads)
        are available as ``state.attention`` (B, S); for a single query row this costs no more
        than the fused kernel.
        """
        y = self.tgt_embed(y_prev[:, None], offset=state.step)  # (B, 1, d)
        new = TransformerState(memory_mask=state.memory_mask, cross_k=state.cross_k,
                               cross_v=state.cross_v, step=state.step + 1, group=state.group)
        last = len(self.decoder_layers) - 1
        attn = None
        for i, layer in enumerate(self.decoder_layers):
            y, attn, (self_k, self_v) = layer(y, state.self_k[i], state.self_v[i], state.cross_k[i],
                                              state.cross_v[i], state.memory_mask, causal=False,
                                              need_weights=i == last)
            new.self_k.append(self_k)  # (B, h, t, d_k): the cache extended by this step
            new.self_v.append(self_v)
        new.attention = attn.mean(dim=1)[:, 0, :]  # (B, S)
        return self.generator(self.decoder_norm(y))[:, 0, :], new


def _init_parameters(model: nn.Module, scheme: str, d_model: int) -> None:
    """Xavier/Glorot (the default), Kaiming/He or N(0, 0.02) for matrices; N(0, d^-1/2) for embeddings."""
    for name, p in model.named_parameters():
        if p.dim() < 2:
            continue
        if "embed" in name and "positions" not in name:
            nn.init.normal_(p, mean=0.0, std=d_model ** -0.5)
            with torch.no_grad():
                p[PAD].zero_()
        elif "positions" in name:
            continue
        elif scheme == "xavier" and name.endswith("W_qkv.weight"):
            for block in p.detach().chunk(3):  # W_Q, W_K, W_V: each d x d, as if stored apart
                nn.init.xavier_uniform_(block)
        elif scheme == "xavier":
            nn.init.xavier_uniform_(p)
        elif scheme == "kaiming":
            nn.init.kaiming_uniform_(p, a=math.sqrt(5) if "W_1" not in name else 0.0, nonlinearity="relu")
        else:
            nn.init.normal_(p, std=0.02)
    for name, p in model.named_parameters():
        if p.dim() == 1 and name.endswith("bias"):
            nn.init.zeros_(p)


def build_transformer(cfg: TransformerConfig, src_vocab_size: int, tgt_vocab_size: int) -> TransformerSeq2Seq:
    """Wire a :class:`TransformerSeq2Seq` from its config."""
    d = cfg.d_model
    if cfg.share_embeddings and src_vocab_size != tgt_vocab_size:
        raise ValueError("share_embeddings needs one vocabulary for source and target")
    src_tok = nn.Embedding(src_vocab_size, d, padding_idx=PAD)
    tgt_tok = src_tok if cfg.share_embeddings else nn.Embedding(tgt_vocab_size, d, padding_idx=PAD)

    def positions() -> nn.Module:
        cls = {"sinusoidal": SinusoidalPositions, "learned": LearnedPositions, "none": NoPositions}[cfg.positions]
        return cls(cfg.max_positions, d)

    pre_norm = cfg.norm == "pre"
    layer_args = dict(dropout=cfg.dropout, attention_dropout=cfg.attention_dropout, pre_norm=pre_norm,
                      residual=cfg.residual, layer_norm=cfg.norm != "none")
    n_dec = cfg.decoder_layers or cfg.layers
    generator = Linear(d, tgt_vocab_size, bias=False)
    encoder = TransformerEncoder(
        embed=PositionalEmbedding(src_tok, positions(), dropout=cfg.dropout),
        layers=[EncoderLayer(d, cfg.heads, cfg.ffn, **layer_args) for _ in range(cfg.layers)],
        pre_norm=pre_norm,
    )
    model = TransformerSeq2Seq(
        encoder=encoder,
        tgt_embed=PositionalEmbedding(tgt_tok, positions(), dropout=cfg.dropout),
        decoder_layers=[DecoderLayer(d, cfg.heads, cfg.ffn, **layer_args) for _ in range(n_dec)],
        generator=generator,
        pre_norm=pre_norm,
    )
    _init_parameters(model, cfg.init, d)
    if cfg.tie_output:
        model.generator.weight = tgt_tok.weight
    return model
