"""A decoder-only Transformer language model (GPT: Radford et al. 2018, 2019).

    h_0 = E[x_1 .. x_T] + P                                  token + position embeddings
    h_l = Block_l(h_{l-1})      l = 1 .. N                   masked self-attention + FFN
    p(x_{t+1} | x_<=t) = softmax(Norm(h_N)_t W_out)          W_out = E^T when tied

Each block is :class:`~seqlab.nn.transformer_layers.EncoderLayer` run under the causal mask
(``forward_causal``): a decoder layer without cross-attention. Generation keeps a key/value
cache per layer, so a step costs one position, not the whole prefix;
``tests/models/test_gpt.py`` holds cached step-by-step logits equal to the full forward pass.

Prompts of unequal lengths share a batch by left-padding: ``start`` takes the prefix right-padded,
as every :class:`~seqlab.models.base.LanguageModel` does, and shifts row b right by its p_b
``<pad>`` so that all rows end in the same column and the next token is decoded in one column
for all. Row b's real tokens then sit at positions 0, 1, ... (its positions are shifted back by
p_b) and a key mask, kept in the state and grown by one real column per step, hides the padding:

    query i may attend key j  iff  j <= i  and  (key j is real  or  j == i)

(a padding query attends to itself only, so its softmax has one finite entry; its output is
never read). A row decodes as it would alone, so one decoding implementation serves every batch.

The token embedding is added unscaled and drawn from N(0, 0.02), as in GPT-2
(``model.embedding_scale: none``, the default). The encoder-decoder's sqrt(d) E with E ~ N(0, 1/d)
(``sqrt_d``) gives every token embedding norm sqrt(d); with the output layer tied to E, the first
logits are then Norm(h_0) . E[v], largest for v = the input token itself, and the model starts at
about 11 nats/char on Shakespeare instead of ln V (4.5) and stays behind: 2.48 against 2.28 nats/char
on Macbeth after 500 steps of nanoGPT's CPU recipe (same seed and data, one thread, 2026-12-02).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from seqlab.config import GPTConfig
from seqlab.models.base import DecoderState, LanguageModel
from seqlab.models.transformer import _init_parameters  # the same initialisation as the encoder-decoder
from seqlab.nn.linear import Linear
from seqlab.nn.positional import LearnedPositions, PositionalEmbedding, SinusoidalPositions
from seqlab.nn.transformer_layers import EncoderLayer
from seqlab.text.specials import PAD

__all__ = ["GPT", "GPTState", "build_gpt"]


@dataclass
class GPTState(DecoderState):
    """Per layer the keys/values of the t positions read so far, (B, h, t, d_k); batch on dim 0."""

    k: list[Tensor] = field(default_factory=list)
    v: list[Tensor] = field(default_factory=list)
    step: int = 0
    pad: Tensor | None = None
    """(B,) <pad> columns before each row's first token; None when no row is padded."""
    real: Tensor | None = None
    """(B, t) True at the real (not padding) cached columns; None when no row is padded."""


class GPT(LanguageModel):
    """Decoder-only Transformer built from already-constructed parts.

    Args:
        embed: token + position :class:`PositionalEmbedding`.
        layers: N :class:`EncoderLayer`, run causally.
        generator: the output projection d_model -> V (weight may be tied to the embedding).
        pre_norm: layers are pre-norm, so the stack ends with a LayerNorm.
    """

    def __init__(self, *, embed: PositionalEmbedding, layers: list[EncoderLayer], generator: nn.Linear,
                 pre_norm: bool):
        super().__init__()
        self.embed = embed
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(generator.in_features) if pre_norm else nn.Identity()
        self.generator = generator
        self.vocab_size = generator.out_features
        self.max_positions = embed.max_positions

    def _run(self, tokens: Tensor, state: GPTState | None, *, pad: Tensor | None = None,
             real: Tensor | None = None) -> tuple[Tensor, GPTState]:
        """(B, T) ids after the state's t positions -> (B, T, V) logits and the state after them.

        ``pad`` (B,) and ``real`` (B, t + T) describe left-padded rows (see the module docstring).
        """
        step = 0 if state is None else state.step
        T = tokens.size(1)
        h = self.embed(tokens, offset=step, shift=pad)  # (B, T, d)
        new = GPTState(step=step + T, group=1 if state is None else state.group, pad=pad, real=real)
        mask = None
        if real is not None:
            query = torch.arange(step, step + T, device=tokens.device)[:, None]  # (T, 1) column of each query
            key = torch.arange(step + T, device=tokens.device)[None, :]  # (1, t + T)
            mask = (key <= query) & (real[:, None, None, :] | (key == query))  # (B, 1, T, t + T)
        for i, layer in enumerate(self.layers):
            past_k, past_v = (None, None) if state is None else (state.k[i], state.v[i])
            h, (k, v) = layer.forward_causal(h, past_k, past_v, causal=state is None and mask is None, mask=mask)
            new.k.append(k)
            new.v.append(v)
        return self.generator(self.norm(h)), new

    def forward(self, tokens: Tensor) -> Tensor:
        """(B, T) ids -> (B, T, V) logits for the token after each position."""
        return self._run(tokens, None)[0]

    def start(self, prefix: Tensor) -> tuple[Tensor, GPTState]:
        """Read a (B, T) prefix, right-padded with ``<pad>`` when its rows differ in length.

        Returns:
            (B, V) logits for the token after each row's last token, and the state holding the
            cache (rows left-padded inside it: see the module docstring).

        Raises:
            ValueError: a row is empty or has ``<pad>`` before a real token.
        """
        B, T = prefix.shape
        is_real = prefix.ne(PAD)  # (B, T)
        lengths = is_real.sum(dim=1)  # (B,)
        columns = torch.arange(T, device=prefix.device)
        right_padded = is_real.eq(columns[None, :] < lengths[:, None]).all() & lengths.gt(0).all()
        if T == 0 or not bool(right_padded):  # one host read per prompt batch, not per step
            raise ValueError("GPT.start needs rows of at least one token, right-padded with <pad>")
        pad = T - lengths  # (B,)
        if not bool(pad.any()):
            logits, state = self._run(prefix, None)
            return logits[:, -1], state
        # row b moves p_b columns right: its p_b trailing <pad> wrap round to the front
        left = prefix.gather(1, (columns[None, :] - pad[:, None]) % T)  # (B, T)
        logits, state = self._run(left, None, pad=pad, real=left.ne(PAD))
        return logits[:, -1], state

    def decode_step(self, state: GPTState, y_prev: Tensor) -> tuple[Tensor, GPTState]:
        """Feed y_prev (B,) at position t; return (B, V) logits for position t + 1 and the new state."""
        real = None
        if state.real is not None:
            real = torch.cat([state.real, state.real.new_ones(state.real.size(0), 1)], dim=1)  # (B, t + 1)
        logits, new = self._run(y_prev[:, None], state, pad=state.pad, real=real)
        return logits[:, 0], new


def build_gpt(cfg: GPTConfig, vocab_size: int) -> GPT:
    """Wire a :class:`GPT` from its config."""
    d = cfg.d_model
    token = nn.Embedding(vocab_size, d, padding_idx=PAD)
    positions = (SinusoidalPositions if cfg.positions == "sinusoidal" else LearnedPositions)(cfg.max_positions, d)
    pre_norm = cfg.norm == "pre"
    unscaled = cfg.embedding_scale == "none"
    model = GPT(
        embed=PositionalEmbedding(token, positions, dropout=cfg.dropout, scale=1.0 if unscaled else None),
        layers=[EncoderLayer(d, cfg.heads, cfg.ffn, dropout=cfg.dropout, attention_dropout=cfg.attention_dropout,
                             pre_norm=pre_norm) for _ in range(cfg.layers)],
        generator=Linear(d, vocab_size, bias=False),
        pre_norm=pre_norm,
    )
    _init_parameters(model, cfg.init, d)
    if unscaled:
        with torch.no_grad():
            token.weight.normal_(0.0, 0.02)  # GPT-2's embedding initialisation
            token.weight[PAD].zero_()
    if cfg.tie_output:
        model.generator.weight = token.weight
    return model
