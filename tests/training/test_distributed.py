"""Data-parallel training on torch.distributed (gloo, loopback): 2 processes equal 1, and resume exactly.

The multi-process tests start ``torchrun --standalone`` through ``seqlab train --nproc 2``, as a
user would; each launch costs a few seconds of interpreter start-up, so they are marked slow.
"""

import json
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file

from seqlab.config import config_from_dict
from seqlab.data.batching import make_batch
from seqlab.devices import resolve_device, to_device
from seqlab.errors import CheckpointError, ConfigError
from seqlab.training.distributed import shard
from seqlab.training.trainer import train
from tests.training.test_trainer import tiny_config


def test_shards_interleave_rows_and_together_are_the_batch():
    examples = [([5 + i] * (i + 1), [6] * (3 - i % 3)) for i in range(5)]
    batch = make_batch(examples, list(range(5)))
    a, b = shard(batch, 0, 2), shard(batch, 1, 2)
    assert a.index == [0, 2, 4] and b.index == [1, 3]
    assert torch.equal(a.src, batch.src[[0, 2, 4]]) and torch.equal(b.tgt_out, batch.tgt_out[[1, 3]])
    assert a.n_tokens + b.n_tokens == batch.n_tokens  # recomputed per share, the loss normaliser
    assert a.n_tokens == int(a.tgt_out.ne(0).sum())
    assert shard(batch, 0, 1) is batch
    with pytest.raises(ValueError, match="cannot be shared by 6 processes"):
        shard(batch, 0, 6)


def test_device_names_are_checked_and_cpu_batches_stay_put():
    with pytest.raises(ConfigError, match="train.device"):
        config_from_dict({"train": {"device": "gpu"}})
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda:0")
    batch = make_batch([([4, 5], [6])], [0])
    assert to_device(batch, torch.device("cpu")) is batch


def _write(cfg, path):
    data = json.loads(json.dumps(cfg.__dict__, default=lambda o: o.__dict__))
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _torchrun(config_path, run, *extra):
    command = [sys.executable, "-m", "seqlab", "train", str(config_path), "--out", str(run), "--quiet",
               "--nproc", "2", *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _weights(run):
    return load_file(run / "checkpoints/last/model.safetensors")


@pytest.mark.slow
def test_two_processes_train_the_same_weights_as_one_with_the_same_global_batch(tmp_path):
    # eps 1e-4, not 1e-9: the attention key bias b_K has zero gradient in exact arithmetic (softmax
    # is shift-invariant: q.(k_j + b_K) = q.k_j + q.b_K for every key j), so with a tiny eps Adam
    # turns its rounding noise, which differs between one and two processes, into full-size steps.
    cfg = tiny_config(tmp_path, max_steps=4, eval_every=4, log_every=2, schedule="inverse_sqrt", clip_norm=None,
                      eps=1e-4)
    cfg.model.dropout = 0.0  # dropout draws differ between one and two processes
    one = tmp_path / "one"
    train(cfg, one, progress=False, echo=lambda *_: None)
    two = tmp_path / "two"
    _torchrun(_write(cfg, tmp_path / "cfg.yaml"), two)
    a, b = _weights(one), _weights(two)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=2e-5, msg=key)
    moved = max(float((a[k] - load_file(one / "checkpoints/best/model.safetensors")[k]).abs().max()) for k in a)
    assert moved == 0.0  # best == last here: the comparison above is of trained weights
    log_one = [json.loads(x) for x in (one / "metrics.jsonl").read_text().splitlines()]
    log_two = [json.loads(x) for x in (two / "metrics.jsonl").read_text().splitlines()]
    losses = [(r["loss"], r2["loss"]) for r, r2 in zip(log_one, log_two) if "loss" in r]
    assert len(losses) == 2 and all(abs(x - y) < 1e-4 for x, y in losses)  # logged over the global batch


@pytest.mark.slow
def test_a_two_process_run_stopped_and_resumed_ends_where_an_uninterrupted_one_ends(tmp_path):
    cfg = tiny_config(tmp_path, max_steps=8, eval_every=4, log_every=2, schedule="inverse_sqrt")
    path = _write(cfg, tmp_path / "cfg.yaml")  # dropout 0.1: every rank's RNG must resume
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    _torchrun(path, straight)
    _torchrun(path, stopped, "train.max_steps=4")
    command = [sys.executable, "-m", "seqlab", "train", "--resume", str(stopped), "train.max_steps=8", "--quiet",
               "--nproc", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = _weights(straight), _weights(stopped)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    with pytest.raises(CheckpointError, match="saved by 2 process"):
        train(None, stopped, resume=True, overrides=["train.max_steps=10"], progress=False, echo=lambda *_: None)


def test_leaving_the_group_waits_for_every_rank_unless_leaving_on_an_error(monkeypatch):
    import seqlab.training.distributed as distributed

    calls = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed.dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(distributed.dist, "destroy_process_group", lambda: calls.append("destroy"))
    cluster = distributed.Cluster(rank=0, world=2)
    cluster.close()
    assert calls == ["barrier", "destroy"]  # no rank tears down while another still talks to it
    calls.clear()
    cluster.close(wait=False)  # after an error the other rank may sit in another collective
    assert calls == ["destroy"]
    calls.clear()

    def broken_barrier():
        calls.append("barrier")
        raise RuntimeError("connection closed by peer")

    monkeypatch.setattr(distributed.dist, "barrier", broken_barrier)
    with pytest.raises(RuntimeError, match="closed by peer"):
        cluster.close()
    assert calls == ["barrier", "destroy"]  # the group is destroyed all the same
    calls.clear()
    distributed.Cluster().close()  # one process: there is no group to leave
    assert calls == []


def test_training_that_fails_still_leaves_the_group_without_waiting(tmp_path, monkeypatch):
    import seqlab.training.trainer as trainer

    closed = []
    monkeypatch.setattr(trainer.Cluster, "close", lambda self, wait=True: closed.append(wait))

    def failing_loop(run, budget, progress):
        assert run.objective is not None
        raise RuntimeError("disk full")

    monkeypatch.setattr(trainer, "_train_loop", failing_loop)
    with pytest.raises(RuntimeError, match="disk full"):
        train(tiny_config(tmp_path, max_steps=6, eval_every=6), tmp_path / "run", progress=False, echo=lambda *_: None)
    assert closed == [False]
    closed.clear()
    monkeypatch.undo()
    monkeypatch.setattr(trainer.Cluster, "close", lambda self, wait=True: closed.append(wait))
    train(tiny_config(tmp_path, max_steps=6, eval_every=6), tmp_path / "ok", progress=False, echo=lambda *_: None)
    assert closed == [True]
