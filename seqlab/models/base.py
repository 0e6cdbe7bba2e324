"""The one interface every sequence model implements.

Decoding (greedy, beam, sampling), evaluation, attention plots and serving only talk to this
interface, so they never ask which architecture they hold.

A sequence-to-sequence model factorises

    p(y | x) = prod_t p(y_t | y_<t, x)

and exposes it in three pieces:

* ``features(src, tgt_in)`` — teacher-forced decoder outputs h_t for every target position at once
  (training), and ``output_layer``, the linear map z_t = W h_t + b to the logits; ``forward`` is
  the two composed. The translation task's objective keeps them apart so the loss can fuse the
  output layer with the softmax (:func:`seqlab.training.loss.output_layer_nll`);
* ``encode(src)`` — run the encoder once and return the initial :class:`DecoderState`;
* ``decode_step(state, y_prev)`` — logits for the next token given the previous one, and the new
  state (a key/value cache for the Transformer, h_t / c_t for recurrent decoders).

A language model (:class:`LanguageModel`: the decoder-only Transformer of
:mod:`seqlab.models.gpt`, the recurrent LMs of :mod:`seqlab.models.recurrent_lm`) implements the
same ``decode_step`` over a state made by ``start(prefix)``, so the same decoding functions drive
generation (``seqlab generate``).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import Tensor, nn

from seqlab.text.specials import PAD

__all__ = ["DecoderState", "LanguageModel", "Seq2SeqModel", "padding_mask"]


def padding_mask(tokens: Tensor) -> Tensor:
    """True where ``tokens`` is a real token, False at ``<pad>``. (B, S) -> (B, S) bool."""
    return tokens.ne(PAD)


@dataclass
class DecoderState:
    """Everything a decoder carries from one step to the next.

    Subclasses are dataclasses whose tensor fields (or lists/tuples of tensors) have the batch on
    dimension 0. Most fields have one row per hypothesis; the fields named in ``per_source`` (such
    as the Transformer's cross-attention keys and values) have one row per source sentence, shared
    by ``group`` consecutive hypothesis rows. Beam search makes K rows per sentence with
    :meth:`repeat_rows` and reorders them with :meth:`select`, so per-source fields are never
    copied K times. ``attention`` holds the cross-attention weights of the last step, (B, S), or
    None for models without attention.
    """

    attention: Tensor | None = None
    group: int = 1
    per_source: ClassVar[tuple[str, ...]] = ()

    def repeat_rows(self, k: int) -> DecoderState:
        """Row i becomes rows i*k ... i*k + k - 1 (per-source fields stay as they are)."""
        rows = self._row_tensor()
        index = torch.arange(rows.size(0), device=rows.device).repeat_interleave(k)
        return self._with(index, None, self.group * k)

    def select(self, index: Tensor) -> DecoderState:
        """Return a state whose row i is row ``index[i]`` of this one.

        With ``group > 1`` every new group of rows must come from one old group (beam search
        reorders beams within a sentence and drops whole sentences); the per-source fields follow
        the groups. That is checked on the CPU only: elsewhere the check would make the host wait
        for the device at every beam step, so a caller breaking the rule gets the per-source rows
        of each group's first row.
        """
        if self.group == 1 or not self.per_source:
            return self._with(index, index, self.group)
        groups = index.view(-1, self.group) // self.group  # (B', group) old group of each new row
        source_index = groups[:, 0]
        if index.device.type == "cpu" and not bool(groups.eq(source_index[:, None]).all()):
            raise ValueError(f"select: each group of {self.group} rows must come from a single old group")
        return self._with(index, source_index, self.group)

    def _row_tensor(self) -> Tensor:
        """The first tensor with one row per hypothesis (its size and device are the state's)."""
        for f in fields(self):
            if f.name not in self.per_source:
                value = _first_tensor(getattr(self, f.name))
                if value is not None:
                    return value
        raise ValueError("this state holds no per-row tensor")

    def _with(self, row_index: Tensor, source_index: Tensor | None, group: int) -> DecoderState:
        changes = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "group":
                changes[f.name] = group
            elif f.name in self.per_source:
                changes[f.name] = value if source_index is None else _select(value, source_index)
            else:
                changes[f.name] = _select(value, row_index)
        return type(self)(**changes)


def _first_tensor(value) -> Tensor | None:
    if isinstance(value, Tensor):
        return value if value.dim() > 0 else None
    if isinstance(value, (list, tuple)):
        for v in value:
            found = _first_tensor(v)
            if found is not None:
                return found
    if isinstance(value, dict):
        return _first_tensor(list(value.values()))
    return None


def _select(value, index: Tensor):
    if isinstance(value, Tensor):
        return value.index_select(0, index) if value.dim() > 0 else value
    if isinstance(value, list):
        return [_select(v, index) for v in value]
    if isinstance(value, tuple):
        return tuple(_select(v, index) for v in value)
    if isinstance(value, dict):
        return {k: _select(v, index) for k, v in value.items()}
    return value


class Seq2SeqModel(nn.Module, abc.ABC):
    """Encoder-decoder models: Transformer, recurrent with or without attention.

    Attributes:
        src_vocab_size: size of the source vocabulary.
        tgt_vocab_size: size of the target vocabulary (the logits' last dimension).
        max_positions: longest sequence the model accepts (source or target), in tokens.
    """

    src_vocab_size: int
    tgt_vocab_size: int
    max_positions: int

    def features(self, src: Tensor, tgt_in: Tensor, *, teacher_forcing: float = 1.0) -> Tensor:
        """Teacher-forced decoder outputs, the input of :attr:`output_layer`.

        Models trained by :func:`seqlab.training.train` implement this and :attr:`output_layer`;
        a model used only for decoding may instead override :meth:`forward`.

        Args:
            src: (B, S) source ids, right-padded with ``<pad>``.
            tgt_in: (B, T) decoder inputs ``<sos> y_1 ... y_{T-1}``, right-padded.
            teacher_forcing: probability of feeding the gold previous token; models that decode
                all positions in parallel accept only 1.0.

        Returns:
            (B, T, d) decoder outputs h_1 ... h_T.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement features()")

    @property
    def output_layer(self) -> nn.Linear:
        """The map from decoder outputs to logits, z_t = W h_t + b (V outputs)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement output_layer")

    def forward(self, src: Tensor, tgt_in: Tensor, *, teacher_forcing: float = 1.0) -> Tensor:
        """Teacher-forced logits: (B, T, V) unnormalised scores for ``y_1 ... y_T``.

        ``output_layer(features(src, tgt_in))``; see :meth:`features` for the arguments.
        """
        return self.output_layer(self.features(src, tgt_in, teacher_forcing=teacher_forcing))

    @abc.abstractmethod
    def encode(self, src: Tensor) -> DecoderState:
        """Encode (B, S) source ids; return the decoder state before the first step."""

    @abc.abstractmethod
    def decode_step(self, state: DecoderState, y_prev: Tensor) -> tuple[Tensor, DecoderState]:
        """One decoder step.

        Args:
            state: from :meth:`encode` or the previous step.
            y_prev: (B,) the previous target token (``<sos>`` at the first step).

        Returns:
            (B, V) logits for the next token, and the new state (with ``attention`` (B, S) set
            when the model attends over the source).
        """

    def cross_attention(self, src: Tensor, tgt_in: Tensor) -> Tensor | None:
        """(B, T, S) source attention weights under teacher forcing, or None without attention.

        The default runs :meth:`decode_step` over ``tgt_in``; models may override it with a
        parallel version.
        """
        state = self.encode(src)
        rows = []
        for t in range(tgt_in.size(1)):
            _, state = self.decode_step(state, tgt_in[:, t])
            if state.attention is None:
                return None
            rows.append(state.attention)
        return torch.stack(rows, dim=1)


class LanguageModel(nn.Module, abc.ABC):
    """Decoder-only next-token models: p(x) = prod_t p(x_t | x_<t)."""

    vocab_size: int
    max_positions: int

    @abc.abstractmethod
    def forward(self, tokens: Tensor) -> Tensor:
        """(B, T) ids -> (B, T, V) logits for the token after each position."""

    @abc.abstractmethod
    def start(self, prefix: Tensor) -> tuple[Tensor, DecoderState]:
        """Read a (B, T) prefix, right-padded with ``<pad>`` when its rows differ in length;
        return (B, V) logits for the token after each row's last token and the state after it."""

    @abc.abstractmethod
    def decode_step(self, state: DecoderState, y_prev: Tensor) -> tuple[Tensor, DecoderState]:
        """Same contract as :meth:`Seq2SeqModel.decode_step`."""
