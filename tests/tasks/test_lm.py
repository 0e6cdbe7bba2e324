"""Language models end to end: the hello example, a tiny text learned, exact resume, generation."""

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seqlab.cli import main
from seqlab.config import config_from_dict, load_config
from seqlab.decoding.processors import mask_specials
from seqlab.decoding.sampling import sample_next
from seqlab.errors import ConfigError, DataError
from seqlab.tasks.lm import generate
from seqlab.tasks.run import load_run
from seqlab.text.specials import EOS
from seqlab.training.trainer import train

HELLO = Path(__file__).resolve().parents[2] / "configs" / "lm" / "hello.yaml"
QUIET = {"progress": False, "echo": lambda *_: None}


def _text(path, line="abcdefghij", n=30):
    path.write_text((line + "\n") * n, encoding="utf-8")
    return str(path)


def tiny_lm(tmp_path, model=None, data=None, **train):
    text = _text(tmp_path / "abc.txt")
    return config_from_dict({
        "name": "tiny-lm", "task": "lm",
        "data": {"train": text, "dev": text, "block_size": 12, **(data or {})},
        "tokenizer": {"kind": "char", "vocab_size": 50, "min_frequency": 1},
        "model": model or {"type": "gpt", "layers": 1, "d_model": 32, "heads": 2, "ffn": 64, "max_positions": 32,
                           "dropout": 0.1},
        "train": {"batch_tokens": 48, "max_steps": 12, "eval_every": 6, "log_every": 3, "warmup_steps": 2,
                  "lr": 3e-3, "label_smoothing": 0.0, "precision": "fp32", **train},
    })


@pytest.fixture(scope="module")
def hello_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("hello") / "run"
    assert main(["train", str(HELLO), "--out", str(run), "--quiet"]) == 0
    return run


def test_the_hello_rnn_fed_h_e_l_l_predicts_e_l_l_o(hello_run):
    run = load_run(hello_run)
    tok = run.data.text
    with torch.no_grad():
        logits = run.model(torch.tensor([tok.encode("hell")]))  # (1, 4, V)
    assert tok.decode(logits[0].argmax(-1).tolist()) == "ello"
    assert type(run.model).__name__ == "RecurrentLM" and run.config.model.type == "rnn"


def test_generate_on_the_hello_run_prints_hello(hello_run, capsys):
    assert main(["generate", str(hello_run), "--prompt", "h", "--seed", "0"]) == 0
    assert capsys.readouterr().out == "hello\n"


def test_a_gpt_learns_a_repetitive_text_to_near_zero_loss(tmp_path):
    cfg = tiny_lm(tmp_path, max_steps=150, eval_every=150, schedule="constant", warmup_steps=0,
                  model={"type": "gpt", "layers": 1, "d_model": 32, "heads": 2, "ffn": 64, "max_positions": 32,
                         "dropout": 0.0})
    result = train(cfg, tmp_path / "run", **QUIET)
    assert result.last_eval["dev_loss"] < 0.05
    assert result.last_eval["dev_bpc"] == pytest.approx(result.last_eval["dev_loss"] / math.log(2))
    assert result.last_eval["dev_ppl"] == pytest.approx(math.exp(result.last_eval["dev_loss"]))


@pytest.mark.parametrize("model", [None, {"type": "lstm", "layers": 1, "embedding": 16, "hidden": 16, "dropout": 0.1}],
                         ids=["gpt", "lstm"])
def test_resume_ends_with_the_same_weights_as_an_uninterrupted_run(tmp_path, model):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(tiny_lm(tmp_path, model, schedule="inverse_sqrt"), straight, **QUIET)
    train(tiny_lm(tmp_path, model, schedule="inverse_sqrt", max_steps=5), stopped, **QUIET)  # epoch 0 has 7 batches
    assert train(None, stopped, resume=True, overrides=["train.max_steps=12"], **QUIET).step == 12
    a = load_file(straight / "checkpoints/last/model.safetensors")
    b = load_file(stopped / "checkpoints/last/model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(x) for x in (stopped / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "dev_loss" in r] == [5, 6, 12]  # the stop at step 5 evaluates too


def _uncached_sample(model, ids, n, seed, **kw):
    """The reference: the full forward pass over everything so far at every step, no cache."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        logits = model(torch.tensor([ids + out]))[:, -1]  # (1, V)
        y = int(sample_next(mask_specials(torch.log_softmax(logits.float(), -1)), generator=g, **kw))
        if y == EOS:
            break
        out.append(y)
    return out


@pytest.mark.parametrize("model", [None, {"type": "gru", "layers": 2, "embedding": 16, "hidden": 16}],
                         ids=["gpt", "gru"])
def test_cached_generation_equals_recomputing_the_full_forward_each_step(tmp_path, model):
    cfg = tiny_lm(tmp_path, model, max_steps=6, eval_every=6)
    train(cfg, tmp_path / "run", **QUIET)
    run = load_run(tmp_path / "run")
    tok = run.data.text
    with torch.inference_mode():
        for kw in ({"temperature": 1.5}, {"temperature": 0.8, "top_k": 5, "top_p": 0.9}):
            text = generate(run.model, tok, "abc", max_tokens=15, seed=7, **kw)
            reference = _uncached_sample(run.model, tok.encode("abc"), 15, 7, **kw)
            assert text == "abc" + tok.decode(reference)


def test_seeded_generation_is_reproducible(hello_run):
    run = load_run(hello_run)
    texts = [generate(run.model, run.data.text, "l", max_tokens=20, temperature=3.0, seed=1) for _ in range(2)]
    assert texts[0] == texts[1]


def test_bad_text_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\n")
    cfg = tiny_lm(tmp_path)
    cfg.data.train = str(bad)
    with pytest.raises(DataError, match=rf"{bad}:2: invalid UTF-8"):
        train(cfg, tmp_path / "run", **QUIET)


def test_lm_config_errors_name_the_key():
    def error(data):
        with pytest.raises(ConfigError) as info:
            config_from_dict({"task": "lm", **data})
        return info.value

    err = error({"model": {"type": "transformer"}})
    assert err.key == "model.type" and "gpt, rnn, lstm, gru" in str(err)
    assert error({"data": {"max_len": 10}}).key == "data.max_len"  # a translation key
    assert error({"data": {"block_size": 300}, "model": {"type": "gpt", "max_positions": 256}}).key == "data.block_size"
    assert error({"train": {"best_metric": "bleu"}}).key == "train.best_metric"
    assert error({"train": {"best_metric": "bpc"}, "tokenizer": {"kind": "bpe"}}).key == "train.best_metric"
    assert load_config(HELLO).train.best_metric == "loss"


def test_generate_refuses_a_translation_run(tiny_run, capsys):
    assert main(["generate", str(tiny_run.path), "--prompt", "x"]) == 2
    assert "a 'translation' run; this command needs a 'lm' run" in capsys.readouterr().err


def test_evaluate_reports_the_trainers_dev_metrics_on_a_text_file(tmp_path, capsys):
    cfg = tiny_lm(tmp_path)
    result = train(cfg, tmp_path / "run", **QUIET)
    assert main(["evaluate", str(tmp_path / "run"), "--data", cfg.data.dev, "--checkpoint", "last"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["loss"] == pytest.approx(result.last_eval["dev_loss"], abs=1e-4)
    assert report["ppl"] == pytest.approx(math.exp(report["loss"]), rel=1e-3)
    assert report["bpc"] == pytest.approx(report["loss"] / math.log(2), abs=1e-3)
    assert report["tokens"] == 30 * 11  # 30 lines of 10 characters and a newline, then <eos>, less the first

    other = _text(tmp_path / "other.txt", line="jihgfedcba", n=5)  # the letters backwards: unlike training
    assert main(["evaluate", str(tmp_path / "run"), "--data", other, "--checkpoint", "last"]) == 0
    assert json.loads(capsys.readouterr().out)["loss"] > report["loss"]

    bad, empty = tmp_path / "bad.txt", tmp_path / "empty.txt"
    bad.write_bytes(b"abc\n\xffabc\n")
    empty.write_text("\n\n", encoding="utf-8")
    for path, message in ((bad, f"{bad}:2: invalid UTF-8"), (empty, f"{empty}: the file is empty")):
        assert main(["evaluate", str(tmp_path / "run"), "--data", str(path)]) == 2
        assert message in capsys.readouterr().err


def test_generate_batches_prompts_of_unequal_lengths_as_each_alone(tmp_path):
    # every line a document, so the model learns to end after "j": rows end at different steps
    cfg = tiny_lm(tmp_path, data={"documents": "line"}, max_steps=80, eval_every=80, lr=1e-2)
    train(cfg, tmp_path / "run", **QUIET)
    run = load_run(tmp_path / "run")
    prompts = ["abcdef", "a", "", "cde"]
    for kw in ({"temperature": 0.0}, {"temperature": 1.5, "seed": 3}, {"top_k": 5, "seed": 4}):
        together = generate(run.model, run.data.text, prompts, max_tokens=12, **kw)
        assert together == [generate(run.model, run.data.text, p, max_tokens=12, **kw) for p in prompts]
        assert all(text.startswith(p) for text, p in zip(together, prompts))
        assert len({len(text) - len(p) for text, p in zip(together, prompts)}) > 1, together
