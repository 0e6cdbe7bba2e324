"""Sequence classification (sequence -> vector -> class): an encoder, a pooling and a linear head.

    h_1 ... h_T, mask = encoder(x_1 ... x_T)          Transformer or recurrent encoder
    c                 = pool(h, mask)                   mean / first / final / attention
    p(y | x)          = softmax(W_o dropout(c) + b_o)   C classes (binary is C = 2)

The encoder is any module with the call ``encoder(tokens (B, T)) -> (h (B, T, d), mask (B, T))``;
the pooling any module ``pool(h, mask) -> (B, d)`` (:mod:`seqlab.nn.pooling`). The classifier
never asks which it holds, so every combination trains, evaluates and classifies through the same
code. :class:`RecurrentTokenEncoder` is the recurrent encoder (embeddings and a (bi)directional
RNN/LSTM/GRU from :func:`seqlab.nn.cells.make_recurrent`); the Transformer encoder is the same
stack the encoder-decoder Transformer uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from torch import Tensor, nn

from seqlab.config import at_least, probability
from seqlab.errors import ConfigError
from seqlab.models.base import padding_mask
from seqlab.nn.cells import make_recurrent
from seqlab.nn.dropout import Dropout
from seqlab.nn.embeddings import init_embedding_from
from seqlab.nn.init import init_weights
from seqlab.nn.linear import Linear
from seqlab.nn.pooling import build_pooling
from seqlab.nn.positional import LearnedPositions, PositionalEmbedding, SinusoidalPositions
from seqlab.text.specials import PAD

if TYPE_CHECKING:
    from seqlab.config import ExperimentConfig

__all__ = [
    "RecurrentClassifierConfig",
    "RecurrentTokenEncoder",
    "SequenceClassifier",
    "TransformerClassifierConfig",
    "build_classifier",
]


@dataclass
class TransformerClassifierConfig:
    """A Transformer encoder (Vaswani et al. 2017) pooled into one vector, then a linear head."""

    type: Literal["transformer"] = "transformer"
    pooling: Literal["mean", "first"] = "mean"
    """``mean`` of the real positions, or ``first``: the state of the ``<sos>`` token every input
    starts with (a classification token, as BERT's ``[CLS]``)."""
    layers: int = at_least(1, 2)
    d_model: int = at_least(1, 128)
    heads: int = at_least(1, 4)
    ffn: int = at_least(1, 256)
    dropout: float = probability(0.1, one=False)
    """On embeddings and sublayers, and on the pooled vector before the head."""
    attention_dropout: float = probability(0.0, one=False)
    norm: Literal["post", "pre"] = "pre"
    positions: Literal["sinusoidal", "learned"] = "sinusoidal"
    max_positions: int = at_least(1, 512)
    init: Literal["xavier", "kaiming", "normal"] = "xavier"

    @property
    def width(self) -> int:
        return self.d_model

    def check(self, cfg: ExperimentConfig) -> None:
        if self.d_model % self.heads:
            raise ConfigError("model.heads", f"d_model={self.d_model} must be divisible by heads={self.heads}")
        _check_common(self)


@dataclass
class RecurrentClassifierConfig:
    """A (bi)directional RNN/LSTM/GRU encoder pooled into one vector, then a linear head."""

    type: Literal["rnn", "lstm", "gru"] = "lstm"
    pooling: Literal["final", "attention", "mean"] = "attention"
    """``final``: the last state of each direction; ``attention``: additive attention pooling
    (:class:`~seqlab.nn.pooling.AttentionPooling`); ``mean`` of the states."""
    layers: int = at_least(1, 1)
    embedding: int = at_least(1, 128)
    hidden: int = at_least(1, 128)
    """H per direction."""
    bidirectional: bool = True
    dropout: float = probability(0.3, one=False)
    """On embeddings, between layers and on the pooled vector before the head."""
    attention_size: int | None = None
    """Rows of W in attention pooling (default: the state size)."""
    cells: Literal["fused", "explicit"] = "fused"
    gru_reset: Literal["after", "before"] = "after"
    max_positions: int = at_least(1, 1024)
    init: Literal["xavier", "kaiming", "uniform"] = "xavier"
    recurrent_init: Literal["orthogonal", "same"] = "orthogonal"
    embeddings_from: str | None = None
    """word2vec text file (``word v1 v2 ...``) to initialise the word embeddings from."""

    @property
    def width(self) -> int:
        return self.hidden

    def check(self, cfg: ExperimentConfig) -> None:
        if self.cells == "fused" and self.type == "gru" and self.gru_reset == "before":
            raise ConfigError("model.gru_reset", "'before' (Cho et al.) has no fused kernel; set model.cells: "
                                                 "explicit or model.gru_reset: after")
        _check_common(self)


def _check_common(m: TransformerClassifierConfig | RecurrentClassifierConfig) -> None:
    for name in ("layers", "max_positions"):
        if getattr(m, name) < 1:
            raise ConfigError(f"model.{name}", "must be at least 1")
    if not 0.0 <= m.dropout < 1.0:
        raise ConfigError("model.dropout", f"must be in [0, 1), got {m.dropout}")


class RecurrentTokenEncoder(nn.Module):
    """Embeddings and a (bi)directional multi-layer recurrent layer: x -> h_1 ... h_T.

    Args:
        embedding: token embedding (V, E).
        kind: ``"rnn"``, ``"lstm"`` or ``"gru"``. hidden: H per direction. layers: L.
        bidirectional: states are [->h_t; <-h_t] (2H).
        dropout: on the embeddings and between layers.
        cells, gru_reset: see :func:`seqlab.nn.cells.make_recurrent`.
    """

    def __init__(self, embedding: nn.Embedding, *, kind: str, hidden: int, layers: int, bidirectional: bool,
                 dropout: float, cells: str = "fused", gru_reset: str = "after"):
        super().__init__()
        self.embedding = embedding
        self.dropout = Dropout(dropout)
        self.rnn = make_recurrent(kind, embedding.embedding_dim, hidden, num_layers=layers,
                                  bidirectional=bidirectional, dropout=dropout, cells=cells, gru_reset=gru_reset)
        self.bidirectional = bidirectional
        self.output_size = hidden * (2 if bidirectional else 1)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T) ids, right-padded -> states (B, T, D*H) (zero at padding) and mask (B, T)."""
        mask = padding_mask(tokens)
        lengths = mask.sum(dim=1).clamp(min=1)
        h, _ = self.rnn(self.dropout(self.embedding(tokens)), lengths)  # (B, T, D*H)
        return h, mask


class SequenceClassifier(nn.Module):
    """Encoder, pooling and a linear head over C classes.

    Args:
        encoder: ``encoder(tokens) -> (h (B, T, d), mask (B, T))``.
        pooling: ``pooling(h, mask) -> (B, d)``.
        head: the linear map d -> C.
        dropout: on the pooled vector c, before the head.
        max_positions: the longest input the encoder accepts, in tokens.
    """

    def __init__(self, *, encoder: nn.Module, pooling: nn.Module, head: nn.Linear, dropout: float,
                 max_positions: int):
        super().__init__()
        self.encoder, self.pooling, self.head = encoder, pooling, head
        self.dropout = Dropout(dropout)
        self.num_classes = head.out_features
        self.max_positions = max_positions

    def pooled(self, tokens: Tensor) -> Tensor:
        """(B, T) ids -> (B, d) the sentence vector c."""
        h, mask = self.encoder(tokens)  # h (B, T, d); mask (B, T), or (B, 1, 1, T) from attention encoders
        return self.pooling(h, mask.reshape(h.shape[:2]))  # (B, T)

    def forward(self, tokens: Tensor) -> Tensor:
        """(B, T) ids, right-padded with ``<pad>`` -> (B, C) logits z = W_o c + b_o."""
        return self.head(self.dropout(self.pooled(tokens)))


def build_classifier(cfg: TransformerClassifierConfig | RecurrentClassifierConfig, vocab_size: int,
                     num_classes: int, *, vocab: Sequence[str] | None = None) -> SequenceClassifier:
    """An untrained :class:`SequenceClassifier` for the ``model`` section ``cfg``.

    Args:
        cfg: the model config.
        vocab_size: V, from the trained tokenizer.
        num_classes: C.
        vocab: the token of every id, needed only for ``embeddings_from``.
    """
    if isinstance(cfg, TransformerClassifierConfig):
        encoder, d = _transformer_encoder(cfg, vocab_size), cfg.d_model
        pooling = build_pooling(cfg.pooling, d=d)
    else:
        embedding = nn.Embedding(vocab_size, cfg.embedding, padding_idx=PAD)
        encoder = RecurrentTokenEncoder(embedding, kind=cfg.type, hidden=cfg.hidden, layers=cfg.layers,
                                        bidirectional=cfg.bidirectional, dropout=cfg.dropout, cells=cfg.cells,
                                        gru_reset=cfg.gru_reset)
        d = encoder.output_size
        pooling = build_pooling(cfg.pooling, d=d, bidirectional=cfg.bidirectional, attention_size=cfg.attention_size)
    model = SequenceClassifier(encoder=encoder, pooling=pooling, head=Linear(d, num_classes), dropout=cfg.dropout,
                               max_positions=cfg.max_positions)
    if isinstance(cfg, RecurrentClassifierConfig):
        init_weights(model, cfg.init, cfg.recurrent_init)
        if cfg.embeddings_from is not None:
            if vocab is None:
                raise ConfigError("model.embeddings_from", "needs the vocabulary: pass vocab= to build_classifier")
            init_embedding_from(encoder.embedding, list(vocab), cfg.embeddings_from)
    return model


def _transformer_encoder(cfg: TransformerClassifierConfig, vocab_size: int) -> nn.Module:
    """The encoder stack of the encoder-decoder Transformer, initialised as it is there."""
    from seqlab.models.transformer import _init_parameters
    from seqlab.nn.transformer_layers import EncoderLayer, TransformerEncoder

    d = cfg.d_model
    positions = (SinusoidalPositions if cfg.positions == "sinusoidal" else LearnedPositions)(cfg.max_positions, d)
    layer_args = dict(dropout=cfg.dropout, attention_dropout=cfg.attention_dropout, pre_norm=cfg.norm == "pre")
    encoder = TransformerEncoder(
        embed=PositionalEmbedding(nn.Embedding(vocab_size, d, padding_idx=PAD), positions, dropout=cfg.dropout),
        layers=[EncoderLayer(d, cfg.heads, cfg.ffn, **layer_args) for _ in range(cfg.layers)],
        pre_norm=cfg.norm == "pre",
    )
    _init_parameters(encoder, cfg.init, d)
    return encoder
