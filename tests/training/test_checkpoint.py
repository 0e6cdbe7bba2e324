"""Checkpoints: atomic writes, tied weights, errors that name the path, exact resumption."""

import json
import os
import pickle
import random

import pytest
import torch
from safetensors import safe_open
from torch import nn

from seqlab.config import TrainConfig
from seqlab.errors import CheckpointError
from seqlab.text.specials import PAD
from seqlab.training import checkpoint as ckpt
from seqlab.training.checkpoint import (
    CHECKPOINT_FORMAT,
    list_checkpoints,
    load_checkpoint,
    read_meta,
    save_checkpoint,
)
from seqlab.training.loss import label_smoothed_nll
from seqlab.training.rng import capture_rng_state, restore_rng_state, seed_everything
from seqlab.training.schedule import build_scheduler

V, D = 11, 8


class Tiny(nn.Module):
    """Embedding -> dropout -> tanh(Linear) -> output projection tied to the embedding."""

    def __init__(self, d: int = D, tie: bool = True):
        super().__init__()
        self.embed = nn.Embedding(V, d)
        self.drop = nn.Dropout(0.3)
        self.hidden = nn.Linear(d, d)
        self.out = nn.Linear(d, V, bias=False)
        if tie:
            self.out.weight = self.embed.weight

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(self.drop(self.embed(x)))))


CFG = TrainConfig(schedule="cosine", lr=1e-2, warmup_steps=2, max_steps=8)


def _setup(seed):
    seed_everything(seed)
    model = Tiny()
    opt = torch.optim.Adam(model.parameters(), lr=CFG.lr, betas=tuple(CFG.betas), eps=CFG.eps)
    return model, opt, build_scheduler(opt, CFG, d_model=D)


def _train(model, opt, sched, steps):
    """Batches from torch's RNG, padding from python's, dropout from torch's: all must resume."""
    model.train()
    for _ in range(steps):
        x = torch.randint(1, V, (4, 5))
        y = torch.randint(1, V, (4, 5))
        y[:, 5 - random.randint(0, 2) :] = PAD
        loss, _, n = label_smoothed_nll(model(x), y, epsilon=0.1)
        opt.zero_grad()
        (loss / n).backward()
        opt.step()
        sched.step()


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    model, opt, sched = _setup(0)
    _train(model, opt, sched, 8)

    first, opt1, sched1 = _setup(0)
    _train(first, opt1, sched1, 4)
    save_checkpoint(
        tmp_path,
        "last",
        model=first,
        optimizer=opt1,
        scheduler=sched1,
        meta={"step": 4},
        rng=capture_rng_state(),
        trainer_state={"step": 4},
    )

    resumed, opt2, sched2 = _setup(123)  # other weights, other RNG state
    meta = load_checkpoint(tmp_path, "last", model=resumed, optimizer=opt2, scheduler=sched2)
    restore_rng_state(*meta["rng_state"])
    assert meta["trainer_state"] == {"step": 4}
    _train(resumed, opt2, sched2, 4)

    for (name, a), (_, b) in zip(model.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert resumed.out.weight is resumed.embed.weight
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for s1, s2 in zip(opt.state_dict()["state"].values(), opt2.state_dict()["state"].values(), strict=True):
        assert all(torch.equal(s1[k], s2[k]) for k in s1)


def test_tied_weights_stored_once_and_filled_back(tmp_path):
    model = Tiny()
    folder = save_checkpoint(tmp_path, "best", model=model, meta={})
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        assert sorted(f.keys()) == ["embed.weight", "hidden.bias", "hidden.weight"]
        assert json.loads(f.metadata()["seqlab.aliases"]) == {"out.weight": "embed.weight"}
    untied = Tiny(tie=False)  # same names, separate tensors: both receive the stored matrix
    load_checkpoint(tmp_path, "best", model=untied)
    assert torch.equal(untied.out.weight, model.embed.weight)
    assert torch.equal(untied.embed.weight, model.embed.weight)


def test_folder_contents_and_meta(tmp_path):
    model, opt, sched = _setup(0)
    save_checkpoint(tmp_path, "last", model=model, optimizer=opt, scheduler=sched, meta={"bleu": 12.5})
    assert sorted(os.listdir(tmp_path / "last")) == [
        "meta.json",
        "model.safetensors",
        "optimizer.safetensors",
        "trainer.json",
        "trainer.safetensors",
    ]
    meta = read_meta(tmp_path, "last")
    assert meta["format"] == CHECKPOINT_FORMAT and meta["bleu"] == 12.5
    assert meta["versions"]["torch"] == torch.__version__
    with safe_open(str(tmp_path / "last" / "optimizer.safetensors"), framework="pt") as f:
        assert "state.0.exp_avg" not in f.keys()  # noqa: SIM118 (safe_open is no dict); no step taken yet: Adam has no state
    assert list_checkpoints(tmp_path) == ["last"]


def test_trainer_state_keeps_types(tmp_path):
    state = {"step": 7, "best": (1.5, 3), "counts": {1: 2, 5: 0}, "ema": torch.arange(3.0), "tag": None}
    save_checkpoint(tmp_path, "last", model=Tiny(), meta={}, trainer_state=state)
    got = load_checkpoint(tmp_path, "last", model=Tiny())["trainer_state"]
    assert got["best"] == (1.5, 3) and got["counts"] == {1: 2, 5: 0} and got["tag"] is None
    assert torch.equal(got["ema"], state["ema"])


def test_load_never_unpickles(tmp_path, monkeypatch):
    model, opt, sched = _setup(0)
    _train(model, opt, sched, 1)
    save_checkpoint(tmp_path, "last", model=model, optimizer=opt, scheduler=sched, meta={}, rng=capture_rng_state())

    def refuse(*args, **kwargs):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    model2, opt2, sched2 = _setup(1)
    load_checkpoint(tmp_path, "last", model=model2, optimizer=opt2, scheduler=sched2)
    assert torch.equal(model2.hidden.weight, model.hidden.weight)


# ---- errors ------------------------------------------------------------------------------


def test_missing_checkpoint_lists_what_is_there(tmp_path):
    save_checkpoint(tmp_path, "best", model=Tiny(), meta={})
    with pytest.raises(CheckpointError, match=r"no checkpoint 'last' in .*checkpoints there: best"):
        load_checkpoint(tmp_path, "last", model=Tiny())


def test_missing_file_names_path_and_contents(tmp_path):
    folder = save_checkpoint(tmp_path, "last", model=Tiny(), meta={})
    (folder / "model.safetensors").unlink()
    with pytest.raises(
        CheckpointError, match=r"last/model.safetensors is missing; .*contains: meta.json, trainer.json"
    ):
        load_checkpoint(tmp_path, "last", model=Tiny())


@pytest.mark.parametrize(
    "fmt, found", [("seqlab-checkpoint/0", "format 'seqlab-checkpoint/0'"), (None, "no 'format' field")]
)
def test_format_version_mismatch(tmp_path, fmt, found):
    folder = save_checkpoint(tmp_path, "last", model=Tiny(), meta={})
    meta = json.loads((folder / "meta.json").read_text())
    meta.pop("format")
    if fmt is not None:
        meta["format"] = fmt
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=f"meta.json: found {found}, expected format 'seqlab-checkpoint/1'"):
        read_meta(tmp_path, "last")


def test_shape_mismatch_names_key_and_shapes(tmp_path):
    save_checkpoint(tmp_path, "last", model=Tiny(), meta={})
    with pytest.raises(CheckpointError, match=r"shape mismatch embed.weight: checkpoint \(11, 8\) vs model \(11, 6\)"):
        load_checkpoint(tmp_path, "last", model=Tiny(d=6))


def test_key_mismatch_strict_and_lenient(tmp_path):
    save_checkpoint(tmp_path, "last", model=Tiny(), meta={})
    bigger = Tiny()
    bigger.extra = nn.Linear(2, 2)
    with pytest.raises(CheckpointError, match=r"missing keys extra.weight, extra.bias"):
        load_checkpoint(tmp_path, "last", model=bigger)
    load_checkpoint(tmp_path, "last", model=bigger, strict=False)


def test_attention_weights_saved_as_separate_q_k_v_load_into_the_stacked_layout(tmp_path):
    # run folders written before MultiHeadAttention stored [W_Q; W_K; W_V] as one parameter
    from seqlab.nn.attention import MultiHeadAttention

    class OldAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.W_q, self.W_k, self.W_v, self.W_o = (nn.Linear(D, D) for _ in range(4))

    torch.manual_seed(0)
    old, new = nn.ModuleDict({"attn": OldAttention()}), nn.ModuleDict({"attn": MultiHeadAttention(D, 2)})
    save_checkpoint(tmp_path, "best", model=old, meta={})
    load_checkpoint(tmp_path, "best", model=new)  # strict: every key matched after the upgrade
    a, b = old["attn"], new["attn"]
    torch.testing.assert_close(b.W_qkv.weight, torch.cat([a.W_q.weight, a.W_k.weight, a.W_v.weight]), rtol=0, atol=0)
    torch.testing.assert_close(b.W_qkv.bias, torch.cat([a.W_q.bias, a.W_k.bias, a.W_v.bias]), rtol=0, atol=0)
    torch.testing.assert_close(b.W_o.weight, a.W_o.weight, rtol=0, atol=0)


def test_optimizer_requested_but_not_saved(tmp_path):
    save_checkpoint(tmp_path, "last", model=Tiny(), meta={})
    model, opt, _ = _setup(0)
    with pytest.raises(CheckpointError, match=r"trainer.json: the checkpoint has no optimizer state"):
        load_checkpoint(tmp_path, "last", model=model, optimizer=opt)


def test_reserved_and_non_json_meta_rejected(tmp_path):
    with pytest.raises(CheckpointError, match="meta key 'format' is reserved"):
        save_checkpoint(tmp_path, "last", model=Tiny(), meta={"format": "x"})
    with pytest.raises(CheckpointError, match="must be JSON data"):
        save_checkpoint(tmp_path, "last", model=Tiny(), meta={"path": tmp_path})
    assert list_checkpoints(tmp_path) == [] and not list(tmp_path.iterdir())


# ---- atomicity ---------------------------------------------------------------------------


def _weights(tmp_path):
    model = Tiny()
    load_checkpoint(tmp_path, "last", model=model)
    return model.hidden.weight.detach().clone()


def test_failure_while_writing_keeps_old_checkpoint(tmp_path, monkeypatch):
    old = Tiny()
    save_checkpoint(tmp_path, "last", model=old, meta={"v": 1})
    real = ckpt.write_durable

    def fail_on_trainer(path, data):
        if path.name == "trainer.json":
            raise OSError("killed")
        real(path, data)

    monkeypatch.setattr(ckpt, "write_durable", fail_on_trainer)
    with pytest.raises(OSError, match="killed"):
        save_checkpoint(tmp_path, "last", model=Tiny(), meta={"v": 2})
    assert read_meta(tmp_path, "last")["v"] == 1
    assert torch.equal(_weights(tmp_path), old.hidden.weight)
    assert os.listdir(tmp_path) == ["last"]


def test_failure_during_swap_restores_old_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, "last", model=Tiny(), meta={"v": 1})
    real = os.rename

    def fail_new_into_place(src, dst):
        if os.path.basename(src).startswith(".last.tmp-"):
            raise OSError("killed")
        real(src, dst)

    monkeypatch.setattr(ckpt.os, "rename", fail_new_into_place)
    with pytest.raises(OSError, match="killed"):
        save_checkpoint(tmp_path, "last", model=Tiny(), meta={"v": 2})
    assert read_meta(tmp_path, "last")["v"] == 1
    assert os.listdir(tmp_path) == ["last"]


def test_kill_between_renames_recovers_from_backup(tmp_path):
    old = Tiny()
    save_checkpoint(tmp_path, "last", model=old, meta={"v": 1})
    # what a kill after "old -> backup" and before "new -> last" leaves behind
    os.rename(tmp_path / "last", tmp_path / ".last.old")
    (tmp_path / ".last.tmp-deadbeef").mkdir()
    assert list_checkpoints(tmp_path) == ["last"]
    assert torch.equal(_weights(tmp_path), old.hidden.weight)
    assert sorted(os.listdir(tmp_path)) == [".last.tmp-deadbeef", "last"]
    save_checkpoint(tmp_path, "last", model=Tiny(), meta={"v": 2})
    assert os.listdir(tmp_path) == ["last"] and read_meta(tmp_path, "last")["v"] == 2


def test_kill_before_backup_deleted_keeps_new(tmp_path):
    save_checkpoint(tmp_path / "old", "last", model=Tiny(), meta={"v": 1})
    save_checkpoint(tmp_path, "last", model=Tiny(), meta={"v": 2})
    os.rename(tmp_path / "old" / "last", tmp_path / ".last.old")
    os.rmdir(tmp_path / "old")
    assert read_meta(tmp_path, "last")["v"] == 2
    assert os.listdir(tmp_path) == ["last"]


def test_invalid_name(tmp_path):
    with pytest.raises(CheckpointError, match=r"invalid checkpoint name '../x'"):
        save_checkpoint(tmp_path, "../x", model=Tiny(), meta={})


def test_corrupt_weights_file_named(tmp_path):
    folder = save_checkpoint(tmp_path, "last", model=Tiny(), meta={})
    (folder / "model.safetensors").write_bytes(b"\x10\x00")
    with pytest.raises(CheckpointError, match=r"last/model.safetensors: not a readable safetensors file"):
        load_checkpoint(tmp_path, "last", model=Tiny())
