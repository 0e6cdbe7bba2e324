"""Recurrent language model: predict the next token from the ones before it.

    h_t = RNN(E x_t, h_{t-1})                  (several layers of RNN/LSTM/GRU cells)
    y_t = W_y h_t + b_y,   p(x_{t+1} | x_<=t) = softmax(y_t)

The classic first example: trained on "hello", given h, e, l, l it predicts e, l, l, o — the
second "l" is followed by "l" after "e l" but by "o" after "l l", which only a model with memory
of the earlier characters can tell apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqlab.config import RecurrentConfig
from seqlab.errors import ConfigError
from seqlab.models.base import DecoderState, LanguageModel, padding_mask
from seqlab.models.recurrent import check_recurrent_config
from seqlab.nn.cells import make_recurrent, state_to_batch_first, state_to_layer_first
from seqlab.nn.dropout import Dropout
from seqlab.nn.embeddings import init_embedding_from, load_word2vec_text
from seqlab.nn.init import init_weights
from seqlab.text.specials import PAD

__all__ = ["RecurrentLM", "RecurrentLMState", "build_recurrent_lm"]


@dataclass
class RecurrentLMState(DecoderState):
    """h (B, L, H) of every layer and, for an LSTM, the cell states C (B, L, H); batch on dim 0."""

    h: Tensor | None = None
    c: Tensor | None = None


class RecurrentLM(LanguageModel):
    """Embeddings, a unidirectional multi-layer recurrent layer and the output layer W_y.

    Args:
        vocab_size: V.
        kind: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        embedding: E. hidden: H. layers: L.
        dropout: on embeddings, between layers and before W_y.
        cells, gru_reset: see :func:`seqlab.nn.cells.make_recurrent`.
        tie_output: W_y is the embedding matrix (needs E == H).
        max_positions: longest sequence accepted.
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        kind: str = "lstm",
        embedding: int = 64,
        hidden: int = 64,
        layers: int = 1,
        dropout: float = 0.0,
        cells: str = "fused",
        gru_reset: str = "after",
        tie_output: bool = False,
        max_positions: int = 1024,
    ):
        super().__init__()
        self.vocab_size, self.max_positions, self.kind = vocab_size, max_positions, kind
        self.embedding = nn.Embedding(vocab_size, embedding, padding_idx=PAD)
        self.dropout = Dropout(dropout)
        self.rnn = make_recurrent(
            kind, embedding, hidden, num_layers=layers, dropout=dropout, cells=cells, gru_reset=gru_reset
        )
        self.W_y = nn.Linear(hidden, vocab_size)
        if tie_output:
            if embedding != hidden:
                raise ConfigError("model.tie_output", f"needs model.embedding ({embedding}) == model.hidden ({hidden})")
            self.W_y.weight = self.embedding.weight

    def _run(self, tokens: Tensor, lengths: Tensor | None, state: RecurrentLMState | None):
        initial = None if state is None else state_to_layer_first(state.h, state.c)
        h_seq, final = self.rnn(self.dropout(self.embedding(tokens)), lengths, initial)  # (B, T, H)
        h, C = state_to_batch_first(final)
        return self.W_y(self.dropout(h_seq)), RecurrentLMState(h=h, c=C)

    def forward(self, tokens: Tensor) -> Tensor:
        """(B, T) ids -> (B, T, V) logits y_t for the token after each position."""
        return self._run(tokens, None, None)[0]

    def start(self, prefix: Tensor) -> tuple[Tensor, RecurrentLMState]:
        """Read a right-padded (B, T) prefix; logits (B, V) after each row's last real token, and the state."""
        lengths = padding_mask(prefix).sum(dim=1).clamp(min=1)  # (B,)
        logits, state = self._run(prefix, lengths, None)  # (B, T, V)
        last = (lengths - 1).to(logits.device)
        return logits[torch.arange(prefix.size(0), device=logits.device), last], state

    def decode_step(self, state: RecurrentLMState, y_prev: Tensor) -> tuple[Tensor, RecurrentLMState]:
        """Feed y_prev (B,); return logits (B, V) for the next token and the new state."""
        logits, new = self._run(y_prev[:, None], None, state)
        return logits[:, 0], new


def build_recurrent_lm(cfg: RecurrentConfig, vocab_size: int, *, vocab: Sequence[str] | None = None) -> RecurrentLM:
    """A :class:`RecurrentLM` from the ``model`` section; ``attention`` and ``bidirectional`` do not apply.

    Args:
        cfg: recurrent model config (type, layers, embedding, hidden, dropout, cells, init, ...).
        vocab_size: V.
        vocab: tokens by id, needed when ``cfg.embeddings_from`` is set.
    """
    check_recurrent_config(cfg)
    model = RecurrentLM(
        vocab_size,
        kind=cfg.type,
        embedding=cfg.embedding,
        hidden=cfg.hidden,
        layers=cfg.layers,
        dropout=cfg.dropout,
        cells=cfg.cells,
        gru_reset=cfg.gru_reset,
        tie_output=cfg.tie_output,
        max_positions=cfg.max_positions,
    )
    init_weights(model, cfg.init, cfg.recurrent_init)
    if cfg.embeddings_from is not None:
        if vocab is None:
            raise ConfigError("model.embeddings_from", "needs the vocabulary: pass vocab= to build_recurrent_lm")
        init_embedding_from(model.embedding, list(vocab), load_word2vec_text(cfg.embeddings_from))
    return model
