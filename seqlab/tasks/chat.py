"""Chat: a sequence-to-sequence model from a conversation's context to the bot's next reply.

    x = turn_{i-k} <sep> ... <sep> turn_{i-1}      (k = data.context_turns)
    y = turn_i                                     (a turn the bot says)
    loss = sum_t -log p(y_t | y_<t, x)             the translation objective, unchanged

Chat is translation with another reader: the conversations come from
:mod:`seqlab.data.dialogs` (the lessons' human/robot files, JSONL turns, chatterbot YAML, the
built-in synthetic dialogs), a context that is too long loses its oldest turns first
(:func:`~seqlab.data.dialogs.fit_context`), and dev data may be held out by conversation. The
tokenizers, batches, model, objective, dev metrics and checkpoints are the translation task's
(this class only overrides :meth:`read_pairs` and :meth:`fit_source`). A chat run loads as a
:class:`~seqlab.api.Chatbot`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from seqlab.config import DataConfig
from seqlab.data.dialogs import chat_splits, fit_context
from seqlab.errors import ConfigError
from seqlab.tasks.translation import TranslationTask
from seqlab.text.pair import TokenizerPair
from seqlab.text.specials import SEP

if TYPE_CHECKING:
    from seqlab.config import ExperimentConfig

__all__ = ["ChatDataConfig", "ChatTask"]


@dataclass
class ChatDataConfig(DataConfig):
    """Where the conversations come from, and how contexts are built.

    ``train``/``dev``/``test`` are ``[human_text.txt, robot_text.txt]``, a ``.jsonl`` file of
    ``{"turns": [...]}``, a chatterbot ``.yml`` file, or ``builtin:synthetic-dialogs`` (``-dev``).
    """

    train: str | list[str] = "builtin:synthetic-dialogs"
    dev: str | list[str] | None = "builtin:synthetic-dialogs-dev"
    format: Literal["auto", "text", "jsonl", "yaml"] = "auto"
    """``text`` is two aligned files (human, robot); ``yaml`` the chatterbot-corpus format."""
    context_turns: int = 0
    """Earlier turns joined with ``<sep>`` before the message in the encoder input (0 = none)."""
    holdout: float = 0.0
    """Without ``dev``: this fraction of the training conversations becomes the dev set (split by
    conversation, seeded with ``train.seed``)."""

    def check(self, cfg: ExperimentConfig) -> None:
        super().check(cfg)
        if self.reverse:
            raise ConfigError("data.reverse", "does not apply to chat (the bot's turns are the targets)")
        if self.context_turns < 0:
            raise ConfigError("data.context_turns", f"must be 0 or more, got {self.context_turns}")
        if not 0.0 <= self.holdout < 1.0:
            raise ConfigError("data.holdout", f"must be in [0, 1), got {self.holdout}")
        if self.holdout and self.dev:
            raise ConfigError("data.holdout", "give either data.dev or data.holdout, not both")
        if self.context_turns > 0 and SEP not in cfg.tokenizer.specials:
            raise ConfigError("tokenizer.specials", f"data.context_turns={self.context_turns} joins turns with "
                              f"{SEP}; add it: tokenizer.specials: [\"{SEP}\"]")


class ChatTask(TranslationTask):
    """Conversations in, a :class:`~seqlab.models.base.Seq2SeqModel` that replies (see the module docstring)."""

    data_config = ChatDataConfig
    best_metric = "loss"

    def read_pairs(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(context, reply) pairs for training and dev (:func:`~seqlab.data.dialogs.chat_splits`)."""
        return chat_splits(self.cfg.data, self.cfg.train.seed)

    def fit_source(self, tokenizers: TokenizerPair):
        """Contexts lose their oldest turns, then tokens, to fit ``data.max_len``."""
        if SEP not in tokenizers.src.specials:
            return lambda ids, limit: ids[-limit:]
        sep = tokenizers.src.special_id(SEP)
        return lambda ids, limit: fit_context(ids, limit, sep)
