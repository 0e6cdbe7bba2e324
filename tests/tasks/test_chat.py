"""The chat task: config checks, a tiny chatbot learned, resume equal to an uninterrupted run."""

import json

import pytest
import torch
from safetensors.torch import load_file

import seqlab
from seqlab.config import config_from_dict
from seqlab.data.synthetic_dialogs import generate_dialogs
from seqlab.errors import ConfigError
from seqlab.training.trainer import train

QUIET = dict(progress=False, echo=lambda *_: None)


def _dialogs(tmp_path, n=40, seed=0):
    path = tmp_path / "dialogs.jsonl"
    path.write_text("".join(json.dumps({"turns": t}) + "\n" for t in generate_dialogs(n, seed=seed)), encoding="utf-8")
    return path


def chat_config(tmp_path, *, data=None, **train_keys):
    return config_from_dict({
        "name": "tiny-chat", "task": "chat",
        "data": {"train": str(_dialogs(tmp_path)), "dev": None, "holdout": 0.1, "context_turns": 2, "max_len": 40,
                 "dev_size": 8, **(data or {})},
        "tokenizer": {"kind": "word", "vocab_size": 300, "min_frequency": 1, "specials": ["<sep>"]},
        "model": {"type": "transformer", "layers": 1, "d_model": 32, "heads": 2, "ffn": 64, "dropout": 0.0,
                  "max_positions": 48, "share_embeddings": True},
        "train": {"batch_tokens": 400, "max_steps": 12, "eval_every": 6, "log_every": 3, "warmup_steps": 4,
                  "lr": 3e-3, "threads": 1, **train_keys},
        "decode": {"strategy": "greedy", "max_new_tokens": 16},
    })


def test_chat_config_checks_name_their_keys(tmp_path):
    cfg = chat_config(tmp_path)
    assert cfg.train.best_metric == "loss"  # the chat task's default
    with pytest.raises(ConfigError, match=r"tokenizer.specials.*<sep>"):
        config_from_dict({"task": "chat", "data": {"context_turns": 1}})
    with pytest.raises(ConfigError, match="data.holdout.*either data.dev or data.holdout"):
        config_from_dict({"task": "chat", "data": {"holdout": 0.1}})  # the builtin dev is set by default
    with pytest.raises(ConfigError, match="data.format"):
        config_from_dict({"task": "chat", "data": {"format": "tsv"}})
    with pytest.raises(ConfigError, match="data.context_turns.*unknown key"):
        config_from_dict({"data": {"context_turns": 2}})  # translation has no turns


@pytest.mark.slow
def test_a_tiny_chatbot_learns_replies_that_need_the_context(tmp_path):
    torch.manual_seed(0)
    run = tmp_path / "run"
    cfg = chat_config(tmp_path, max_steps=600, eval_every=600, log_every=100, warmup_steps=40, lr=5e-3,
                      batch_tokens=600)
    cfg.model.d_model, cfg.model.ffn = 64, 128
    train(cfg, run, **QUIET)
    bot = seqlab.load(run, checkpoint="last")
    right = asked = 0
    for turns in generate_dialogs(40, seed=0):  # the training conversations
        for i in range(2, len(turns), 2):
            # "and tomorrow?" needs the city two turns back, "why?" the thing asked about
            if turns[i] in ("and tomorrow?", "what about tomorrow?", "why?") and i + 1 < len(turns):
                asked += 1
                right += bot.reply(turns[:i], turns[i]) == turns[i + 1]
    assert asked >= 15 and right >= 0.9 * asked


def test_chat_resume_ends_with_the_same_weights_as_an_uninterrupted_run(tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(chat_config(tmp_path, schedule="inverse_sqrt"), straight, **QUIET)
    train(chat_config(tmp_path, schedule="inverse_sqrt", max_steps=6), stopped, **QUIET)
    assert train(None, stopped, resume=True, overrides=["train.max_steps=12"], **QUIET).step == 12
    a = load_file(straight / "checkpoints/last/model.safetensors")
    b = load_file(stopped / "checkpoints/last/model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    logged = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if "dev_loss" in r] == [6, 12]  # dev = the held-out conversations
