"""Tiny deterministic models for the decoding tests (imported as ``decoding_toys``).

* :class:`GRUToy` — a randomly initialised GRU decoder with dot-product attention over embedded
  source tokens; its outputs depend on the source and on the whole prefix.
* :class:`MarkovToy` — logits are a fixed table indexed by (step, previous token), so every
  sequence's probability can be written down or enumerated by brute force.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqlab.models.base import DecoderState, LanguageModel, Seq2SeqModel, padding_mask
from seqlab.text.specials import EOS, PAD, SOS


@torch.no_grad()
def teacher_forced_log_probs(model: Seq2SeqModel, src: Tensor, tokens: list[int], eos: bool):
    """(T, V) log-probabilities of a single sentence ``src`` (1, S) along ``tokens`` (+ EOS)."""
    target = tokens + ([EOS] if eos else [])
    tgt_in = torch.tensor([[SOS] + target[:-1]])
    return torch.log_softmax(model(src, tgt_in)[0].float(), dim=-1), target


def sequence_log_prob(model: Seq2SeqModel, src: Tensor, tokens: list[int], eos: bool) -> float:
    """log p(tokens [+ EOS] | src) for a single sentence, by teacher forcing."""
    log_probs, target = teacher_forced_log_probs(model, src, tokens, eos)
    return float(log_probs.gather(1, torch.tensor(target).unsqueeze(1)).sum())


@dataclass(kw_only=True)
class GRUState(DecoderState):
    h: Tensor | None = None  # (B, H)
    memory: Tensor | None = None  # (B, S, H)
    mask: Tensor | None = None  # (B, S)


class GRUToy(Seq2SeqModel):
    """h_t = GRU(E[y_{t-1}], h_{t-1}); a_t = softmax(M h_t); logits = W [h_t; a_t M]."""

    def __init__(
        self, *, vocab: int = 9, hidden: int = 12, seed: int = 0, scale: float = 2.0, eos_bias=0.5
    ):
        super().__init__()
        self.src_vocab_size = self.tgt_vocab_size = vocab
        self.max_positions = 64
        self.scale, self.eos_bias = scale, eos_bias
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.src_embed = nn.Embedding(vocab, hidden)
            self.tgt_embed = nn.Embedding(vocab, hidden)
            self.cell = nn.GRUCell(hidden, hidden)
            self.out = nn.Linear(2 * hidden, vocab)
        self.eval()

    def encode(self, src: Tensor) -> GRUState:
        mask = padding_mask(src)
        memory = torch.tanh(self.src_embed(src))  # (B, S, H)
        h = (memory * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return GRUState(h=h, memory=memory, mask=mask)

    def decode_step(self, state: GRUState, y_prev: Tensor):
        h = self.cell(self.tgt_embed(y_prev), state.h)
        energy = torch.einsum("bsh,bh->bs", state.memory, h).masked_fill(~state.mask, float("-inf"))
        a = torch.softmax(energy, dim=-1)  # (B, S)
        c = torch.einsum("bs,bsh->bh", a, state.memory)
        logits = self.scale * self.out(torch.cat([h, c], dim=-1))
        logits[:, EOS] += self.eos_bias
        return logits, GRUState(h=h, memory=state.memory, mask=state.mask, attention=a)

    def forward(self, src: Tensor, tgt_in: Tensor, *, teacher_forcing: float = 1.0) -> Tensor:
        state, rows = self.encode(src), []
        for t in range(tgt_in.size(1)):
            logits, state = self.decode_step(state, tgt_in[:, t])
            rows.append(logits)
        return torch.stack(rows, dim=1)


@dataclass(kw_only=True)
class StepState(DecoderState):
    t: Tensor | None = None  # (B,) steps taken


class MarkovToy(Seq2SeqModel):
    """logits_t = table[t - 1, y_{t-1}], whatever the source; past the table its last slice."""

    def __init__(self, table: Tensor):
        super().__init__()
        self.table = table  # (T, V, V)
        self.src_vocab_size = self.tgt_vocab_size = table.size(-1)
        self.max_positions = 64

    def encode(self, src: Tensor) -> StepState:
        return StepState(t=torch.zeros(src.size(0), dtype=torch.long))

    def decode_step(self, state: StepState, y_prev: Tensor):
        t = state.t.clamp(max=self.table.size(0) - 1)
        return self.table[t, y_prev], StepState(t=state.t + 1)

    def forward(self, src: Tensor, tgt_in: Tensor, *, teacher_forcing: float = 1.0) -> Tensor:
        steps = torch.arange(tgt_in.size(1)).clamp(max=self.table.size(0) - 1)
        return self.table[steps.unsqueeze(0), tgt_in]  # (B, T, V)


class MarkovLM(LanguageModel):
    """A language model over the same table: the state is the number of tokens read."""

    def __init__(self, table: Tensor):
        super().__init__()
        self.inner = MarkovToy(table)
        self.vocab_size = table.size(-1)
        self.max_positions = 64

    def forward(self, tokens: Tensor) -> Tensor:
        return self.inner(tokens, tokens)

    def start(self, prefix: Tensor):
        state = StepState(t=torch.full((prefix.size(0),), prefix.size(1) - 1, dtype=torch.long))
        return self.inner.decode_step(state, prefix[:, -1])

    def decode_step(self, state: StepState, y_prev: Tensor):
        return self.inner.decode_step(state, y_prev)


def log_table(rows: dict[tuple[int, int], dict[int, float]], *, steps: int, vocab: int) -> Tensor:
    """A (steps, V, V) log-probability table: ``rows[(t, y_prev)] = {token: prob}``.

    Unlisted (t, y_prev) rows put all their mass on ``<eos>``; unlisted tokens get probability 0
    (a large negative logit, so no row is all -inf).
    """
    table = torch.full((steps, vocab, vocab), -1e4)
    table[:, :, EOS] = 0.0
    for (t, y_prev), probs in rows.items():
        table[t, y_prev] = -1e4
        for token, p in probs.items():
            table[t, y_prev, token] = torch.tensor(p).log()
    return table


def random_source(seed: int, *, batch: int = 5, vocab: int = 9, max_len: int = 7) -> Tensor:
    """(B, S) right-padded random sources of different lengths (ids 4..vocab-1)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, max_len + 1, (batch,), generator=g)
    lengths[0] = max_len
    src = torch.randint(4, vocab, (batch, max_len), generator=g)
    return src.masked_fill(torch.arange(max_len) >= lengths.unsqueeze(1), PAD)
