"""Recurrent encoder-decoder, with a fixed context vector or with attention.

Encoder: embeddings -> (bi)directional multi-layer RNN/LSTM/GRU over the source, giving states
h_1 ... h_S. A bidirectional encoder concatenates both directions, [->h_j; <-h_j] (2H), maps them to
H with a linear layer W_m for attention, and initialises decoder layer l with
s_0^l = tanh(W_init [->h_S^l; <-h_1^l] + b_init) (and likewise the LSTM cell state).

Decoder step i, from the previous target token y_{i-1}::

    x_i  = [E y_{i-1}; C; h~_{i-1}]             C: attention "none"; h~_{i-1}: input feeding
    s_i  = RNN(x_i, s_{i-1})                     (top layer of several)
    c_i  = C                                     attention "none" (Cho et al. 2014)
         = sum_j a_ij h_j                        attention dot / general / additive
    h~_i = tanh(W_c [c_i; s_i])                  attentional vector (Luong et al. 2015)
    p(y_i | y_<i, x) = softmax(W_y h~_i + b_y)

Without attention C is the encoder's final top-layer state: the whole source must pass through
this fixed-size bottleneck, which is the point of comparing it with attention. C enters every
decoder input and the output layer.

``features`` (and so ``forward``) with teacher forcing 1.0 and no input feeding runs all target steps through the
recurrent layer at once; otherwise it loops over :meth:`RecurrentSeq2Seq.decode_step`, feeding the
gold token with probability ``teacher_forcing`` and the model's argmax otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqlab.config import RecurrentConfig
from seqlab.errors import ConfigError
from seqlab.models.base import DecoderState, Seq2SeqModel, padding_mask
from seqlab.nn.cells import make_recurrent, state_to_batch_first, state_to_layer_first
from seqlab.nn.dropout import Dropout
from seqlab.nn.embeddings import init_embeddings_from_file
from seqlab.nn.init import init_weights
from seqlab.nn.linear import Linear
from seqlab.nn.recurrent_attention import build_attention
from seqlab.text.specials import PAD

__all__ = [
    "RecurrentDecoderState",
    "RecurrentEncoder",
    "RecurrentSeq2Seq",
    "build_recurrent",
    "check_recurrent_config",
]


@dataclass
class RecurrentDecoderState(DecoderState):
    """Decoder state; every tensor has the batch on dim 0 (so :meth:`select` reorders beams).

    Attributes:
        h: (B, L, H) s_{i-1} of every decoder layer.
        c: (B, L, H) LSTM cell states C_{i-1}, else None.
        memory: (B, S, H) encoder states h_j (None without attention).
        keys: (B, S, K) the attention's precomputed W h_j (None without attention).
        src_mask: (B, S) True at real source tokens.
        context: (B, H) fixed context vector C (attention "none" only).
        feed: (B, H) previous attentional vector h~_{i-1} (input feeding only).
    """

    h: Tensor | None = None
    c: Tensor | None = None
    memory: Tensor | None = None
    keys: Tensor | None = None
    src_mask: Tensor | None = None
    context: Tensor | None = None
    feed: Tensor | None = None


class RecurrentEncoder(nn.Module):
    """Embeddings and a (bi)directional recurrent layer; bridges to the decoder's size H.

    Args:
        embedding: source embedding (V_s, E).
        kind: ``"rnn"``, ``"lstm"`` or ``"gru"``. hidden: H per direction. layers: L.
        bidirectional: two directions, concatenated then projected to H.
        dropout: on embeddings and between layers. cells, gru_reset, nonlinearity: see
            :func:`make_recurrent`.
        project_memory: map bidirectional outputs to H with W_m (needed only for attention).
    """

    def __init__(
        self,
        embedding: nn.Embedding,
        *,
        kind: str,
        hidden: int,
        layers: int,
        bidirectional: bool,
        dropout: float,
        cells: str,
        gru_reset: str,
        nonlinearity: str = "tanh",
        project_memory: bool = True,
    ):
        super().__init__()
        self.embedding, self.kind, self.bidirectional = embedding, kind, bidirectional
        self.dropout = Dropout(dropout)
        self.rnn = make_recurrent(
            kind,
            embedding.embedding_dim,
            hidden,
            num_layers=layers,
            bidirectional=bidirectional,
            dropout=dropout,
            cells=cells,
            gru_reset=gru_reset,
            nonlinearity=nonlinearity,
        )
        self.W_m = nn.Linear(2 * hidden, hidden, bias=False) if bidirectional and project_memory else None
        if bidirectional:
            self.W_init = nn.Linear(2 * hidden, hidden)
            self.W_init_c = nn.Linear(2 * hidden, hidden) if kind == "lstm" else None

    def forward(self, src: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """Encode (B, S) source ids.

        Returns:
            memory (B, S, H) h_j (2H without ``project_memory``), mask (B, S) True at real tokens,
            initial decoder states h (B, L, H) and C (B, L, H) or None.
        """
        mask = padding_mask(src)
        lengths = mask.sum(dim=1).clamp(min=1)
        outputs, final = self.rnn(self.dropout(self.embedding(src)), lengths)  # (B, S, D*H)
        h, C = state_to_batch_first(final)  # (B, L*D, H)
        if not self.bidirectional:
            return outputs, mask, h, C
        memory = outputs if self.W_m is None else self.W_m(outputs)  # (B, S, H)
        h = torch.tanh(self.W_init(_join_directions(h)))  # (B, L, H)
        if C is not None:
            C = torch.tanh(self.W_init_c(_join_directions(C)))
        return memory, mask, h, C


def _join_directions(x: Tensor) -> Tensor:
    """(B, L*2, H) with directions interleaved per layer -> (B, L, 2H) [forward; backward]."""
    B, LD, H = x.shape
    return x.reshape(B, LD // 2, 2 * H)  # (B, L, 2H)


class RecurrentSeq2Seq(Seq2SeqModel):
    """Recurrent encoder-decoder; see the module docstring for the equations.

    Args:
        encoder: a :class:`RecurrentEncoder` whose outputs have size ``hidden``.
        tgt_embedding: target embedding (V_t, E).
        kind: cell type of the decoder. hidden: H. layers: L.
        attention: ``"none"``, ``"dot"``, ``"general"`` or ``"additive"``.
        input_feeding: feed h~_{i-1} into step i.
        dropout: on target embeddings, between layers and on h~_i.
        cells, gru_reset, nonlinearity: see :func:`make_recurrent`.
        tie_output: W_y is the target embedding matrix (needs E == H).
        max_positions: longest sequence accepted.
    """

    def __init__(
        self,
        *,
        encoder: RecurrentEncoder,
        tgt_embedding: nn.Embedding,
        kind: str,
        hidden: int,
        layers: int,
        attention: str,
        input_feeding: bool,
        dropout: float,
        cells: str = "fused",
        gru_reset: str = "after",
        nonlinearity: str = "tanh",
        tie_output: bool = False,
        max_positions: int = 1024,
    ):
        super().__init__()
        self.src_vocab_size = encoder.embedding.num_embeddings
        self.tgt_vocab_size = tgt_embedding.num_embeddings
        self.max_positions = max_positions
        self.kind, self.hidden, self.attention_kind, self.input_feeding = kind, hidden, attention, input_feeding
        self.encoder, self.tgt_embedding = encoder, tgt_embedding
        self.dropout = Dropout(dropout)
        E = tgt_embedding.embedding_dim
        input_size = E + (hidden if attention == "none" else 0) + (hidden if input_feeding else 0)
        self.decoder_rnn = make_recurrent(
            kind, input_size, hidden, num_layers=layers, dropout=dropout, cells=cells, gru_reset=gru_reset,
            nonlinearity=nonlinearity,
        )
        self.attention = None if attention == "none" else build_attention(attention, hidden)
        self.W_c = Linear(2 * hidden, hidden, bias=False)
        self.W_y = Linear(hidden, self.tgt_vocab_size)
        if tie_output:
            if E != hidden:
                raise ConfigError("model.tie_output", f"needs model.embedding ({E}) == model.hidden ({hidden})")
            self.W_y.weight = tgt_embedding.weight

    # ------------------------------------------------------------------ interface

    def encode(self, src: Tensor) -> RecurrentDecoderState:
        memory, mask, h, C = self.encoder(src)
        state = RecurrentDecoderState(h=h, c=C, src_mask=mask)
        if self.attention is None:
            state.context = h[:, -1]  # (B, H) C: top layer's final state
        else:
            state.memory, state.keys = memory, self.attention.keys(memory)
        if self.input_feeding:
            state.feed = h.new_zeros(h.size(0), self.hidden)
        return state

    def decode_step(self, state: RecurrentDecoderState, y_prev: Tensor) -> tuple[Tensor, RecurrentDecoderState]:
        features, state = self._step(state, y_prev)
        return self.W_y(features), state

    def _step(self, state: RecurrentDecoderState, y_prev: Tensor) -> tuple[Tensor, RecurrentDecoderState]:
        """One decoder step: the output layer's input, dropout(h~_i) (B, H), and the new state."""
        x = self._decoder_inputs(y_prev[:, None], state, state.feed)  # (B, 1, I)
        s, final = self.decoder_rnn(x, None, state_to_layer_first(state.h, state.c))  # (B, 1, H)
        features, h_tilde, a = self._readout(s, state)
        h, C = state_to_batch_first(final)
        new = RecurrentDecoderState(
            attention=None if a is None else a[:, 0],
            h=h,
            c=C,
            memory=state.memory,
            keys=state.keys,
            src_mask=state.src_mask,
            context=state.context,
            feed=h_tilde[:, 0] if self.input_feeding else None,
        )
        return features[:, 0], new

    def features(self, src: Tensor, tgt_in: Tensor, *, teacher_forcing: float = 1.0) -> Tensor:
        """(B, T, H) dropout(h~_i) for every target step: the input of W_y.

        With teacher forcing 1.0 and no input feeding all steps run through the recurrent layer at
        once; otherwise step by step, feeding the gold token with probability ``teacher_forcing``
        and the argmax of W_y h~_{i-1} otherwise.
        """
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must be in [0, 1], got {teacher_forcing}")
        if teacher_forcing == 1.0 and not self.input_feeding:
            return self._parallel(src, tgt_in)[0]
        state = self.encode(src)
        y_prev, steps = tgt_in[:, 0], []
        for t in range(tgt_in.size(1)):
            features, state = self._step(state, y_prev)
            steps.append(features)
            if t + 1 < tgt_in.size(1):
                y_prev = self._next_input(tgt_in[:, t + 1], features, teacher_forcing)
        return torch.stack(steps, dim=1)  # (B, T, H)

    @property
    def output_layer(self) -> nn.Linear:
        return self.W_y

    def _next_input(self, gold: Tensor, features: Tensor, teacher_forcing: float) -> Tensor:
        """The gold token (B,) with probability ``teacher_forcing``, else the argmax of W_y ``features``."""
        if teacher_forcing == 1.0:
            return gold
        use_gold = torch.rand(gold.size(0), device=gold.device) < teacher_forcing  # (B,)
        return torch.where(use_gold, gold, self.W_y(features).argmax(dim=-1))

    def cross_attention(self, src: Tensor, tgt_in: Tensor) -> Tensor | None:
        if self.attention is None:
            return None
        if not self.input_feeding:
            return self._parallel(src, tgt_in)[1]
        return super().cross_attention(src, tgt_in)

    # ------------------------------------------------------------------ shared pieces

    def _decoder_inputs(self, y_prev: Tensor, state: RecurrentDecoderState, feed: Tensor | None) -> Tensor:
        """x_i = [E y_{i-1}; C; h~_{i-1}]. y_prev (B, T) -> (B, T, I)."""
        parts = [self.dropout(self.tgt_embedding(y_prev))]
        T = y_prev.size(1)
        if state.context is not None:
            parts.append(state.context[:, None].expand(-1, T, -1))
        if feed is not None:
            parts.append(feed[:, None].expand(-1, T, -1))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def _readout(self, s: Tensor, state: RecurrentDecoderState) -> tuple[Tensor, Tensor, Tensor | None]:
        """From top-layer states s (B, T, H): dropout(h~) (B, T, H), h~, weights (B, T, S) or None."""
        if self.attention is None:
            c, a = state.context[:, None].expand_as(s), None
        else:
            c, a = self.attention(s, state.memory, state.src_mask, state.keys)
        h_tilde = torch.tanh(self.W_c(torch.cat([c, s], dim=-1)))  # (B, T, H)
        return self.dropout(h_tilde), h_tilde, a

    def _parallel(self, src: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor | None]:
        """Teacher-forced features dropout(h~) and attention for all steps at once (no input feeding)."""
        state = self.encode(src)
        x = self._decoder_inputs(tgt_in, state, None)  # (B, T, I)
        s, _ = self.decoder_rnn(x, None, state_to_layer_first(state.h, state.c))  # (B, T, H)
        features, _, a = self._readout(s, state)
        return features, a


def check_recurrent_config(cfg: RecurrentConfig) -> None:
    """Reject combinations no recurrent model can build, with a :class:`ConfigError` naming the key."""
    if cfg.cells == "fused" and cfg.type == "gru" and cfg.gru_reset == "before":
        raise ConfigError(
            "model.gru_reset",
            "'before' (Cho et al.) has no fused kernel; set model.cells: explicit or model.gru_reset: after",
        )
    if cfg.nonlinearity != "tanh" and cfg.type != "rnn":
        raise ConfigError("model.nonlinearity", f"applies to type: rnn only; {cfg.type} cells have fixed activations")
    if cfg.tie_output and cfg.embedding != cfg.hidden:
        raise ConfigError(
            "model.tie_output", f"needs model.embedding ({cfg.embedding}) == model.hidden ({cfg.hidden})"
        )


def build_recurrent(
    cfg: RecurrentConfig,
    src_vocab_size: int,
    tgt_vocab_size: int,
    *,
    src_vocab: Sequence[str] | None = None,
    tgt_vocab: Sequence[str] | None = None,
) -> RecurrentSeq2Seq:
    """Wire a :class:`RecurrentSeq2Seq` from its config and initialise it.

    Args:
        cfg: the ``model`` section.
        src_vocab_size, tgt_vocab_size: vocabulary sizes.
        src_vocab: source tokens by id, needed when ``cfg.embeddings_from`` names a word2vec file;
            also used for the target when ``tgt_vocab`` is None and the sizes agree (joint).
        tgt_vocab: target tokens by id, for separate vocabularies.

    Raises:
        ConfigError: naming the key, for combinations that cannot be built.
    """
    check_recurrent_config(cfg)
    if cfg.share_embeddings and src_vocab_size != tgt_vocab_size:
        raise ConfigError(
            "model.share_embeddings", f"needs one vocabulary; got sizes {src_vocab_size} and {tgt_vocab_size}"
        )
    src_embedding = nn.Embedding(src_vocab_size, cfg.embedding, padding_idx=PAD)
    tgt_embedding = src_embedding
    if not cfg.share_embeddings:
        tgt_embedding = nn.Embedding(tgt_vocab_size, cfg.embedding, padding_idx=PAD)
    common = dict(
        kind=cfg.type,
        hidden=cfg.hidden,
        layers=cfg.layers,
        dropout=cfg.dropout,
        cells=cfg.cells,
        gru_reset=cfg.gru_reset,
        nonlinearity=cfg.nonlinearity,
    )
    encoder = RecurrentEncoder(
        src_embedding, bidirectional=cfg.bidirectional, project_memory=cfg.attention != "none", **common
    )
    model = RecurrentSeq2Seq(
        encoder=encoder,
        tgt_embedding=tgt_embedding,
        attention=cfg.attention,
        input_feeding=cfg.input_feeding,
        tie_output=cfg.tie_output,
        max_positions=cfg.max_positions,
        **common,
    )
    init_weights(model, cfg.init, cfg.recurrent_init)
    if cfg.embeddings_from is not None:
        init_embeddings_from_file(cfg.embeddings_from, src_embedding, tgt_embedding, src_vocab, tgt_vocab)
    return model
