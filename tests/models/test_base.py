from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from torch import Tensor

from seqlab.models.base import DecoderState


@dataclass(kw_only=True)
class _GroupedState(DecoderState):
    rows: Tensor | None = None  # (B*group, H) one row per hypothesis
    memory: Tensor | None = None  # (B, S) one row per source sentence
    per_source: ClassVar[tuple[str, ...]] = ("memory",)


def test_select_reorders_rows_and_follows_their_source():
    state = _GroupedState(rows=torch.arange(6.0)[:, None], memory=torch.tensor([[10.0], [20.0]]), group=3)
    picked = state.select(torch.tensor([5, 3, 3]))  # sentence 0 dropped, sentence 1's beams reordered
    assert picked.rows.flatten().tolist() == [5.0, 3.0, 3.0] and picked.memory.flatten().tolist() == [20.0]
    with pytest.raises(ValueError, match="single old group"):
        state.select(torch.tensor([0, 1, 3, 3, 4, 5]))


def test_select_never_reads_the_index_off_the_cpu():
    """Beam search calls select at every step; a read of the index on the host would wait for the
    device. Meta tensors have no values, so any such read fails."""
    meta = torch.device("meta")
    state = _GroupedState(rows=torch.zeros(6, 4, device=meta), memory=torch.zeros(2, 5, device=meta), group=3)
    picked = state.select(torch.zeros(3, dtype=torch.long, device=meta))
    assert picked.rows.shape == (3, 4) and picked.memory.shape == (1, 5) and picked.rows.device == meta
    again = state.repeat_rows(2)
    assert again.rows.shape == (12, 4) and again.group == 6
