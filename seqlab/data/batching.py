"""Batches of token-id pairs, sized by token count.

Examples are sorted by length so that a batch holds sentences of similar length (little padding),
cut into batches whose padded size ``B * max_len`` stays within a token budget, and the order of
those batches is shuffled anew each epoch. The shuffle is seeded by ``(seed, epoch)``, so the data
order of any epoch can be rebuilt exactly and a resumed run continues at the batch where it stopped.

A batch for teacher forcing shifts the target by one position::

    tgt_in  = <sos> y_1 ... y_n
    tgt_out =       y_1 ... y_n <eos>
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from seqlab.errors import SeqlabError
from seqlab.text.specials import EOS, PAD, SOS

__all__ = ["Batch", "TokenBatcher", "example_length", "make_batch", "sequential_batches"]

Example = tuple[Sequence[int], Sequence[int]]


@dataclass
class Batch:
    """A padded batch of (source, target) pairs.

    Attributes:
        src: (B, S) long, source ids right-padded with ``<pad>``.
        tgt_in: (B, T) long, ``<sos> y``, right-padded (decoder input).
        tgt_out: (B, T) long, ``y <eos>``, right-padded (what the decoder must predict).
        n_tokens: number of non-pad entries of ``tgt_out`` (the loss normaliser).
        index: for every row, the id (position in the example list) of its example.
    """

    src: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    n_tokens: int
    index: list[int]

    def __len__(self) -> int:
        return len(self.index)

    def select_rows(self, rows: Sequence[int]) -> Batch:
        """The batch of rows ``rows`` only (a process's share in data-parallel training)."""
        index = torch.tensor(list(rows), dtype=torch.long, device=self.src.device)
        tgt_out = self.tgt_out.index_select(0, index)
        return Batch(src=self.src.index_select(0, index), tgt_in=self.tgt_in.index_select(0, index),
                     tgt_out=tgt_out, n_tokens=int(tgt_out.ne(PAD).sum()), index=[self.index[i] for i in rows])

    def to(self, device: torch.device | str) -> Batch:
        """The same batch with its tensors on ``device``."""
        return Batch(
            src=self.src.to(device),
            tgt_in=self.tgt_in.to(device),
            tgt_out=self.tgt_out.to(device),
            n_tokens=self.n_tokens,
            index=self.index,
        )


def _pad(rows: list[list[int]], width: int) -> Tensor:
    return torch.tensor([r + [PAD] * (width - len(r)) for r in rows], dtype=torch.long)


def make_batch(examples: Sequence[Example], index: Sequence[int]) -> Batch:
    """Pad ``examples`` (source ids, target ids; no specials) into a :class:`Batch`.

    Args:
        examples: the B (src_ids, tgt_ids) pairs of this batch. Targets may be empty (e.g. when
            only sources are translated).
        index: B example ids, kept in ``Batch.index``.

    Returns:
        The batch; ``S = max(1, max len(src))`` and ``T = max len(tgt) + 1``.
    """
    if len(examples) != len(index):
        raise ValueError(f"{len(examples)} examples but {len(index)} indices")
    if not examples:
        raise ValueError("cannot make an empty batch")
    src = [list(s) for s, _ in examples]
    tgt_in = [[SOS, *t] for _, t in examples]
    tgt_out = [[*t, EOS] for _, t in examples]
    S = max(1, max(len(s) for s in src))
    T = max(len(t) for t in tgt_out)
    return Batch(
        src=_pad(src, S),
        tgt_in=_pad(tgt_in, T),
        tgt_out=_pad(tgt_out, T),
        n_tokens=sum(len(t) for t in tgt_out),
        index=[int(i) for i in index],
    )


def example_length(example: Example) -> int:
    """Padded length an example costs in a batch: ``max(len(src), len(tgt) + 1)``."""
    src, tgt = example
    return max(len(src), len(tgt) + 1)


def _chunk_by_tokens(order: Sequence[int], lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Cut ``order`` (ids sorted by increasing length) into consecutive batches whose cost
    ``len(batch) * max(length)`` is at most ``batch_tokens``; an example longer than the budget
    forms a batch of its own."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        longest_if_added = max(longest, lengths[i])
        if current and (len(current) + 1) * longest_if_added > batch_tokens:
            batches.append(current)
            current, longest_if_added = [], lengths[i]
        current.append(i)
        longest = longest_if_added
    if current:
        batches.append(current)
    return batches


def _sorted_order(examples: Sequence[Example], seed: int | None) -> list[int]:
    """Example ids sorted by (padded length, source length), ties broken by a seeded random key
    (or by id when ``seed`` is None)."""
    tiebreak = list(range(len(examples)))
    if seed is not None:
        random.Random(seed).shuffle(tiebreak)
    return sorted(range(len(examples)), key=lambda i: (example_length(examples[i]), len(examples[i][0]), tiebreak[i]))


class TokenBatcher:
    """Token-budget batches over a fixed example list, shuffled per epoch, resumable.

    The batches themselves are built once (examples sorted by length with a random tiebreak
    seeded by ``seed``, then cut by :func:`_chunk_by_tokens`); each epoch visits all of them in an
    order drawn from a ``torch.Generator`` seeded by ``(seed, epoch)``.

    Args:
        examples: (src_ids, tgt_ids) pairs without specials.
        batch_tokens: budget for ``B * max(max(len(src)), max(len(tgt)) + 1)`` of a batch.
        shuffle: shuffle the batch order each epoch (else shortest batches first, every epoch).
        seed: seed of the tiebreak and of the per-epoch shuffles.
    """

    def __init__(self, examples: Sequence[Example], *, batch_tokens: int, shuffle: bool = True, seed: int = 0):
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be at least 1, got {batch_tokens}")
        if not examples:
            raise SeqlabError("no training examples to batch (is the training data empty after filtering?)")
        self.examples = examples
        self.batch_tokens = batch_tokens
        self.shuffle = shuffle
        self.seed = seed
        lengths = [example_length(e) for e in examples]
        self._batches = _chunk_by_tokens(_sorted_order(examples, seed), lengths, batch_tokens)

    def __len__(self) -> int:
        """Batches per epoch."""
        return len(self._batches)

    def _generator(self, epoch: int) -> torch.Generator:
        # one 63-bit seed from the pair (seed, epoch)
        mixed = (self.seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + 1) % (2**63)
        return torch.Generator().manual_seed(mixed)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The example ids of every batch of ``epoch``, in the order that epoch visits them."""
        if not self.shuffle:
            return [list(b) for b in self._batches]
        perm = torch.randperm(len(self._batches), generator=self._generator(epoch)).tolist()
        return [list(self._batches[p]) for p in perm]

    def batch(self, ids: Sequence[int]) -> Batch:
        """The padded :class:`Batch` of the given example ids."""
        return make_batch([self.examples[i] for i in ids], ids)

    def iterate(self, start_epoch: int = 0, start_batch: int = 0) -> Iterator[tuple[int, int, Batch]]:
        """Yield ``(epoch, batch_pos, batch)`` forever, starting at batch ``start_batch`` of
        ``start_epoch``; the caller stops it.

        To resume, pass the position of the first batch not yet trained on: after training on
        the batch yielded as ``(e, p)``, resume with ``iterate(e, p + 1)`` (a position past the
        end of an epoch moves on to the next one).
        """
        epoch, pos = start_epoch, start_batch
        while True:
            batches = self.epoch_batches(epoch)
            while pos < len(batches):
                yield epoch, pos, self.batch(batches[pos])
                pos += 1
            epoch, pos = epoch + 1, 0


def sequential_batches(examples: Sequence[Example], batch_tokens: int) -> list[Batch]:
    """Token-budget batches of every example, for evaluation.

    Examples are grouped by length (no randomness), so rows of a batch are not in input order:
    use ``Batch.index`` to put results back in the original order.

    Args:
        examples: (src_ids, tgt_ids) pairs without specials; targets may be empty.
        batch_tokens: budget as in :class:`TokenBatcher`.

    Returns:
        Batches covering every example exactly once, shortest first.
    """
    if batch_tokens < 1:
        raise ValueError(f"batch_tokens must be at least 1, got {batch_tokens}")
    lengths = [example_length(e) for e in examples]
    chunks = _chunk_by_tokens(_sorted_order(examples, None), lengths, batch_tokens)
    return [make_batch([examples[i] for i in ids], ids) for ids in chunks]
