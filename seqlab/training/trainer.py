"""The training loop for sequence-to-sequence models, top to bottom.

    set up  ->  for each batch: forward, label-smoothed loss, backward, clip, Adam step, LR step
            ->  every ``eval_every`` steps: dev loss / BLEU, checkpoint ``last`` (and ``best``)
            ->  stop at max_steps / max_epochs / the time budget / patience; checkpoint

A run folder holds ``config.yaml`` (resolved), ``tokenizer.json``, ``checkpoints/{last,best}/``
(safetensors + JSON, written atomically) and ``metrics.jsonl``. ``resume=True`` restores model,
optimiser, scheduler, step counters, data position and RNG state, so a stopped and resumed run ends
with the same weights as an uninterrupted one (``tests/training/test_trainer.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from seqlab import __version__
from seqlab.config import ExperimentConfig, config_to_dict, load_config, save_config
from seqlab.data.batching import TokenBatcher
from seqlab.data.dialogs import chat_splits, fit_context
from seqlab.data.readers import read_parallel
from seqlab.errors import CheckpointError, SeqlabError
from seqlab.evaluation.evaluate import evaluate_pairs
from seqlab.evaluation.metrics import teacher_forced_nll
from seqlab.models.build import build_model
from seqlab.text.pair import TokenizerPair
from seqlab.text.specials import SEP
from seqlab.training.checkpoint import (
    list_checkpoints,
    load_checkpoint,
    read_meta,
    save_checkpoint,
)
from seqlab.training.loss import output_layer_nll
from seqlab.training.optimizer import build_optimizer, clip_gradients
from seqlab.training.rng import capture_rng_state, restore_rng_state, seed_everything
from seqlab.training.schedule import build_scheduler, teacher_forcing_ratio

__all__ = ["RUN_FORMAT", "TrainResult", "load_corpus", "train"]

RUN_FORMAT = "seqlab-run/1"


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
    step: int = 0
    epoch: int = 0
    batch_pos: int = 0
    best: float | None = None
    bad_evals: int = 0
    train_seconds: float = 0.0


def load_corpus(spec, cfg: ExperimentConfig) -> list[tuple[str, str]]:
    """Read one ``data`` entry with the config's format, error policy and direction."""
    return read_parallel(spec, format=cfg.data.format, on_error=cfg.data.on_error, reverse=cfg.data.reverse)


def _encode_filtered(tokenizers: TokenizerPair, pairs, max_len: int, label: str, fit_source=None) -> list:
    """Token ids of each pair, dropping pairs longer than ``max_len`` tokens (with a warning).

    ``fit_source(ids, limit)``, when given, first cuts each source to ``max_len`` ids its own way
    (a chat context loses its oldest turns).
    """
    encoded = tokenizers.encode_pairs(pairs)
    if fit_source is not None:
        encoded = [(fit_source(s, max_len), t) for s, t in encoded]
    kept = [(s, t) for s, t in encoded if 0 < len(s) <= max_len and 0 < len(t) <= max_len]
    if len(kept) < len(encoded):
        warnings.warn(f"{label}: skipped {len(encoded) - len(kept)} of {len(encoded)} pairs longer than "
                      f"data.max_len={max_len} tokens (or empty after tokenisation)", stacklevel=2)
    if not kept:
        raise SeqlabError(f"{label}: no training pairs left after filtering by data.max_len={max_len}")
    return kept


def _with_absolute_data_paths(cfg: ExperimentConfig) -> ExperimentConfig:
    """The config with file paths made absolute, so ``--resume`` works from any directory."""

    def absolute(spec):
        if spec is None:
            return None
        if isinstance(spec, list):
            return [absolute(s) for s in spec]
        return spec if spec.startswith("builtin:") else str(Path(spec).resolve())

    data = dataclasses.replace(cfg.data, train=absolute(cfg.data.train), dev=absolute(cfg.data.dev),
                               test=absolute(cfg.data.test))
    return dataclasses.replace(cfg, data=data)


def _vocab(tokenizer) -> list[str]:
    return [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)]


def _better(metric: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value > best if metric == "bleu" else value < best


def _prepare_run_dir(run_dir: Path, resume: bool) -> None:
    if resume:
        if not run_dir.is_dir():
            raise CheckpointError(f"{run_dir}: no such run folder to resume")
        if "last" not in list_checkpoints(run_dir / "checkpoints"):
            raise CheckpointError(f"{run_dir}: nothing to resume, no checkpoints/last in the run folder")
        return
    if list_checkpoints(run_dir / "checkpoints"):
        raise CheckpointError(f"{run_dir} already holds a trained run; use --resume to continue it, "
                              "or choose another folder with --out")
    run_dir.mkdir(parents=True, exist_ok=True)


def _log(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """Drop records written after ``step`` (by a run killed after its last checkpoint)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and json.loads(ln).get("step", 0) <= step]
    path.write_text("".join(ln + "\n" for ln in keep), encoding="utf-8")


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
    run_dir = Path(run_dir)
    _prepare_run_dir(run_dir, resume)
    if resume:
        cfg = load_config(run_dir / "config.yaml", overrides)
    tc = cfg.train
    budget = max_minutes if max_minutes is not None else tc.max_minutes
    if tc.threads:
        torch.set_num_threads(tc.threads)
    seed_everything(tc.seed)

    # ---- data and tokenizers
    if cfg.task == "chat":
        train_pairs, dev_pairs = chat_splits(cfg.data, tc.seed)
    else:
        train_pairs = load_corpus(cfg.data.train, cfg)
        dev_pairs = load_corpus(cfg.data.dev, cfg) if cfg.data.dev else []
    if resume:
        tokenizers = TokenizerPair.load(run_dir)
    else:
        cfg = _with_absolute_data_paths(cfg)
        tokenizers = TokenizerPair.train(train_pairs, cfg.tokenizer)
        tokenizers.save(run_dir)
        save_config(cfg, run_dir / "config.yaml")
    fit_source = None
    if cfg.task == "chat" and cfg.data.context_turns > 0:
        sep = tokenizers.src.special_id(SEP)
        fit_source = lambda ids, limit: fit_context(ids, limit, sep)  # noqa: E731
    examples = _encode_filtered(tokenizers, train_pairs, cfg.data.max_len, str(cfg.data.train), fit_source)
    batcher = TokenBatcher(examples, batch_tokens=tc.batch_tokens, shuffle=True, seed=tc.seed)
    dev_bleu_pairs = dev_pairs[: cfg.data.dev_size]

    # ---- model, optimiser, schedule
    model = build_model(cfg.model, tokenizers.src.vocab_size, tokenizers.tgt.vocab_size,
                        src_vocab=_vocab(tokenizers.src), tgt_vocab=_vocab(tokenizers.tgt))
    optimizer = build_optimizer(model, tc)
    d_model = getattr(cfg.model, "d_model", getattr(cfg.model, "hidden", 256))
    scheduler = build_scheduler(optimizer, tc, d_model)
    loop = _LoopState()
    metrics_path = run_dir / "metrics.jsonl"
    if resume:
        found = read_meta(run_dir / "checkpoints", "last").get("run_format")
        if found != RUN_FORMAT:
            raise CheckpointError(f"{run_dir}/checkpoints/last/meta.json: run format {found!r}, this seqlab "
                                  f"reads {RUN_FORMAT!r}")
        meta = load_checkpoint(run_dir / "checkpoints", "last", model=model, optimizer=optimizer, scheduler=scheduler)
        loop = _LoopState(**meta["trainer_state"])
        restore_rng_state(*meta["rng_state"])
        _truncate_log(metrics_path, loop.step)
        echo(f"resumed {run_dir} at step {loop.step} (epoch {loop.epoch}, batch {loop.batch_pos})")
    n_params = sum(p.numel() for p in model.parameters())
    echo(f"{cfg.name}: {type(model).__name__} with {n_params / 1e6:.2f}M parameters, "
         f"{len(examples)} training pairs in {len(batcher)} batches, vocab {tokenizers.src.vocab_size}/"
         f"{tokenizers.tgt.vocab_size}")

    def checkpoint(name: str, metrics: dict, with_optimizer: bool = True) -> None:
        save_checkpoint(
            run_dir / "checkpoints", name, model=model,
            optimizer=optimizer if with_optimizer else None, scheduler=scheduler if with_optimizer else None,
            meta={"run_format": RUN_FORMAT, "seqlab_version": __version__, "step": loop.step,
                  "config": config_to_dict(cfg), "metrics": metrics},
            rng=capture_rng_state() if with_optimizer else None,
            trainer_state=vars(loop).copy() if with_optimizer else None,
        )

    # dev pairs as ids, encoded once for the dev loss of every evaluation: (sources, targets)
    dev_encoded = []
    if dev_pairs:
        dev_label = str(cfg.data.dev or "the held-out conversations")
        dev_encoded = _encode_filtered(tokenizers, dev_pairs, model.max_positions - 1, dev_label, fit_source)
    dev_ids = ([s for s, _ in dev_encoded], [t for _, t in dev_encoded])

    # greedy search within the run's length limits for the dev BLEU
    dev_settings = dataclasses.replace(cfg.decode, strategy="greedy", temperature=None, top_k=None, top_p=None,
                                       n_best=1, seed=None)

    def evaluate() -> dict:
        if not dev_pairs:
            return {}
        result = evaluate_pairs(model, tokenizers, dev_bleu_pairs, dev_settings, with_nll=False)
        nll, n = teacher_forced_nll(model, *dev_ids)
        return {"dev_bleu": result.bleu, "dev_chrf": result.chrf, "dev_loss": nll / n, "dev_ppl": math.exp(nll / n)}

    # ---- train
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if tc.precision == "bf16" else contextlib.nullcontext
    start = time.monotonic()
    stopped = "max_steps"
    window = _new_window()
    bar = tqdm(total=tc.max_steps, initial=loop.step, disable=not progress, dynamic_ncols=True, unit="step")
    batches = batcher.iterate(loop.epoch, loop.batch_pos)
    model.train()
    with _stop_on_signal() as stop_requested:
        while True:
            if stop_requested():
                stopped = "interrupted"
                break
            if loop.step >= tc.max_steps:
                stopped = "max_steps"
                break
            if budget is not None and (time.monotonic() - start) / 60 >= budget:
                stopped = "time budget"
                break
            epoch, pos, batch = next(batches)
            if tc.max_epochs is not None and epoch >= tc.max_epochs:
                stopped = "max_epochs"
                break
            ratio = teacher_forcing_ratio(loop.step, tc)
            loss_sum, nll_sum, n, grad_norm = _train_step(model, optimizer, batch, ratio, tc, autocast)
            scheduler.step()
            loop.step += 1
            loop.epoch, loop.batch_pos = (epoch, pos + 1) if pos + 1 < len(batcher) else (epoch + 1, 0)
            window["loss"] += float(loss_sum)
            window["nll"] += float(nll_sum)
            window["tokens"] += n
            window["grad_norms"].append(round(grad_norm, 5))
            bar.update(1)
            if loop.step % tc.log_every == 0:
                elapsed = time.monotonic() - window["time"]
                record = {"step": loop.step, "epoch": epoch, "loss": window["loss"] / window["tokens"],
                          "ppl": math.exp(min(window["nll"] / window["tokens"], 50)),
                          "lr": scheduler.get_last_lr()[0], "grad_norm": grad_norm, "teacher_forcing": ratio,
                          "tokens_per_s": window["tokens"] / max(elapsed, 1e-9),
                          "grad_norms": window["grad_norms"]}  # the global norm of every step
                _log(metrics_path, record)
                bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2e}")
                window = _new_window()
            if loop.step % tc.eval_every == 0:
                if _evaluate_and_save(loop, evaluate, checkpoint, tc, metrics_path, echo):
                    stopped = "patience"
                    break
                model.train()
            elif tc.checkpoint_every and loop.step % tc.checkpoint_every == 0:
                checkpoint("last", {})
    bar.close()
    loop.train_seconds += time.monotonic() - start
    if loop.step % tc.eval_every != 0 or loop.step == 0:
        _evaluate_and_save(loop, evaluate, checkpoint, tc, metrics_path, echo)
    last_eval = _last_eval(metrics_path)
    echo(f"stopped at step {loop.step} ({stopped}); run folder {run_dir}")
    return TrainResult(run_dir, loop.step, loop.epoch, stopped, loop.best, last_eval)


def _new_window() -> dict:
    """Sums over the steps since the last log line."""
    return {"loss": 0.0, "nll": 0.0, "tokens": 0, "time": time.monotonic(), "grad_norms": []}


def _train_step(model, optimizer, batch, teacher_forcing: float, tc, autocast) -> tuple[torch.Tensor, torch.Tensor, int, float]:
    """One optimisation step on ``batch``: loss, backward, clipping, optimizer step.

    The loss is the label-smoothed cross-entropy summed over the real target tokens and divided by
    their number; the output layer and the loss run fused (:func:`output_layer_nll`).

    Returns:
        (loss sum, NLL sum, real target tokens, global gradient norm before clipping).
    """
    with autocast():
        h = model.features(batch.src, batch.tgt_in, teacher_forcing=teacher_forcing)  # (B, T, d)
        out = model.output_layer
        loss_sum, nll_sum, n = output_layer_nll(h, out.weight, out.bias, batch.tgt_out, epsilon=tc.label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    (loss_sum / n).backward()
    grad_norm = clip_gradients(model.parameters(), clip_norm=tc.clip_norm, clip_value=tc.clip_value)
    optimizer.step()
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


def _evaluate_and_save(loop: _LoopState, evaluate, checkpoint, tc, metrics_path: Path, echo) -> bool:
    """Evaluate, log, save ``last`` (and ``best``); return True when patience has run out."""
    metrics = evaluate()
    if metrics:
        _log(metrics_path, {"step": loop.step, **metrics})
        value = metrics["dev_bleu"] if tc.best_metric == "bleu" else metrics["dev_loss"]
        improved = _better(tc.best_metric, value, loop.best)
        if improved:
            loop.best, loop.bad_evals = value, 0
        else:
            loop.bad_evals += 1
        echo(f"step {loop.step}: dev loss {metrics['dev_loss']:.3f}, ppl {metrics['dev_ppl']:.2f}, "
             f"BLEU {metrics['dev_bleu']:.2f}, chrF {metrics['dev_chrf']:.2f}" + (" (best)" if improved else ""))
    else:
        improved = True
    checkpoint("last", metrics)
    if improved:
        checkpoint("best", metrics, with_optimizer=False)
    return tc.patience is not None and loop.bad_evals >= tc.patience


def _last_eval(metrics_path: Path) -> dict:
    if not metrics_path.exists():
        return {}
    evals = [json.loads(ln) for ln in metrics_path.read_text(encoding="utf-8").splitlines() if "dev_bleu" in ln]
    return evals[-1] if evals else {}
