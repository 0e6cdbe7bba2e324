"""Learning-rate schedules and the teacher-forcing schedule.

Every schedule is a multiplicative factor on the optimiser's base learning rate, as a function
of the 1-based update number ``step`` (the k-th call of ``optimizer.step()`` uses ``factor(k)``):

* ``noam``: factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)
  (Vaswani et al. 2017, eq. 3): linear warmup, then inverse square-root decay;
* ``cosine``: linear warmup to 1, then half a cosine down to ``min_ratio`` at ``total``;
* ``linear``: linear warmup to 1, then a straight line down to ``min_ratio`` at ``total``
  (word2vec's schedule: alpha falls linearly from 0.025 to 0.0001);
* ``inverse_sqrt``: linear warmup to 1, then sqrt(warmup / step) (fairseq's schedule);
* ``constant``: 1, after an optional linear warmup.

:func:`build_scheduler` wraps the factor in a ``torch.optim.lr_scheduler.LambdaLR``. Build the
optimiser with ``lr=cfg.lr``; the learning rate of update k is then ``cfg.lr * factor(k)``. For
``noam`` this makes ``cfg.lr`` the paper's scale factor (1.0 in the paper; the peak rate is
``cfg.lr * d_model^-0.5 * warmup^-0.5``); for the others ``cfg.lr`` is the peak rate.

The LambdaLR state (``scheduler.state_dict()``) holds only the step counter and the base rates:
the schedule's shape comes from the config given to :func:`build_scheduler`, so a resumed run
follows the config it is resumed with.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from seqlab.config import TrainConfig
from seqlab.errors import ConfigError

__all__ = [
    "build_scheduler",
    "constant",
    "inverse_sqrt",
    "noam",
    "warmup_linear",
    "teacher_forcing_ratio",
    "warmup_cosine",
]


def noam(step: int, *, d_model: int, warmup: int, factor: float = 1.0) -> float:
    """factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5), peak at ``step == warmup``.

    Args:
        step: 1-based update number (``step < 1`` is treated as 1).
        d_model: model width.
        warmup: number of warmup updates (at least 1).
        factor: overall scale.
    """
    step = max(step, 1)
    return factor * d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)


def _warmup_then_decay(step: int, warmup: int, total: int, min_ratio: float, fall: Callable[[float], float]) -> float:
    """step / warmup up to 1 at ``warmup``; then min_ratio + (1 - min_ratio) * fall(p) with progress
    p = (step - warmup) / (total - warmup) in [0, 1]; ``min_ratio`` after ``total``."""
    if step < warmup:
        return max(step, 0) / warmup
    if total <= warmup:
        return 1.0 if step <= total else min_ratio
    progress = min(1.0, (step - warmup) / (total - warmup))
    return min_ratio + (1.0 - min_ratio) * fall(progress)


def warmup_cosine(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup step / warmup up to 1 at ``warmup``, then a cosine down to ``min_ratio``.

    For warmup < step <= total, with progress p = (step - warmup) / (total - warmup):
    min_ratio + (1 - min_ratio) * (1 + cos(pi * p)) / 2. Stays at ``min_ratio`` after ``total``.
    """
    return _warmup_then_decay(step, warmup, total, min_ratio, lambda p: 0.5 * (1.0 + math.cos(math.pi * p)))


def warmup_linear(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup step / warmup up to 1 at ``warmup``, then a straight line down to ``min_ratio``.

    For warmup < step <= total, with progress p as in :func:`warmup_cosine`:
    min_ratio + (1 - min_ratio) * (1 - p). Stays at ``min_ratio`` after ``total``.
    """
    return _warmup_then_decay(step, warmup, total, min_ratio, lambda p: 1.0 - p)


def inverse_sqrt(step: int, *, warmup: int) -> float:
    """Linear warmup to 1 at ``warmup``, then sqrt(warmup / step); 1/sqrt(step) when warmup is 0."""
    step = max(step, 1)
    if step < warmup:
        return step / warmup
    return math.sqrt(max(warmup, 1) / step)


def constant(step: int, *, warmup: int = 0) -> float:
    """1, after a linear warmup step / warmup when ``warmup`` > 0."""
    if warmup > 0 and step < warmup:
        return max(step, 0) / warmup
    return 1.0


def _at_update(epoch: int, *, rate: Callable[[int], float]) -> float:
    # LambdaLR calls its lambda with last_epoch = number of scheduler.step() calls so far (0 for
    # the first update); schedules here count updates from 1.
    return rate(epoch + 1)


def _rate(cfg: TrainConfig, d_model: int) -> Callable[[int], float]:
    w = cfg.warmup_steps
    if w < 0:
        raise ConfigError("train.warmup_steps", f"must be at least 0, got {w}")
    if cfg.schedule == "noam":
        if w < 1:
            raise ConfigError("train.warmup_steps", "the noam schedule needs at least 1 warmup step")
        return functools.partial(noam, d_model=d_model, warmup=w, factor=1.0)
    if cfg.schedule in ("cosine", "linear"):
        if w >= cfg.max_steps:
            raise ConfigError(
                "train.warmup_steps",
                f"the {cfg.schedule} schedule needs warmup_steps ({w}) below train.max_steps ({cfg.max_steps})",
            )
        if not 0.0 <= cfg.min_lr_ratio <= 1.0:
            raise ConfigError("train.min_lr_ratio", f"must be in [0, 1], got {cfg.min_lr_ratio}")
        shape = warmup_cosine if cfg.schedule == "cosine" else warmup_linear
        return functools.partial(shape, warmup=w, total=cfg.max_steps, min_ratio=cfg.min_lr_ratio)
    if cfg.schedule == "inverse_sqrt":
        return functools.partial(inverse_sqrt, warmup=w)
    if cfg.schedule == "constant":
        return functools.partial(constant, warmup=w)
    raise ConfigError("train.schedule", f"unknown schedule {cfg.schedule!r}")


def build_scheduler(optimizer: Optimizer, cfg: TrainConfig, d_model: int) -> LambdaLR:
    """A LambdaLR giving update k the rate ``base_lr * factor(k)`` for ``cfg.schedule``.

    Args:
        optimizer: built with ``lr=cfg.lr`` (the base rate every factor multiplies).
        cfg: ``schedule``, ``warmup_steps``, ``max_steps`` (cosine total) and ``min_lr_ratio``.
        d_model: model width, used by ``noam``.

    Returns:
        The scheduler; call ``scheduler.step()`` after each ``optimizer.step()``.
    """
    return LambdaLR(optimizer, functools.partial(_at_update, rate=_rate(cfg, d_model)))


def teacher_forcing_ratio(step: int, cfg: TrainConfig) -> float:
    """Scheduled-sampling probability of feeding the gold token (Bengio et al. 2015), linear decay.

    ratio(step) = tf + (tf_min - tf) * min(1, step / decay_steps), with tf = ``cfg.teacher_forcing``,
    tf_min = ``cfg.teacher_forcing_min`` and decay_steps = ``cfg.teacher_forcing_decay_steps``;
    ``tf`` throughout when decay_steps is 0.

    Args:
        step: number of updates done so far (0 before the first).
        cfg: the training config.
    """
    tf, tf_min, n = cfg.teacher_forcing, cfg.teacher_forcing_min, cfg.teacher_forcing_decay_steps
    if n <= 0:
        return tf
    return tf + (tf_min - tf) * min(1.0, max(step, 0) / n)
