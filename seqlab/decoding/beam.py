"""Batched beam search with the GNMT length penalty (Wu et al. 2016).

Beam search keeps, for every sentence, the K prefixes with the highest log-probability

    s(y_1..y_t) = sum_{i<=t} log p(y_i | y_<i, x)

and ranks the hypotheses that have ended by the length-normalised score

    s(Y) / lp(Y),    lp(Y) = ((5 + |Y|) / 6) ** alpha,

where |Y| counts the decoder steps (``<eos>`` included) and alpha is ``length_penalty``
(alpha = 0 ranks by raw log-probability, larger alpha favours longer outputs). The penalty only
ranks finished hypotheses; open prefixes compete on their raw score.

The algorithm, for a batch of B sentences and beam K:

1. Start from a state (``encode(src)`` with ``<sos>``, or a language model's ``start`` with its
   first logits: :func:`beam_decode`) and repeat it K times: row b*K + k is beam k of sentence b
   (``state.repeat_rows(K)``; what belongs to the source, such as the Transformer's
   cross-attention keys and values, stays one row per sentence). Scores are kept as (B, K); at the first
   step only beam 0 is live (the others start at -inf), so the K copies do not fill the beam with
   the same prefix. Started from ``<sos>``, the first step runs once per sentence (B rows, not
   B*K, as the K copies would compute the same logits) and the search starts from its logits and
   state as from a language model's (1/K of that step's work: about 4% of a 20-step beam-5 search).
2. Each step adds log p(v | prefix) to every beam's score and takes the top 2K of the K * V
   candidates of each sentence (computed from each beam's own 2K best tokens, which contain
   them: see :func:`_row_candidates`). Among the first K candidates, those that emit ``<eos>`` (and, at
   the sentence's length limit, all of them) move to that sentence's finished list. The K best
   candidates that do not emit ``<eos>`` become the new beams (there are at least K of them among
   the top 2K, since each beam contributes at most one ``<eos>`` candidate); the state, token
   history and attention history are reordered with ``state.select`` on their source rows.
3. **Stopping rule.** A sentence is done when it has K finished hypotheses, when it reaches its
   length limit (``max_len``, a (B,) tensor or an int), or when no live beam is left. A done
   sentence adds no more hypotheses; at every check (each step on the CPU, every 16 steps on
   an accelerator: :func:`~seqlab.decoding.greedy.check_interval`) done sentences are dropped
   from the batch, and the search ends when every sentence is done.
   With K = 1 this is exactly greedy search: the single beam always continues with the argmax and
   the sentence ends at the first ``<eos>``.
4. Between checks nothing is read on the host: scores, histories and the finished hypotheses
   (per sentence at most 2K - 1 of them, in a (B, 2K, T) buffer in the order they finished)
   stay on the device and are read once at the end, so an accelerator never waits on Python.
5. The output per sentence is its finished hypotheses sorted by normalised score; ``tokens``,
   ``scores`` (raw log-probability) and ``attention`` describe the best one, ``nbest`` (when
   ``n_best > 1``) the first ``n_best`` with their normalised scores.

``<pad>`` and ``<sos>`` are never proposed (their log-probabilities are set to -inf). The logits
processors of :mod:`seqlab.decoding.processors` (repetition penalty, no-repeat n-gram, minimum
length) act on each beam's own history before the candidates are ranked, exactly as in greedy
search, so beam 1 with a processor equals greedy search with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqlab.decoding.greedy import DecodeOutput, StepFn, check_interval, mask_only, start_from
from seqlab.decoding.lengths import as_length_tensor
from seqlab.decoding.processors import Processor
from seqlab.models.base import DecoderState, Seq2SeqModel, padding_mask
from seqlab.text.specials import EOS, PAD, SOS

__all__ = ["beam_decode", "beam_search", "gnmt_length_penalty"]


def gnmt_length_penalty(length: int, alpha: float) -> float:
    """lp(Y) = ((5 + |Y|) / 6) ** alpha (Wu et al. 2016, eq. 14)."""
    return ((5.0 + length) / 6.0) ** alpha


@dataclass
class _Hypothesis:
    normalised: float
    raw: float
    tokens: list[int]
    attention: Tensor | None


@dataclass
class _Beams:
    """The live part of the search: A active sentences with K beams each (rows a*K + k)."""

    active: Tensor  # (A,) sentence index of each active sentence
    done: Tensor  # (A,) the sentence is done (kept only until the next check drops it)
    scores: Tensor  # (A, K) raw log-probability of each beam
    history: Tensor  # (A*K, t) tokens so far
    attention: Tensor | None  # (A*K, t, S) cross-attention so far, when tracked
    state: DecoderState
    y_prev: Tensor  # (A*K,) last token of each beam

    def select_sentences(self, keep: Tensor) -> _Beams:
        """Keep the active sentences where ``keep`` (A,) is True, with all their beams."""
        K = self.scores.size(1)
        groups = keep.nonzero().squeeze(1)  # (A',)
        rows = (groups.unsqueeze(1) * K + torch.arange(K, device=keep.device)).view(-1)  # (A'*K,)
        return _Beams(
            active=self.active[groups],
            done=self.done[groups],
            scores=self.scores[groups],
            history=self.history[rows],
            attention=None if self.attention is None else self.attention[rows],
            state=self.state.select(rows),
            y_prev=self.y_prev[rows],
        )


class _Finished:
    """Every sentence's finished hypotheses, on the device, in the order they finished.

    A sentence has at most K - 1 before a step and gains at most K in it, so 2K slots suffice;
    slot 2K takes the writes of candidates that do not finish (never read).
    """

    def __init__(self, B: int, K: int, T: int, device: torch.device):
        self.count = torch.zeros(B, dtype=torch.long, device=device)  # (B,)
        self.raw = torch.zeros(B, 2 * K + 1, device=device)  # (B, 2K+1) log-probability
        self.steps = torch.zeros(B, 2 * K + 1, dtype=torch.long, device=device)  # decoder steps |Y|
        self.length = torch.zeros(B, 2 * K + 1, dtype=torch.long, device=device)  # output tokens
        self.tokens = torch.zeros(B, 2 * K + 1, T, dtype=torch.long, device=device)  # (B, 2K+1, T)
        self.attention: Tensor | None = None  # (B, 2K+1, T, S) when tracked
        self.trash = 2 * K

    def add(self, beams: _Beams, ends: Tensor, rows: Tensor, tokens: Tensor, raw: Tensor, t: int) -> None:
        """Store the candidates where ``ends`` (A, K) holds: (A, K) beam rows, tokens, raw scores."""
        sentence = beams.active.unsqueeze(1).expand_as(ends)  # (A, K)
        slot = self.count[beams.active].unsqueeze(1) + ends.long().cumsum(dim=1) - 1
        slot = torch.where(ends, slot, torch.full_like(slot, self.trash))
        self.count.index_add_(0, beams.active, ends.long().sum(dim=1))
        eos = tokens == EOS
        self.raw[sentence, slot] = raw
        self.steps[sentence, slot] = t
        self.length[sentence, slot] = t - eos.long()
        hypotheses = beams.history[rows]  # (A, K, t-1)
        self.tokens[sentence, slot, : t - 1] = hypotheses
        self.tokens[sentence, slot, t - 1] = tokens
        if beams.attention is not None:
            if self.attention is None:
                B, slots, T = self.tokens.shape
                self.attention = beams.attention.new_zeros(B, slots, T, beams.attention.size(2))
            self.attention[sentence, slot, :t] = beams.attention[rows]  # (A, K, t, S)

    def hypotheses(self, src_lengths: Tensor | None, alpha: float) -> list[list[_Hypothesis]]:
        """Read the buffers on the host: per sentence its hypotheses, in the order they finished."""
        counts, raws = self.count.tolist(), self.raw.tolist()
        steps, lengths, tokens = self.steps.tolist(), self.length.tolist(), self.tokens.tolist()
        attention = None if self.attention is None else self.attention.cpu()
        widths = src_lengths.tolist() if src_lengths is not None else None
        finished = []
        for b, n in enumerate(counts):
            hyps = []
            for j in range(n):
                att = None
                if attention is not None:
                    width = widths[b] if widths is not None else attention.size(3)
                    att = attention[b, j, : steps[b][j], :width]  # (t, S_i)
                normalised = raws[b][j] / gnmt_length_penalty(steps[b][j], alpha)
                hyps.append(_Hypothesis(normalised, raws[b][j], tokens[b][j][: lengths[b][j]], att))
            finished.append(hyps)
        return finished


@torch.inference_mode()
def beam_search(
    model: Seq2SeqModel,
    src: Tensor,
    *,
    beam: int,
    max_len: Tensor | int,
    length_penalty: float = 0.6,
    n_best: int = 1,
    process: Processor = mask_only,
    return_attention: bool = False,
) -> DecodeOutput:
    """Translate a batch with beam search: :func:`beam` from ``encode(src)`` and ``<sos>``.

    Args:
        model: any :class:`~seqlab.models.base.Seq2SeqModel` (its mode is left as it is).
        src: (B, S) source ids, right-padded with ``<pad>``.
        beam, max_len, length_penalty, n_best, process, return_attention: as in :func:`beam`.

    Returns:
        A :class:`~seqlab.decoding.greedy.DecodeOutput`, ``nbest`` filled when ``n_best > 1``.
    """
    sos = torch.full((src.size(0),), SOS, dtype=torch.long, device=src.device)
    return beam_decode(model.decode_step, model.encode(src), sos, beam=beam, max_len=max_len,
                       length_penalty=length_penalty, n_best=n_best, process=process,
                       src_lengths=padding_mask(src).sum(dim=1), return_attention=return_attention)


@torch.inference_mode()
def beam_decode(
    step: StepFn,
    state: DecoderState,
    first_token: Tensor | None = None,
    *,
    logits: Tensor | None = None,
    beam: int,
    max_len: Tensor | int,
    length_penalty: float = 0.6,
    n_best: int = 1,
    process: Processor = mask_only,
    src_lengths: Tensor | None = None,
    return_attention: bool = False,
    check_every: int | None = None,
) -> DecodeOutput:
    """Beam search from any start (algorithm and stopping rule in the module docstring).

    Give either ``first_token`` (``<sos>`` after ``encode``) or ``logits`` (the first next-token
    logits that ``LanguageModel.start`` returned with ``state``).

    Args:
        step: the model's ``decode_step``.
        state: the state before the first step, one row per sentence.
        first_token: (B,) first decoder input.
        logits: (B, V) logits of the first step, instead of ``first_token``.
        beam: K, the number of live hypotheses per sentence.
        max_len: int or (B,) most decoder steps per sentence, ``<eos>`` included.
        length_penalty: alpha of the GNMT length penalty.
        n_best: how many finished hypotheses to return per sentence (1 <= n_best <= beam).
        process: the logits processor; candidates are ranked by the processed logits minus the
            model's log-normaliser (the model's log-probability when only the specials are masked).
        src_lengths: (B,) real source lengths, to crop attention (None keeps its full width).
        return_attention: also return the best hypothesis' (T_i, S_i) cross-attention.
        check_every: steps between the host's checks for done sentences (default
            :func:`~seqlab.decoding.greedy.check_interval`); the output does not depend on it.

    Returns:
        A :class:`~seqlab.decoding.greedy.DecodeOutput`, ``nbest`` filled when ``n_best > 1``.
    """
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    if not 1 <= n_best <= beam:
        raise ValueError(f"n_best must be between 1 and beam={beam}, got {n_best}")
    if (first_token is None) == (logits is None):
        raise ValueError("a search needs exactly one of first_token and logits")
    B, K = (first_token if first_token is not None else logits).size(0), beam
    if first_token is not None and B > 0:
        # the K beams of a sentence are equal until the first choice: take the first step once per
        # sentence (B rows, not B*K) and start from its logits, as from a language model's start
        logits, state = step(state, first_token)  # (B, V)
        first_token = None
    step, y_first = start_from(
        step,
        None if first_token is None else first_token.repeat_interleave(K),  # (B*K,)
        None if logits is None else logits.repeat_interleave(K, dim=0),  # (B*K, V)
    )
    device = y_first.device
    limits = as_length_tensor(max_len, B, device)
    if B == 0:
        return _collect([], n_best, return_attention)
    check_every = check_interval(device) if check_every is None else check_every
    T = int(limits.max())
    finished = _Finished(B, K, T, device)

    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0
    beams = _Beams(
        active=torch.arange(B, device=device),
        done=torch.zeros(B, dtype=torch.bool, device=device),
        scores=scores,
        history=torch.zeros((B * K, 0), dtype=torch.long, device=device),
        attention=None,
        state=state.repeat_rows(K),
        y_prev=y_first,
    )
    track_attention = return_attention
    for t in range(1, T + 1):
        logits_t, beams.state = step(beams.state, beams.y_prev)
        if track_attention and beams.state.attention is None:
            track_attention = False
        if track_attention:
            step_attention = beams.state.attention.detach().float().unsqueeze(1)  # (A*K, 1, S)
            beams.attention = (
                step_attention
                if beams.attention is None
                else torch.cat([beams.attention, step_attention], dim=1)
            )
        processed = None if process is mask_only else process(logits_t, beams.history)
        candidates = _row_candidates(logits_t, 2 * K, processed)
        beams = _advance(beams, candidates, t, limits, finished)
        if t % check_every == 0:
            if bool(beams.done.all()):
                break
            if bool(beams.done.any()):
                beams = beams.select_sentences(~beams.done)
    if not track_attention:
        finished.attention = None
    return _collect(finished.hypotheses(src_lengths, length_penalty), n_best, track_attention)


def _row_candidates(logits: Tensor, n: int, processed: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Each row's n best next tokens and their log-probabilities, ``<pad>``/``<sos>`` excluded.

    log p(v) = z_v - log sum_u exp z_u. This is all beam search needs: a candidate among a
    sentence's top 2K over all K * V continuations is among its own beam's top 2K, since within
    one beam candidates rank by log p(v) alone. With the default processor the n best are taken
    from log_softmax(z) itself (one pass over the vocabulary, masked in place); processors rank
    by their processed logits z' instead, and the kept tokens score z'_v - log sum_u exp z_u.

    Args:
        logits: (R, V) next-token logits of R beams.
        n: tokens kept per row (at most V).
        processed: (R, V) the logits after the processors, or None for the masked logits.

    Returns:
        (R, n) log-probabilities (float32, best first) and (R, n) token ids.
    """
    n = min(n, logits.size(1))
    if processed is None:
        log_probs = torch.log_softmax(logits.float(), dim=-1)  # (R, V), a fresh tensor: mask in place
        log_probs[:, PAD] = float("-inf")
        log_probs[:, SOS] = float("-inf")
        return top_n(log_probs, n)
    log_normaliser = torch.logsumexp(logits.float(), dim=-1, keepdim=True)  # (R, 1)
    top_z, top_tokens = top_n(processed, n)
    return top_z - log_normaliser, top_tokens


TOP_N_BLOCK = 64
"""Columns per block of :func:`top_n`."""


def top_n(scores: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """The n largest scores of every row and their columns, largest first: ``scores.topk(n)``.

    PyTorch's ``topk`` over a long row is slow on the CPU (160 x 8,000 floats, n = 10: about
    1.4 ms on the 2-core development machine). The row is cut into blocks of
    :data:`TOP_N_BLOCK` columns; the n largest values lie in the n blocks with the largest maxima
    (a block holding one of them has a maximum at least that large, and at most n blocks do), so
    ``topk`` runs over the block maxima and then over those n blocks only (about 0.75 ms). The
    values are those of ``topk``; among equal values the columns may differ, as ``topk`` leaves
    their order open. Other shapes, and other devices, take ``topk`` itself.
    """
    R, V = scores.shape
    if scores.device.type != "cpu" or V % TOP_N_BLOCK or V < 4 * n * TOP_N_BLOCK:
        return scores.topk(n, dim=-1)
    blocks = scores.reshape(R, V // TOP_N_BLOCK, TOP_N_BLOCK)  # (R, V/b, b)
    best_blocks = blocks.amax(dim=-1).topk(n, dim=-1).indices  # (R, n)
    inside = blocks.gather(1, best_blocks.unsqueeze(-1).expand(R, n, TOP_N_BLOCK))  # (R, n, b)
    values, position = inside.reshape(R, n * TOP_N_BLOCK).topk(n, dim=-1)  # (R, n)
    columns = best_blocks.gather(1, position // TOP_N_BLOCK) * TOP_N_BLOCK + position % TOP_N_BLOCK
    return values, columns


def _advance(
    beams: _Beams,
    candidates: tuple[Tensor, Tensor],
    t: int,
    limits: Tensor,
    finished: _Finished,
) -> _Beams:
    """One beam step: finish hypotheses, pick the next K beams, mark done sentences.

    Only device operations of fixed shape: nothing is read on the host.

    Args:
        beams: the search before step t, with ``state`` already advanced by the model.
        candidates: from :func:`_row_candidates`: (A*K, n) log p(v | prefix) of each beam's n best
            tokens v, and the (A*K, n) tokens.
        t: the step number, from 1.
        limits: (B,) step limits of all sentences.
        finished: the finished hypotheses of every sentence (added to).

    Returns:
        The search after step t (done sentences still in it, flagged in ``done``).
    """
    A, K = beams.scores.shape
    row_log_probs, row_tokens = candidates
    n = row_log_probs.size(1)
    scored = (beams.scores.view(-1, 1) + row_log_probs).view(A, K * n)  # (A, K*n)
    top_scores, top_index = scored.topk(min(2 * K, K * n), dim=1)  # (A, 2K)
    top_tokens = row_tokens.view(A, K * n).gather(1, top_index)
    offsets = torch.arange(A, device=top_index.device).unsqueeze(1) * K
    top_rows = top_index // n + offsets  # (A, 2K) row of the beam each candidate extends

    # among the first K candidates, those that end (<eos>, or any at the length limit) finish
    at_limit = t >= limits[beams.active]  # (A,)
    ends = (top_tokens[:, :K] == EOS) | at_limit.unsqueeze(1)
    ends &= torch.isfinite(top_scores[:, :K]) & ~beams.done.unsqueeze(1)
    finished.add(beams, ends, top_rows[:, :K], top_tokens[:, :K], top_scores[:, :K], t)

    # the K best candidates that do not end with <eos> continue: sorting the column numbers with
    # the <eos> ones pushed behind puts the open columns first, in rank order
    width = top_tokens.size(1)
    column_keys = torch.arange(width, device=top_tokens.device) + width * (top_tokens == EOS).long()
    columns = column_keys.topk(K, dim=1, largest=False, sorted=True).indices  # (A, K)
    rows = top_rows.gather(1, columns).view(-1)  # (A*K,)
    y_next = top_tokens.gather(1, columns).view(-1)  # (A*K,)
    scores = top_scores.gather(1, columns)
    full = finished.count[beams.active] >= K
    return _Beams(
        active=beams.active,
        done=beams.done | at_limit | full | ~torch.isfinite(scores).any(dim=1),
        scores=scores,
        history=torch.cat([beams.history[rows], y_next.unsqueeze(1)], dim=1),
        attention=None if beams.attention is None else beams.attention[rows],
        state=beams.state.select(rows),
        y_prev=y_next,
    )


def _collect(finished: list[list[_Hypothesis]], n_best: int, with_attention: bool) -> DecodeOutput:
    """Rank each sentence's finished hypotheses by normalised score and build the output."""
    tokens, scores, attention, nbest = [], [], [], []
    for hypotheses in finished:
        ranked = sorted(hypotheses, key=lambda h: h.normalised, reverse=True)
        if not ranked:  # only when the model gave -inf to every continuation
            ranked = [_Hypothesis(float("-inf"), float("-inf"), [], None)]
        best = ranked[0]
        tokens.append(best.tokens)
        scores.append(best.raw)
        attention.append(best.attention if best.attention is not None else torch.zeros(0, 0))
        nbest.append([(h.tokens, h.normalised) for h in ranked[:n_best]])
    return DecodeOutput(
        tokens=tokens,
        scores=scores,
        attention=attention if with_attention else None,
        nbest=nbest if n_best > 1 else None,
    )
