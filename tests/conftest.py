"""Shared test fixtures: a tiny corpus and tiny trained run folders, each trained once per session.

The runs are trained through the command line (``seqlab.cli.main``), so the session fixtures
also record what ``seqlab train`` printed. Tests that change a run folder must work on a copy
(:func:`copy_run`), never on the shared folder.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

# Tiny models run far faster on one thread: with two, every small op pays for thread hand-offs,
# which on a busy 2-core machine costs more than the arithmetic.
torch.set_num_threads(1)

TINY_TRANSFORMER = {
    "name": "tiny-transformer",
    "tokenizer": {"kind": "word", "vocab_size": 200, "min_frequency": 1},
    "model": {"type": "transformer", "layers": 1, "d_model": 16, "heads": 2, "ffn": 32, "max_positions": 64},
    "train": {"max_steps": 12, "batch_tokens": 200, "eval_every": 5, "log_every": 5, "warmup_steps": 2,
              "threads": 1, "precision": "fp32"},
    "decode": {"beam": 2, "precision": "fp32"},
}
"""A Transformer config that trains in about a second; ``data`` is filled in by :func:`tiny_config`."""

TINY_GRU = {
    "name": "tiny-gru",
    "tokenizer": {"kind": "word", "vocab_size": 200, "min_frequency": 1},
    "model": {"type": "gru", "attention": "dot", "layers": 1, "embedding": 16, "hidden": 16,
              "bidirectional": True, "max_positions": 64},
    "train": {"max_steps": 6, "batch_tokens": 200, "eval_every": 3, "log_every": 3, "warmup_steps": 2,
              "threads": 1, "precision": "fp32"},
    "decode": {"beam": 2, "precision": "fp32"},
}
"""A GRU encoder-decoder with dot-product attention, as small as :data:`TINY_TRANSFORMER`."""


@pytest.fixture(autouse=True)
def pack_fp32_weights_of_any_size(monkeypatch):
    """Decoding packs the fp32 weights of the tiny test models too, so the packed path is tested.

    Outside the tests small fp32 weights stay unpacked (``seqlab.nn.linear.FP32_PACK_MIN_ELEMENTS``,
    a speed choice); ``tests/nn/test_linear.py`` tests that rule with its real threshold.
    """
    import seqlab.nn.linear

    monkeypatch.setattr(seqlab.nn.linear, "FP32_PACK_MIN_ELEMENTS", 0)


@pytest.fixture
def cpu_bf16(monkeypatch):
    """``cpu_bf16(True/False)`` makes seqlab believe this CPU has (or lacks) native bf16.

    Every bf16 decision (``seqlab.precision``, the packed linear, the attention path) asks
    :func:`seqlab.precision.native_bf16`, so the AVX2 path is tested on AVX-512 machines and the
    other way round. Forcing True on a CPU without bf16 still packs nothing: the probe of the
    oneDNN operators fails there (see ``seqlab.nn.linear``).
    """
    import seqlab.precision

    def force(native: bool) -> None:
        monkeypatch.setattr(seqlab.precision, "_cpu_bf16", lambda: native)

    return force


def write_tsv(path: Path, pairs) -> Path:
    """Write ``source<TAB>target`` lines and return ``path``."""
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return path


def tiny_config(base: dict, train: Path, dev: Path, **data) -> dict:
    """``base`` with its ``data`` section pointing at ``train`` and ``dev`` (absolute paths)."""
    cfg = {**base, "data": {"train": str(train), "dev": str(dev), "dev_size": 8, "max_len": 60, **data}}
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class CliResult:
    """Exit status and output of one in-process ``seqlab`` command."""

    code: int
    out: str
    err: str


def run_cli(*argv: str) -> CliResult:
    """Run ``seqlab ARGV...`` in-process and capture its exit status and output.

    For session fixtures, which cannot use ``capsys``; tests use ``capsys`` directly.
    """
    from seqlab.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return CliResult(code, out.getvalue(), err.getvalue())


@dataclass
class Corpus:
    train: Path
    dev: Path
    train_pairs: list
    dev_pairs: list


@dataclass
class TrainedRun:
    """A run folder written by ``seqlab train`` and what the command printed."""

    path: Path
    config: Path
    result: CliResult


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Corpus:
    """70 training and 10 dev pairs of the built-in synthetic grammar, as TSV files."""
    from seqlab.data.synthetic import generate_pairs

    folder = tmp_path_factory.mktemp("corpus")
    pairs = generate_pairs(80, seed=0)
    return Corpus(write_tsv(folder / "train.tsv", pairs[:70]), write_tsv(folder / "dev.tsv", pairs[70:]),
                  pairs[:70], pairs[70:])


def _train(tmp_path_factory, corpus: Corpus, base: dict, label: str, *overrides: str) -> TrainedRun:
    folder = tmp_path_factory.mktemp(label)
    config = write_config(folder / f"{label}.yaml", tiny_config(base, corpus.train, corpus.dev))
    run = folder / "run"
    result = run_cli("train", config, "--out", run, "--quiet", *overrides)
    if result.code != 0:
        pytest.fail(f"training the {label} fixture failed:\n{result.err}")
    return TrainedRun(run, config, result)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_corpus) -> TrainedRun:
    """The tiny Transformer, trained for 10 steps (the override cuts the config's 12)."""
    return _train(tmp_path_factory, tiny_corpus, TINY_TRANSFORMER, "transformer", "train.max_steps=10")


@pytest.fixture(scope="session")
def tiny_gru_run(tmp_path_factory, tiny_corpus) -> TrainedRun:
    """The tiny GRU with dot attention, trained for 6 steps."""
    return _train(tmp_path_factory, tiny_corpus, TINY_GRU, "gru")


@pytest.fixture
def tiny_transformer_config(tmp_path):
    """Write the tiny Transformer config with data ``train``/``dev`` (and ``data`` keys) into tmp_path."""

    def write(train: Path, dev: Path, **data) -> Path:
        return write_config(tmp_path / "tiny.yaml", tiny_config(TINY_TRANSFORMER, train, dev, **data))

    return write


@pytest.fixture
def copy_run(tmp_path):
    """Copy a session run folder into this test's tmp_path, for tests that change it."""

    def copy(run: TrainedRun) -> Path:
        return Path(shutil.copytree(run.path, tmp_path / "run-copy"))

    return copy


@pytest.fixture(scope="session")
def tiny_chat_run(tmp_path_factory) -> TrainedRun:
    """A tiny chat Transformer on 60 JSONL conversations of the built-in dialog grammar (12 steps)."""
    import json

    from seqlab.data.synthetic_dialogs import generate_dialogs

    folder = tmp_path_factory.mktemp("chat")
    dialogs = generate_dialogs(60, seed=0)
    train = folder / "dialogs.jsonl"
    train.write_text("".join(json.dumps({"turns": turns}) + "\n" for turns in dialogs), encoding="utf-8")
    cfg = {**TINY_TRANSFORMER, "name": "tiny-chat", "task": "chat",
           "data": {"train": str(train), "dev": None, "holdout": 0.1, "context_turns": 2, "max_len": 40,
                    "dev_size": 8},
           "tokenizer": {**TINY_TRANSFORMER["tokenizer"], "specials": ["<sep>"]},
           "decode": {"strategy": "greedy", "max_new_tokens": 12}}
    config = write_config(folder / "chat.yaml", cfg)
    run = folder / "run"
    result = run_cli("train", config, "--out", run, "--quiet")
    if result.code != 0:
        pytest.fail(f"training the chat fixture failed:\n{result.err}")
    return TrainedRun(run, config, result)
