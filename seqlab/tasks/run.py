"""A trained run folder, loaded for use: its config, task, tokenizer(s) and model at one checkpoint.

Commands that use a trained model (``seqlab generate``, ``seqlab classify``, ...) start with
:func:`load_run`; it works for every task, since the task rebuilds its own model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from seqlab.config import ExperimentConfig, load_config
from seqlab.errors import CheckpointError, SeqlabError
from seqlab.tasks import Task, TaskData, make_task
from seqlab.training.checkpoint import check_run_format, list_checkpoints, load_checkpoint

__all__ = ["LoadedRun", "load_run"]


@dataclass
class LoadedRun:
    """A trained run: ``model`` in eval mode, ``data.text`` its tokenizer(s)."""

    run_dir: Path
    config: ExperimentConfig
    task: Task
    data: TaskData
    model: nn.Module


def load_run(run_dir: str | Path, *, checkpoint: str = "best", task: str | None = None) -> LoadedRun:
    """Load ``run_dir`` (written by ``seqlab train``) at checkpoint ``best`` or ``last``.

    Args:
        run_dir: the run folder.
        checkpoint: which checkpoint.
        task: when given, the task the run must be (e.g. ``"lm"`` for ``seqlab generate``).

    Raises:
        CheckpointError: not a run folder, no such checkpoint, another format.
        SeqlabError: the run is of another task than ``task``.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise CheckpointError(f"{run_dir}: not a seqlab run folder (no config.yaml)")
    available = list_checkpoints(run_dir / "checkpoints")
    if checkpoint not in available:
        raise CheckpointError(f"{run_dir}: no checkpoint {checkpoint!r} (available: {', '.join(available) or 'none'})")
    check_run_format(run_dir, checkpoint)
    cfg = load_config(run_dir / "config.yaml")
    if task is not None and cfg.task != task:
        raise SeqlabError(f"{run_dir}: a {cfg.task!r} run; this command needs a {task!r} run")
    the_task = make_task(cfg)
    data = the_task.load(run_dir)
    model = the_task.build_model(data)
    load_checkpoint(run_dir / "checkpoints", checkpoint, model=model)
    return LoadedRun(run_dir, cfg, the_task, data, model.eval())
