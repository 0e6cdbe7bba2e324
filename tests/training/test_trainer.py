"""End-to-end training on a tiny config: checkpoints, metrics, resume equals an uninterrupted run."""

import json

import pytest
import torch
from safetensors.torch import load_file

from seqlab.config import config_from_dict
from seqlab.errors import CheckpointError
from seqlab.training.trainer import train


def _corpus(path, n=60):
    words = ["sol", "lua", "mar", "rio", "céu", "paz", "luz", "voz"]
    g = torch.Generator().manual_seed(0)
    lines = []
    for _ in range(n):
        idx = torch.randint(0, len(words), (int(torch.randint(2, 5, (1,), generator=g)),), generator=g)
        src = [words[i] for i in idx]
        lines.append(" ".join(src) + "\t" + " ".join(reversed(src)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_config(tmp_path, **train):
    data = _corpus(tmp_path / "train.tsv")
    return config_from_dict({
        "name": "tiny",
        "data": {"train": str(data), "dev": str(data), "dev_size": 8, "max_len": 20},
        "tokenizer": {"kind": "word", "vocab_size": 100, "min_frequency": 1},
        "model": {"type": "transformer", "layers": 1, "d_model": 16, "heads": 2, "ffn": 32, "dropout": 0.1,
                  "max_positions": 32},
        "train": {"batch_tokens": 64, "max_steps": 12, "eval_every": 6, "log_every": 3, "warmup_steps": 4,
                  "lr": 3e-3, "precision": "fp32", **train},
    })


def test_run_folder_holds_config_tokenizer_checkpoints_and_metrics(tmp_path):
    run = tmp_path / "run"
    result = train(tiny_config(tmp_path), run, progress=False, echo=lambda *_: None)
    assert result.step == 12 and result.stopped_because == "max_steps"
    for name in ("config.yaml", "tokenizer.json", "metrics.jsonl", "checkpoints/last/model.safetensors",
                 "checkpoints/last/optimizer.safetensors", "checkpoints/best/model.safetensors"):
        assert (run / name).is_file(), name
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [3, 6, 9, 12]
    assert [r["step"] for r in records if "dev_bleu" in r] == [6, 12]
    seconds = [r["train_seconds"] for r in records if "dev_bleu" in r]  # wall time of each evaluation
    assert 0 < seconds[0] < seconds[1]
    assert all(r["grad_norm"] > 0 for r in records if "loss" in r)
    norms = [n for r in records if "loss" in r for n in r["grad_norms"]]  # one per step
    assert len(norms) == 12 and all(n > 0 for n in norms)


@pytest.mark.parametrize("native, resolved", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_is_resolved_once_printed_first_and_recorded(tmp_path, monkeypatch, cpu_bf16, native,
                                                                     resolved):
    import seqlab.training.trainer as trainer

    cpu_bf16(native)
    used = []
    real = trainer.autocast_context
    monkeypatch.setattr(trainer, "autocast_context", lambda p, d: used.append(p) or real(p, d))
    lines = []
    run = tmp_path / "run"
    cfg = tiny_config(tmp_path, precision="auto", max_steps=3, eval_every=3, warmup_steps=1)
    train(cfg, run, progress=False, echo=lines.append)
    assert f"precision {resolved} (auto: {'native' if native else 'no native'} bf16" in lines[0]
    assert used == [resolved] * 3  # every training step ran at the resolved precision
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["precision"] for r in records if "loss" in r] == [resolved]
    for name in ("last", "best"):
        assert json.loads((run / "checkpoints" / name / "meta.json").read_text())["precision"] == resolved


def _assert_same_run(straight, stopped, *, same_log):
    a = load_file(straight / "checkpoints/last/model.safetensors")
    b = load_file(stopped / "checkpoints/last/model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    if not same_log:
        return
    log_a = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (stopped / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in log_a if "loss" in r] == [r["loss"] for r in log_b if "loss" in r]


def test_resume_ends_with_the_same_weights_as_an_uninterrupted_run(tmp_path):
    """Stop at step 6 (a schedule that does not depend on max_steps), extend to 12 with --resume."""
    quiet = dict(progress=False, echo=lambda *_: None)
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(tiny_config(tmp_path, schedule="inverse_sqrt"), straight, **quiet)
    train(tiny_config(tmp_path, schedule="inverse_sqrt", max_steps=6), stopped, **quiet)
    result = train(None, stopped, resume=True, overrides=["train.max_steps=12"], **quiet)
    assert result.step == 12
    _assert_same_run(straight, stopped, same_log=True)
    log = [json.loads(x) for x in (stopped / "metrics.jsonl").read_text().splitlines()]
    seconds = [r["train_seconds"] for r in log if "dev_bleu" in r]
    assert len(seconds) == 2 and seconds[1] > seconds[0] > 0  # the clock continues across invocations


def test_a_run_stopped_by_its_time_budget_resumes_to_the_same_weights(tmp_path):
    """Stopped wherever the clock says (mid-epoch, between evaluations), resumed with the same config."""
    quiet = dict(progress=False, echo=lambda *_: None)
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(tiny_config(tmp_path, max_steps=14), straight, **quiet)
    first = train(tiny_config(tmp_path, max_steps=14), stopped, max_minutes=0.0005, **quiet)
    assert first.stopped_because == "time budget" and first.step < 14
    assert train(None, stopped, resume=True, **quiet).step == 14
    _assert_same_run(straight, stopped, same_log=False)  # loss windows are cut where the clock stopped


def test_training_into_an_existing_run_refuses_and_keeps_it(tmp_path):
    run = tmp_path / "run"
    quiet = dict(progress=False, echo=lambda *_: None)
    train(tiny_config(tmp_path, max_steps=6), run, **quiet)
    before = (run / "checkpoints/last/model.safetensors").read_bytes()
    with pytest.raises(CheckpointError, match="already holds a trained run"):
        train(tiny_config(tmp_path), run, **quiet)
    assert (run / "checkpoints/last/model.safetensors").read_bytes() == before


def test_resume_of_a_missing_run_names_the_folder(tmp_path):
    with pytest.raises(CheckpointError, match="nope"):
        train(None, tmp_path / "nope", resume=True, progress=False)


def test_dev_metrics_logged_during_training_equal_a_fresh_evaluation_of_the_checkpoint(tmp_path):
    """Nothing computed for decoding at the step-6 evaluation may serve step 12's.

    The trainer's fused Adam rewrites the weights without moving their version counters, which once
    left stale stacked Q/K/V weights in a decoding cache.
    """
    from seqlab.api import Translator
    from seqlab.tasks.translation import load_corpus

    run, cfg = tmp_path / "run", tiny_config(tmp_path)
    train(cfg, run, progress=False, echo=lambda *_: None)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in records if "dev_loss" in r]
    assert [r["step"] for r in logged] == [6, 12]
    fresh = Translator.load(run, checkpoint="last", precision="fp32").evaluate(load_corpus(cfg.data.dev, cfg), beam=1)
    assert fresh.nll_per_token == pytest.approx(logged[-1]["dev_loss"], rel=1e-5)
