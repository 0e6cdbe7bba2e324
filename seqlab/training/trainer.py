"""The one training loop, for every task, top to bottom.

    set up     run folder, ``task.prepare`` (data, tokenizers), model, optimiser, schedule, resume
    train      for each batch: task objective (forward), backward, clip, Adam step, LR step
    evaluate   every ``eval_every`` steps: ``task.evaluate`` on dev data, checkpoint ``last``
               (and ``best`` by ``train.best_metric``)
    stop       at max_steps / max_epochs / the time budget / patience / Ctrl-C; checkpoint

What differs between translation, language modelling, classification, ... (the data, the model,
the loss, the dev metrics) sits behind the task interface of :mod:`seqlab.tasks`.

A run folder holds ``config.yaml`` (resolved), the tokenizer file(s) the task writes,
``checkpoints/{last,best}/`` (safetensors + JSON, written atomically) and ``metrics.jsonl``.
``resume=True`` restores model, optimiser, scheduler, step counters, data position and RNG state,
so a stopped and resumed run ends with the same weights as an uninterrupted one
(``tests/training/test_trainer.py``, ``tests/tasks/``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from seqlab import __version__
from seqlab.config import ExperimentConfig, config_to_dict, load_config, save_config
from seqlab.errors import CheckpointError
from seqlab.precision import autocast_context, describe_precision, grad_scaler, resolve_precision
from seqlab.tasks import Task, TaskData, make_task
from seqlab.devices import to_device
from seqlab.training.distributed import Cluster, shard
from seqlab.training.checkpoint import (
    RUN_FORMAT,
    check_run_format,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from seqlab.training.optimizer import build_optimizer, clip_gradients
from seqlab.training.rng import capture_rng_state, restore_rng_state, seed_everything
from seqlab.training.schedule import build_scheduler, teacher_forcing_ratio

__all__ = ["RUN_FORMAT", "TrainResult", "train"]  # RUN_FORMAT: re-exported from seqlab.training.checkpoint


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    epoch: int
    stopped_because: str
    best: float | None
    last_eval: dict = field(default_factory=dict)


@dataclass
class _LoopState:
    """What the loop counts; saved in every ``last`` checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_pos: int = 0
    best: float | None = None
    bad_evals: int = 0
    train_seconds: float = 0.0


@dataclass
class _Run:
    """Everything one training run holds, built by :func:`_set_up`."""

    cfg: ExperimentConfig
    run_dir: Path
    task: Task
    data: TaskData
    model: nn.Module
    objective: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loop: _LoopState
    echo: object
    cluster: Cluster = field(default_factory=Cluster)
    precision: str = "fp32"
    """What ``train.precision`` resolved to on this hardware: ``fp32``, ``bf16`` or ``fp16``."""
    scaler: torch.amp.GradScaler | None = None
    """Loss scaling for fp16 (disabled, a no-op, otherwise)."""
    clock: tuple[float, float] = (0.0, 0.0)
    """(seconds trained by earlier invocations, ``time.monotonic()`` when this one's loop started)."""

    def seconds(self) -> float:
        """Wall-clock seconds of training so far, over every invocation of the run (evaluations included)."""
        before, started = self.clock
        return before + time.monotonic() - started

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.jsonl"


def train(cfg: ExperimentConfig | None, run_dir: str | Path, *, resume: bool = False,
          overrides: list[str] | None = None, max_minutes: float | None = None, progress: bool = True,
          echo=print) -> TrainResult:
    """Train ``cfg`` into ``run_dir`` (or continue the run there with ``resume=True``).

    Args:
        cfg: the experiment; ignored when resuming (the run's own ``config.yaml`` is used, with
            ``overrides`` applied, e.g. ``train.max_steps=8000`` to extend a finished run).
        run_dir: the run folder.
        resume: continue from ``checkpoints/last``.
        max_minutes: wall-clock budget for this invocation (overrides ``train.max_minutes``).
        progress: show a progress bar.
        echo: where one-line summaries go.
    """
    run = _set_up(cfg, Path(run_dir), resume, overrides, echo)
    finished = False
    try:
        tc, loop = run.cfg.train, run.loop
        budget = max_minutes if max_minutes is not None else tc.max_minutes
        run.clock = (loop.train_seconds, time.monotonic())
        stopped = _train_loop(run, budget, progress and run.cluster.main)
        loop.train_seconds = run.seconds()
        if loop.step % tc.eval_every != 0 or loop.step == 0:
            _evaluate_and_save(run)
        run.echo(f"stopped at step {loop.step} ({stopped}); run folder {run.run_dir}")
        last_eval = _last_eval(run.metrics_path) if run.cluster.main else {}
        finished = True
    finally:
        run.objective = None  # DDP holds the process group: let it go before the group is destroyed
        run.cluster.close(wait=finished)
    return TrainResult(run.run_dir, loop.step, loop.epoch, stopped, loop.best, last_eval)


# --------------------------------------------------------------------------------------------
# set up


def _set_up(cfg: ExperimentConfig | None, run_dir: Path, resume: bool, overrides: list[str] | None,
            echo) -> _Run:
    """Run folder, task data, model, optimiser and schedule; the saved state when resuming.

    With several processes, rank 0 writes the run folder (tokenizers, config) first and the other
    ranks then read it, as a resumed run does.
    """
    if resume:
        _check_resumable(run_dir)
        cfg = load_config(run_dir / "config.yaml", overrides)
    else:
        cfg = dataclasses.replace(cfg, data=cfg.data.with_absolute_paths())
    tc = cfg.train
    cluster = Cluster.from_environment(tc.device)
    if not cluster.main:
        echo = _silent
    elif not resume:
        _make_run_dir(run_dir)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    seed_everything(tc.seed)

    task = make_task(cfg)
    if cluster.main:
        data = task.prepare(run_dir, resume=resume)
        if not resume:
            save_config(cfg, run_dir / "config.yaml")
    cluster.barrier()
    if not cluster.main:
        data = task.prepare(run_dir, resume=True)
    model = task.build_model(data).to(cluster.device)
    if not cluster.main:  # the same initial weights (DDP copies rank 0's), other dropout draws
        seed_everything(tc.seed + 7919 * cluster.rank)
    optimizer = build_optimizer(model, tc)
    scheduler = build_scheduler(optimizer, tc, cfg.model.width)
    objective = cluster.wrap(task.objective(model))
    precision = resolve_precision(tc.precision, cluster.device)  # fp32 or bf16 on this hardware
    run = _Run(cfg, run_dir, task, data, model, objective, optimizer, scheduler, _LoopState(), echo, cluster,
               precision, grad_scaler(precision, cluster.device))
    n_params = sum(p.numel() for p in model.parameters())
    ranks = f", {cluster.world} processes" if cluster.world > 1 else ""
    echo(f"{cfg.name}: {type(model).__name__} with {n_params / 1e6:.2f}M parameters on {cluster.device}{ranks}, "
         f"{data.description}, precision {describe_precision(tc.precision, precision, cluster.device)}")
    if resume:
        _restore(run)
    return run


def _silent(*_args) -> None:
    """The echo of ranks other than 0."""


def _check_resumable(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: no such run folder to resume")
    if "last" not in list_checkpoints(run_dir / "checkpoints"):
        raise CheckpointError(f"{run_dir}: nothing to resume, no checkpoints/last in the run folder")


def _make_run_dir(run_dir: Path) -> None:
    if list_checkpoints(run_dir / "checkpoints"):
        raise CheckpointError(f"{run_dir} already holds a trained run; use --resume to continue it, "
                              "or choose another folder with --out")
    run_dir.mkdir(parents=True, exist_ok=True)


def _restore(run: _Run) -> None:
    """Model, optimiser, scheduler, loop counters and RNG state from ``checkpoints/last``."""
    check_run_format(run.run_dir, "last")
    meta = load_checkpoint(run.run_dir / "checkpoints", "last", model=run.model, optimizer=run.optimizer,
                           scheduler=run.scheduler)
    state = dict(meta["trainer_state"])
    rank_rng = state.pop("rank_rng", None)
    if "scaler" in state:
        run.scaler.load_state_dict(state.pop("scaler"))
    saved_world = 1 if rank_rng is None else len(rank_rng)
    if saved_world != run.cluster.world:
        raise CheckpointError(f"{run.run_dir}/checkpoints/last was saved by {saved_world} process(es); resume it "
                              f"with the same number (this run has {run.cluster.world})")
    run.loop = _LoopState(**state)
    restore_rng_state(*(meta["rng_state"] if rank_rng is None else rank_rng[run.cluster.rank]))
    if run.cluster.main:
        _truncate_log(run.metrics_path, run.loop.step)
    run.echo(f"resumed {run.run_dir} at step {run.loop.step} (epoch {run.loop.epoch}, batch {run.loop.batch_pos})")


# --------------------------------------------------------------------------------------------
# train


def _train_loop(run: _Run, budget: float | None, progress: bool) -> str:
    """Step until a stopping condition; return why it stopped."""
    tc, loop = run.cfg.train, run.loop
    def autocast():
        return autocast_context(run.precision, run.cluster.device)

    start = time.monotonic()
    window = _new_window()
    bar = tqdm(total=tc.max_steps, initial=loop.step, disable=not progress, dynamic_ncols=True, unit="step")
    batches = run.data.batches.iterate(loop.epoch, loop.batch_pos)
    n_batches = len(run.data.batches)
    stopped = "max_steps"
    run.model.train()
    with _stop_on_signal() as stop_requested:
        while True:
            if loop.step >= tc.max_steps:
                stopped = "max_steps"
                break
            out_of_time = budget is not None and (time.monotonic() - start) / 60 >= budget
            if run.cluster.any(stop_requested() or out_of_time):  # every rank stops at the same step
                stopped = "time budget" if out_of_time else "interrupted"
                break
            epoch, pos, batch = next(batches)
            if tc.max_epochs is not None and epoch >= tc.max_epochs:
                stopped = "max_epochs"
                break
            ratio = teacher_forcing_ratio(loop.step, tc)
            loss_sum, nll_sum, n, grad_norm = _train_step(run, batch, autocast)
            run.scheduler.step()
            loop.step += 1
            loop.epoch, loop.batch_pos = (epoch, pos + 1) if pos + 1 < n_batches else (epoch + 1, 0)
            window["loss"] += float(loss_sum)
            window["nll"] += float(nll_sum)
            window["tokens"] += n
            window["grad_norms"].append(round(grad_norm, 5))
            bar.update(1)
            if loop.step % tc.log_every == 0:
                elapsed = time.monotonic() - window["time"]
                record = {"step": loop.step, "epoch": epoch, "precision": run.precision,
                          "loss": window["loss"] / window["tokens"],
                          "ppl": math.exp(min(window["nll"] / window["tokens"], 50)),
                          "lr": run.scheduler.get_last_lr()[0], "grad_norm": grad_norm, "teacher_forcing": ratio,
                          "tokens_per_s": window["tokens"] / max(elapsed, 1e-9),
                          "grad_norms": window["grad_norms"]}  # the global norm of every step
                if run.cluster.main:
                    _log(run.metrics_path, record)
                bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2e}")
                window = _new_window()
            if loop.step % tc.eval_every == 0:
                if _evaluate_and_save(run):
                    stopped = "patience"
                    break
                run.model.train()
            elif tc.checkpoint_every and loop.step % tc.checkpoint_every == 0:
                _checkpoint(run, "last", {})
    bar.close()
    return stopped


def _new_window() -> dict:
    """Sums over the steps since the last log line."""
    return {"loss": 0.0, "nll": 0.0, "tokens": 0, "time": time.monotonic(), "grad_norms": []}


def _train_step(run: _Run, batch, autocast) -> tuple[torch.Tensor, torch.Tensor, int, float]:
    """One optimisation step on ``batch``: the task's objective, backward, clipping, optimizer step.

    The loss is the objective's loss sum divided by its number of units (real target tokens for
    translation and language models).

    Returns:
        (loss sum, NLL sum, units, global gradient norm before clipping).
    """
    tc, cluster = run.cfg.train, run.cluster
    batch = to_device(shard(batch, cluster.rank, cluster.world), cluster.device)
    with autocast():
        loss_sum, nll_sum, n = run.objective(batch, step=run.loop.step)
    run.optimizer.zero_grad(set_to_none=True)
    scaler = run.scaler
    if cluster.world == 1:
        scaler.scale(loss_sum / n).backward()
    else:  # DDP averages over ranks: each rank scales by world / N so the mean is sum_r loss_r / N
        total_loss, nll_sum, n = cluster.sum([float(loss_sum.detach()), float(nll_sum), float(n)])
        scaler.scale(loss_sum * (cluster.world / n)).backward()
        loss_sum = torch.tensor(total_loss)
    scaler.unscale_(run.optimizer)  # fp16: true gradients before clipping; otherwise nothing
    grad_norm = clip_gradients(run.model.parameters(), clip_norm=tc.clip_norm, clip_value=tc.clip_value)
    scaler.step(run.optimizer)  # the optimizer's step (skipped by fp16 when a gradient overflowed)
    scaler.update()
    return loss_sum.detach(), nll_sum, n, grad_norm


@contextlib.contextmanager
def _stop_on_signal():
    """Turn Ctrl-C / SIGTERM into a request to stop after the current step (then checkpoint)."""
    requested = []

    def handler(signum, frame):
        if requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        requested.append(signum)
        print("\nstopping after this step and saving a checkpoint (Ctrl-C again to abort)", flush=True)

    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: bool(requested)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# --------------------------------------------------------------------------------------------
# evaluate and checkpoint


def _evaluate_and_save(run: _Run) -> bool:
    """Evaluate, log, save ``last`` (and ``best``); return True when patience has run out.

    Every rank calls it (the RNG states of all ranks go into ``last``); rank 0 evaluates and writes.
    """
    tc, loop = run.cfg.train, run.loop
    if not run.cluster.main:
        _checkpoint(run, "last", {})
        return run.cluster.any(False)
    metrics = run.task.evaluate(run.model, run.data)
    logged = {f"dev_{k}": v for k, v in metrics.items()}
    if metrics:
        _log(run.metrics_path, {"step": loop.step, "train_seconds": round(run.seconds(), 2), **logged})
        value = metrics[tc.best_metric]
        improved = _better(run.task.metrics[tc.best_metric], value, loop.best)
        if improved:
            loop.best, loop.bad_evals = value, 0
        else:
            loop.bad_evals += 1
        run.echo(f"step {loop.step}: {run.task.summary(metrics)}" + (" (best)" if improved else ""))
    else:
        improved = True
    _checkpoint(run, "last", logged)
    if improved:
        _checkpoint(run, "best", logged, with_optimizer=False)
    return run.cluster.any(tc.patience is not None and loop.bad_evals >= tc.patience)


def _better(direction: str, value: float, best: float | None) -> bool:
    """Whether ``value`` beats ``best`` for a metric to ``direction`` ("max" or "min")."""
    if best is None:
        return True
    return value > best if direction == "max" else value < best


def _checkpoint(run: _Run, name: str, metrics: dict, with_optimizer: bool = True) -> None:
    """Save ``checkpoints/<name>``; with the optimiser, schedule, loop and RNG state unless for ``best``.

    ``last`` is saved by every rank together: rank 0 writes it with the RNG state of each rank.
    """
    full = with_optimizer
    trainer_state = {**vars(run.loop), "train_seconds": run.seconds()} if full else None
    if full and run.scaler.is_enabled():
        trainer_state["scaler"] = run.scaler.state_dict()
    if full and run.cluster.world > 1:
        rank_rng = run.cluster.gather(capture_rng_state())
        if trainer_state is not None and rank_rng is not None:
            trainer_state["rank_rng"] = rank_rng
    if not run.cluster.main:
        return
    save_checkpoint(
        run.run_dir / "checkpoints", name, model=run.model,
        optimizer=run.optimizer if full else None, scheduler=run.scheduler if full else None,
        meta={"run_format": RUN_FORMAT, "seqlab_version": __version__, "step": run.loop.step,
              "precision": run.precision, "config": config_to_dict(run.cfg), "metrics": metrics},
        rng=capture_rng_state() if full else None,
        trainer_state=trainer_state,
    )


# --------------------------------------------------------------------------------------------
# metrics.jsonl


def _log(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """Drop records written after ``step`` (by a run killed after its last checkpoint)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and json.loads(ln).get("step", 0) <= step]
    path.write_text("".join(ln + "\n" for ln in keep), encoding="utf-8")


def _last_eval(metrics_path: Path) -> dict:
    """The last dev-evaluation record of the log ({} when there is none)."""
    if not metrics_path.exists():
        return {}
    records = [json.loads(ln) for ln in metrics_path.read_text(encoding="utf-8").splitlines() if ln]
    evals = [r for r in records if any(k.startswith("dev_") for k in r)]
    return evals[-1] if evals else {}
