"""Greedy decoding: one token per step, the most probable one.

    y_t = argmax_v log p(v | y_<t, x)

:func:`stepwise_decode` is the left-to-right loop shared by greedy search and sampling (they differ
only in how the next token is chosen); :func:`greedy_search` runs it with the argmax. Every row of
the batch stops at its own ``<eos>`` or length limit; finished rows are fed ``<pad>`` and no longer
scored, and the loop ends once every row has finished. All per-step state (finished flags, scores,
the (B, T) token history) stays on the model's device; the host reads it once at the end and
looks at the "all finished" flag every :func:`check_interval` steps (every step on the CPU, every
16 on an accelerator, where a read stalls the device), which never changes the output.

Decoding functions run under ``torch.inference_mode()`` rather than ``torch.no_grad()``: no
autograd bookkeeping at all, which for the hundreds of small operations of each decoder step is
measurably faster (about 10% for greedy search in ``benchmarks/translation_speed.py``).

The choice is made on the logits after the processors of :mod:`seqlab.decoding.processors`
(repetition penalty, no-repeat n-gram, minimum length; ``<pad>`` and ``<sos>`` always at -inf);
the scores stay the model's own log-probabilities, so they agree with a teacher-forced
computation. :func:`decode_steps` is a generator that yields each step's tokens (streaming);
:func:`greedy` starts from any state, a first token or first logits (a language model's
``start``), and :func:`greedy_search` is its sequence-to-sequence form (``encode``, ``<sos>``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import torch
from torch import Tensor

from seqlab.decoding.lengths import as_length_tensor
from seqlab.decoding.processors import Processor, mask_only
from seqlab.models.base import DecoderState, Seq2SeqModel, padding_mask
from seqlab.text.specials import EOS, PAD, SOS

__all__ = [
    "DecodeOutput",
    "FirstLogits",
    "check_interval",
    "decode_steps",
    "greedy",
    "greedy_search",
    "mask_only",
    "run_to_end",
    "start_from",
    "stepwise_decode",
]

StepFn = Callable[[DecoderState, Tensor], "tuple[Tensor, DecoderState]"]


@dataclass
class DecodeOutput:
    """What every decoder returns, one entry per input sentence, in input order.

    Attributes:
        tokens: output ids without ``<sos>``/``<eos>``.
        scores: sum of log p(y_t | y_<t, x) over the emitted tokens, ``<eos>`` included.
        attention: per sentence a (T_i, S_i) tensor: the cross-attention of each decoder step
            (T_i = len(tokens) + 1 when the sentence ended with ``<eos>``, else len(tokens)) over
            the S_i real source positions; None when not requested or the model has no attention.
        nbest: from beam search with ``n_best > 1``: per sentence up to ``n_best``
            (tokens, length-normalised score) pairs, best first; ``nbest[i][0][0] == tokens[i]``.
    """

    tokens: list[list[int]]
    scores: list[float]
    attention: list[Tensor] | None = None
    nbest: list[list[tuple[list[int], float]]] | None = None

    def __len__(self) -> int:
        return len(self.tokens)


class FirstLogits:
    """A step function that returns given logits once, then defers to the model's step.

    This is how a language model, whose ``start(prefix)`` returns the first next-token logits with
    the state, enters the same loops as a sequence-to-sequence model after ``encode``.
    """

    def __init__(self, step: StepFn, logits: Tensor):
        self.step, self.logits = step, logits

    def __call__(self, state: DecoderState, y_prev: Tensor) -> tuple[Tensor, DecoderState]:
        if self.logits is not None:
            logits, self.logits = self.logits, None
            return logits, state
        return self.step(state, y_prev)


def start_from(step: StepFn, first_token: Tensor | None, logits: Tensor | None) -> tuple[StepFn, Tensor]:
    """The (step, first input) pair of a search that starts from a token or from given logits.

    Args:
        step: the model's ``decode_step``.
        first_token: (B,) first decoder input (``<sos>`` after ``encode``), or None.
        logits: (B, V) next-token logits returned with the start state, or None.

    Returns:
        The step function to run and the (B,) first input (a dummy when ``logits`` are given).
    """
    if (first_token is None) == (logits is None):
        raise ValueError("a search needs exactly one of first_token and logits")
    if logits is None:
        return step, first_token
    return FirstLogits(step, logits), torch.zeros(logits.size(0), dtype=torch.long, device=logits.device)


def check_interval(device: torch.device) -> int:
    """Steps between the host's looks at the "has every row finished?" flag on ``device``.

    Reading a device tensor on the host (``bool(t)``, ``.tolist()``) waits for every queued kernel,
    so an accelerator idles while Python launches the next step. On the CPU the read is free and
    stopping at the earliest step saves work, so it looks every step; elsewhere every 16 steps,
    at most 15 wasted steps of a finished batch against one stall per step.
    """
    return 1 if torch.device(device).type == "cpu" else 16


def decode_steps(
    step: StepFn,
    state: DecoderState,
    y_prev: Tensor,
    *,
    max_len: Tensor | int,
    choose: Callable[[Tensor], Tensor],
    process: Processor = mask_only,
    src_lengths: Tensor | None = None,
    return_attention: bool = False,
    check_every: int | None = None,
) -> Generator[Tensor, None, DecodeOutput]:
    """Run ``step`` left to right, choosing one token per row and step; yield each step's tokens.

    A generator: it yields the (B,) tokens of every step (``<pad>`` for rows already finished)
    and returns the :class:`DecodeOutput` (``StopIteration.value``), so callers can stream tokens
    as they come; :func:`stepwise_decode` runs it to the end.

    Every per-step quantity (finished flags, scores, step counts, the token history) stays a
    device tensor of fixed shape; the host reads them once, at the end, and looks at the
    "all finished" flag every ``check_every`` steps. Rows that finish before the look are fed
    ``<pad>`` and scored 0, so the output does not depend on ``check_every``.

    Args:
        step: ``decode_step`` of a model: (state, (B,) y_prev) -> ((B, V) logits, state).
        state: the state before the first step (from ``encode`` or ``LanguageModel.start``).
        y_prev: (B,) the first decoder input (``<sos>`` for sequence-to-sequence models).
        max_len: int or (B,) most steps per row (see :mod:`seqlab.decoding.lengths`).
        choose: (B, V) processed logits -> (B,) next tokens.
        process: the logits processor (:func:`~seqlab.decoding.processors.build_processor`);
            it must mask ``<pad>``/``<sos>``.
        src_lengths: (B,) real source lengths, to crop attention; None keeps its full width.
        return_attention: collect ``state.attention`` after each step.
        check_every: steps between early-exit checks (default :func:`check_interval`).
    """
    B = y_prev.size(0)
    device = y_prev.device
    limits = as_length_tensor(max_len, B, device)
    if B == 0:
        return DecodeOutput(tokens=[], scores=[], attention=[] if return_attention else None)
    check_every = check_interval(device) if check_every is None else check_every
    T = int(limits.max())
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    n_steps = torch.zeros(B, dtype=torch.long, device=device)
    score = torch.zeros(B, dtype=torch.float64, device=device)
    history = torch.full((B, T), PAD, dtype=torch.long, device=device)  # (B, T), filled left to right
    pad = torch.full((B,), PAD, dtype=torch.long, device=device)
    attention: list[Tensor] | None = [] if return_attention else None

    for t in range(1, T + 1):
        logits, state = step(state, y_prev)
        log_probs = torch.log_softmax(logits.float(), dim=-1)  # (B, V)
        y = choose(process(logits, history[:, : t - 1]))
        alive = ~finished
        y = torch.where(alive, y, pad)
        step_score = log_probs.gather(1, y.unsqueeze(1)).squeeze(1).double()
        score += torch.where(alive, step_score, torch.zeros_like(step_score))
        n_steps += alive.long()
        history[:, t - 1] = y
        if attention is not None:
            if state.attention is None:
                attention = None
            else:
                attention.append(state.attention.detach().float())
        yield y
        finished |= (y == EOS) | (t >= limits)
        if t % check_every == 0 and bool(finished.all()):
            break
        y_prev = y

    lengths = n_steps.tolist()
    tokens = []
    for row, n in zip(history.tolist(), lengths):  # (B, T)
        row = row[:n]
        tokens.append(row[:-1] if row and row[-1] == EOS else row)
    out_attention = None
    if attention is not None:
        stacked = torch.stack(attention, dim=1).cpu()  # (B, T, S)
        widths = src_lengths.tolist() if src_lengths is not None else [stacked.size(2)] * B
        out_attention = [stacked[i, : lengths[i], : int(widths[i])] for i in range(B)]
    return DecodeOutput(tokens=tokens, scores=score.tolist(), attention=out_attention)


def run_to_end(steps: Generator[Tensor, None, DecodeOutput]) -> DecodeOutput:
    """Exhaust a :func:`decode_steps` generator and return its output."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


def stepwise_decode(step: StepFn, state: DecoderState, y_prev: Tensor, **kwargs) -> DecodeOutput:
    """:func:`decode_steps` run to the end (same arguments)."""
    return run_to_end(decode_steps(step, state, y_prev, **kwargs))


ARGMAX_BLOCK = 64
"""Columns per block of :func:`argmax`."""


def argmax(log_probs: Tensor) -> Tensor:
    """The greedy choice: (B, V) -> (B,) argmax, the first column holding the row's maximum.

    PyTorch's ``argmax`` over the last dimension tracks an index beside every value and runs far
    below memory speed on the CPU (32 x 8,000 floats: about 220 us on the 2-core development
    machine, against 15 us for ``amax``). So the row is cut into blocks of :data:`ARGMAX_BLOCK`
    columns: m_j = max of block j (vectorised), j* = the first block whose maximum is the row's,
    then the first maximum inside block j*: the same index as ``argmax`` (also with ties, and
    with NaN, which both treat as the maximum), in about 60 us. Other shapes, and other devices,
    take ``argmax`` itself.
    """
    B, V = log_probs.shape
    if log_probs.device.type != "cpu" or V % ARGMAX_BLOCK or V < 4 * ARGMAX_BLOCK:
        return log_probs.argmax(dim=-1)
    blocks = log_probs.reshape(B, V // ARGMAX_BLOCK, ARGMAX_BLOCK)  # (B, V/b, b)
    block = blocks.amax(dim=-1).argmax(dim=-1)  # (B,) first block holding the maximum
    inner = blocks[torch.arange(B, device=log_probs.device), block].argmax(dim=-1)  # (B,)
    return block * ARGMAX_BLOCK + inner


@torch.inference_mode()
def greedy(
    step: StepFn,
    state: DecoderState,
    first_token: Tensor | None = None,
    *,
    logits: Tensor | None = None,
    max_len: Tensor | int,
    process: Processor = mask_only,
    src_lengths: Tensor | None = None,
    return_attention: bool = False,
) -> DecodeOutput:
    """Greedy search from any start: y_t = argmax_v process(z_t)_v.

    Give either ``first_token`` (``<sos>`` after ``encode``) or ``logits`` (the first next-token
    logits that ``LanguageModel.start`` returned with ``state``).

    Args:
        step: the model's ``decode_step``.
        state: the state before the first step.
        first_token: (B,) first decoder input.
        logits: (B, V) logits of the first step, instead of ``first_token``.
        max_len: int or (B,) most decoder steps per row, ``<eos>`` included.
        process: the logits processor applied before the argmax.
        src_lengths: (B,) real source lengths, to crop attention.
        return_attention: also return each row's (T_i, S_i) cross-attention.
    """
    step, y_prev = start_from(step, first_token, logits)
    return stepwise_decode(step, state, y_prev, max_len=max_len, choose=argmax, process=process,
                           src_lengths=src_lengths, return_attention=return_attention)


@torch.inference_mode()
def greedy_search(
    model: Seq2SeqModel,
    src: Tensor,
    *,
    max_len: Tensor | int,
    process: Processor = mask_only,
    return_attention: bool = False,
) -> DecodeOutput:
    """Translate a batch by choosing y_t = argmax_v log p(v | y_<t, x) at every step.

    Args:
        model: any :class:`~seqlab.models.base.Seq2SeqModel` (its mode is left as it is).
        src: (B, S) source ids, right-padded with ``<pad>``.
        max_len: int or (B,) most decoder steps per sentence, ``<eos>`` included.
        process: the logits processor (default: only ``<pad>``/``<sos>`` masked).
        return_attention: also return each sentence's (T_i, S_i) cross-attention.

    Returns:
        A :class:`DecodeOutput` with one entry per row of ``src``.
    """
    sos = torch.full((src.size(0),), SOS, dtype=torch.long, device=src.device)
    return greedy(model.decode_step, model.encode(src), sos, max_len=max_len, process=process,
                  src_lengths=padding_mask(src).sum(dim=1), return_attention=return_attention)
