"""Tasks: what one shape of sequence problem needs from the one training loop.

The trainer (:func:`seqlab.training.trainer.train`) knows nothing of translation, language
modelling or classification. It reads ``cfg.task``, makes ``task = get_task(cfg.task)(cfg)`` and
runs, top to bottom::

    data      = task.prepare(run_dir, resume=...)   # tokenizers trained+saved (or loaded), batches, dev
    model     = task.build_model(data)              # the nn.Module whose weights are checkpointed
    objective = task.objective(model)               # nn.Module: objective(batch, step=k) -> loss sums
    ... for each batch of data.batches:  loss_sum, nll_sum, n = objective(batch, step=k)
                                         backward (loss_sum / n), clip, optimizer step, LR step
    ... every train.eval_every steps:    metrics = task.evaluate(model, data); log as dev_<name>;
                                         echo task.summary(metrics); checkpoint last (and best)

One loop, one checkpoint format (``seqlab/training/checkpoint.py``) and one resume path serve
every task; a task never writes checkpoints or touches the optimiser.

How to add a task
-----------------
1. Write ``seqlab/tasks/<name>.py`` with one class (no base class needed; :class:`~seqlab.tasks.base.Task`
   is the Protocol it satisfies, ``seqlab/tasks/translation.py`` and ``seqlab/tasks/lm.py`` are
   worked examples). Class attributes give the config schema:

   * ``data_config``: the dataclass of the ``data`` section;
   * ``model_configs``: ``{model.type: dataclass}``; the first is the default type;
   * ``metrics``: ``{name: "max" | "min"}``, every dev metric ``evaluate`` reports (``train.best_metric``
     must be one of them); ``best_metric``: the default.

   Every ``data``/``model`` dataclass has ``check(self, cfg)`` (raise
   ``ConfigError("data.key", ...)`` naming the dotted key) and the data dataclass has
   ``with_absolute_paths()`` (paths resolved once, when a run starts); a model dataclass has a
   ``width`` property (the d of the ``noam`` schedule). Sections ``tokenizer``, ``train`` and
   ``decode`` are shared.
2. Methods (``self.cfg`` is the :class:`~seqlab.config.ExperimentConfig`):

   * ``prepare(run_dir, *, resume) -> TaskData``: read the data (errors name file and line),
     train and save the tokenizers into ``run_dir`` (or load them when ``resume``), and return
     ``TaskData(batches=..., dev=..., text=..., description=...)``. ``batches`` has ``len()``
     (batches per epoch) and ``iterate(epoch, pos)`` yielding ``(epoch, pos, batch)`` forever,
     deterministic in ``(train.seed, epoch)``, so a resumed run continues at the exact batch;
   * ``load(run_dir) -> TaskData``: the same without training data (``batches``/``dev`` None),
     for commands that use a trained run (:func:`seqlab.tasks.run.load_run` gives them the
     config, task, tokenizer(s) and model of any run folder);
   * ``build_model(data) -> nn.Module``: an untrained model (vocab sizes from ``data.text``);
   * ``objective(model) -> nn.Module``: its ``forward(batch, *, step)`` returns
     ``(loss_sum, nll_sum, n)``: the training loss summed over ``n`` units (tokens, examples,
     pairs), differentiable, and the plain NLL sum (detached). It must call the model through
     ``forward`` (``nn.Module.__call__``) of itself, so wrappers such as DistributedDataParallel
     see the call. :func:`seqlab.training.loss.output_layer_nll` is a fused loss a task may use;
   * ``evaluate(model, data) -> dict[str, float]``: dev metrics without prefix (``loss``,
     ``bleu``, ...), {} when there is no dev data; the trainer logs them as ``dev_<name>``;
   * ``summary(metrics) -> str``: one line for the progress echo, e.g. "dev loss 1.23, ppl 3.4".
3. Register the class in :data:`TASKS` below (``"name": "seqlab.tasks.<name>:<Class>"``).
4. Tests in ``tests/tasks/test_<name>.py``: a tiny task learned, resume equal to an uninterrupted
   run (``tests/tasks/test_lm.py`` shows both), bad data files named with their line.
"""

from __future__ import annotations

import importlib
from typing import Any

from seqlab.tasks.base import Task, TaskData

__all__ = ["TASKS", "Task", "TaskData", "get_task", "make_task"]

TASKS: dict[str, str] = {
    "translation": "seqlab.tasks.translation:TranslationTask",
    "chat": "seqlab.tasks.chat:ChatTask",
    "lm": "seqlab.tasks.lm:LanguageModelTask",
    "classification": "seqlab.tasks.classification:ClassificationTask",
    "word2vec": "seqlab.tasks.word2vec:Word2VecTask",
}
"""Task name (the config's ``task``) -> ``module:Class``, imported on first use."""


def get_task(name: str) -> type:
    """The task class registered as ``name``."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    module, _, cls = TASKS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def make_task(cfg: Any) -> Task:
    """The task object for an experiment config (``cfg.task``)."""
    return get_task(cfg.task)(cfg)
