"""A copy model for the evaluation tests (imported as ``evaluation_toys``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqlab.models.base import DecoderState, Seq2SeqModel, padding_mask
from seqlab.text.specials import EOS, UNK


@dataclass(kw_only=True)
class CopyState(DecoderState):
    src: Tensor | None = None  # (B, S)
    length: Tensor | None = None  # (B,)
    t: Tensor | None = None  # (B,)


class CopyToy(Seq2SeqModel):
    """Step t favours source token x_t (then <eos>) and attends to position t.

    logits_t = sharpness * onehot(x_t) + bias, with a fixed random ``bias`` so the probabilities
    are not trivial. In training mode it favours <unk> instead, to show which mode ran.
    """

    def __init__(self, *, vocab: int = 12, seed: int = 0):
        super().__init__()
        self.src_vocab_size = self.tgt_vocab_size = vocab
        self.max_positions = 32
        self.sharpness = nn.Parameter(torch.tensor(4.0))
        self.register_buffer(
            "bias", torch.randn(vocab, generator=torch.Generator().manual_seed(seed))
        )

    def encode(self, src: Tensor) -> CopyState:
        return CopyState(src=src, length=padding_mask(src).sum(1), t=torch.zeros_like(src[:, 0]))

    def decode_step(self, state: CopyState, y_prev: Tensor):
        S = state.src.size(1)
        position = state.t.clamp(max=S - 1)
        target = state.src.gather(1, position.unsqueeze(1)).squeeze(1)
        target = torch.where(state.t < state.length, target, torch.full_like(target, EOS))
        if self.training:
            target = torch.full_like(target, UNK)
        logits = self.sharpness * nn.functional.one_hot(target, self.tgt_vocab_size) + self.bias
        looked = torch.minimum(state.t, state.length - 1)
        attention = nn.functional.one_hot(looked, S).float()
        return logits, CopyState(
            src=state.src, length=state.length, t=state.t + 1, attention=attention
        )

    def forward(self, src: Tensor, tgt_in: Tensor, *, teacher_forcing: float = 1.0) -> Tensor:
        state, rows = self.encode(src), []
        for t in range(tgt_in.size(1)):
            logits, state = self.decode_step(state, tgt_in[:, t])
            rows.append(logits)
        return torch.stack(rows, dim=1)
