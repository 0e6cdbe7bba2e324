"""Plain text for language models: reading it, and batches of contiguous blocks of its tokens.

A language model is trained on one long stream of token ids x_1 .. x_N (the documents of the
text, each followed by ``<eos>``). A training example is a window of ``block_size`` = T tokens
and the same window shifted by one::

    inputs  = x_s     ... x_{s+T-1}
    targets = x_{s+1} ... x_{s+T}          (predict the next token at every position)

:class:`BlockBatcher` draws the window starts s in one of two ways, both determined by
``(seed, epoch)`` alone so that a resumed run continues at the exact batch where it stopped:

* ``random`` (as nanoGPT): uniformly random starts, so windows overlap and cover every offset;
* ``tiled``: the non-overlapping windows s = 0, T, 2T, ... in an order shuffled per epoch, so
  every token is a target exactly once per epoch.

An epoch is ``(N - 1) // T`` windows either way (one pass over the tokens).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from seqlab.data.readers import _Problems, _text_lines
from seqlab.errors import DataError

__all__ = ["BUILTIN_TEXTS", "BlockBatcher", "LMBatch", "read_text"]

BUILTIN_TEXTS = {"builtin:hello": "hello\n"}
"""Built-in texts accepted wherever a text file is (the courses' first example)."""


def read_text(path: str) -> list[str]:
    """The lines of a UTF-8 text file (or a built-in text), without their line ends.

    Raises:
        DataError: the file is missing, a line is not UTF-8 (naming the line and byte), or the
            file holds no text.
    """
    if path in BUILTIN_TEXTS:
        return BUILTIN_TEXTS[path].splitlines()
    lines = [text for _, text in _text_lines(str(path), _Problems(str(path), "raise"))]
    if not any(line.strip() for line in lines):
        raise DataError(path, None, "the file is empty; expected UTF-8 text")
    return lines


@dataclass
class LMBatch:
    """B windows of T tokens: ``inputs`` (B, T) and ``targets`` (B, T), the inputs shifted by one."""

    inputs: Tensor
    targets: Tensor

    def to(self, device: torch.device | str) -> LMBatch:
        return LMBatch(self.inputs.to(device), self.targets.to(device))


def windows(ids: Tensor, starts: Tensor, block_size: int) -> LMBatch:
    """The windows of ``ids`` (N,) starting at ``starts`` (B,): inputs/targets (B, block_size)."""
    index = starts[:, None] + torch.arange(block_size + 1)  # (B, T + 1)
    rows = ids[index]  # (B, T + 1)
    return LMBatch(rows[:, :-1], rows[:, 1:])


class BlockBatcher:
    """Batches of ``rows`` windows of ``block_size`` tokens from one token stream, resumable.

    Args:
        ids: (N,) the token stream.
        block_size: T, tokens per window.
        rows: B, windows per batch.
        windows: ``random`` or ``tiled`` (see the module docstring).
        seed: with the epoch, determines every batch.
        source: the file the stream came from, for error messages.
    """

    def __init__(self, ids: Tensor, *, block_size: int, rows: int, windows: str = "random", seed: int = 0,
                 source: str = "the text"):
        if ids.numel() < block_size + 1:
            raise DataError(source, None, f"{ids.numel()} tokens, fewer than data.block_size + 1 = "
                            f"{block_size + 1}; use more text or a smaller block")
        if windows not in ("random", "tiled"):
            raise ValueError(f"windows must be random or tiled, got {windows!r}")
        self.ids, self.block_size, self.rows, self.windows, self.seed = ids, block_size, rows, windows, seed
        self.n_windows = (ids.numel() - 1) // block_size

    def __len__(self) -> int:
        """Batches per epoch."""
        return -(-self.n_windows // self.rows)

    def _generator(self, epoch: int) -> torch.Generator:
        mixed = (self.seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + 1) % (2**63)
        return torch.Generator().manual_seed(mixed)

    def epoch_starts(self, epoch: int) -> Tensor:
        """(len(self) * rows,) window starts of every batch of ``epoch``, in order."""
        g = self._generator(epoch)
        n = len(self) * self.rows
        if self.windows == "random":
            return torch.randint(0, self.ids.numel() - self.block_size, (n,), generator=g)
        tiles = torch.randperm(self.n_windows, generator=g) * self.block_size
        return tiles.repeat(-(-n // self.n_windows))[:n]  # the last batch is topped up from the start

    def iterate(self, start_epoch: int = 0, start_batch: int = 0) -> Iterator[tuple[int, int, LMBatch]]:
        """Yield ``(epoch, pos, batch)`` forever from batch ``start_batch`` of ``start_epoch``."""
        epoch, pos = start_epoch, start_batch
        while True:
            starts = self.epoch_starts(epoch).view(len(self), self.rows)  # (batches, B)
            while pos < len(self):
                yield epoch, pos, windows(self.ids, starts[pos], self.block_size)
                pos += 1
            epoch, pos = epoch + 1, 0
