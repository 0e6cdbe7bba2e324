"""The task interface (a Protocol: tasks implement it without inheriting) and what ``prepare`` returns.

See :mod:`seqlab.tasks` for how the trainer uses it and how to add a task.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from torch import nn

__all__ = ["Batches", "Task", "TaskData"]


class Batches(Protocol):
    """Training batches, resumable at any position."""

    def __len__(self) -> int:
        """Batches per epoch."""

    def iterate(self, start_epoch: int = 0, start_batch: int = 0) -> Iterator[tuple[int, int, Any]]:
        """Yield ``(epoch, pos, batch)`` forever from batch ``start_batch`` of ``start_epoch``;
        the same ``(seed, epoch)`` gives the same batches."""


@dataclass
class TaskData:
    """What a task prepared for a run.

    Attributes:
        batches: the training batches (None when loaded for inference).
        dev: the task's dev data in whatever form its ``evaluate`` wants (None without dev data).
        text: the tokenizer(s) of the run (a :class:`~seqlab.text.pair.TokenizerPair`, a
            :class:`~seqlab.text.tokenizer.Tokenizer`, a vocabulary, ...).
        description: one line about the data for the start-up echo, e.g. "1200 pairs in 40 batches".
    """

    batches: Batches | None
    dev: Any
    text: Any
    description: str = ""


class Task(Protocol):
    """One shape of sequence problem, as the trainer sees it."""

    data_config: ClassVar[type]
    model_configs: ClassVar[dict[str, type]]
    metrics: ClassVar[dict[str, str]]
    best_metric: ClassVar[str]

    def __init__(self, cfg: Any) -> None: ...

    def prepare(self, run_dir: Path, *, resume: bool) -> TaskData: ...

    def load(self, run_dir: Path) -> TaskData: ...

    def build_model(self, data: TaskData) -> nn.Module: ...

    def objective(self, model: nn.Module) -> nn.Module:
        """A module whose ``forward(batch, *, step)`` returns ``(loss_sum, nll_sum, n)``."""

    def evaluate(self, model: nn.Module, data: TaskData) -> dict[str, float]: ...

    def summary(self, metrics: dict[str, float]) -> str: ...

