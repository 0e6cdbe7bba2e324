"""The classification task through the one trainer: resume is exact, the CLI classifies and evaluates,
bad data stops training with its file and line, and the generated sentiment task is learned."""

import json

import pytest
import torch
from safetensors.torch import load_file

from seqlab.api import Classifier
from seqlab.config import config_from_dict
from seqlab.data.synthetic_sentiment import generate_sentiment
from seqlab.errors import ConfigError, DataError
from seqlab.training.trainer import train

QUIET = dict(progress=False, echo=lambda *_: None)
MODELS = {
    "lstm-attention": {"type": "lstm", "pooling": "attention", "embedding": 12, "hidden": 12, "dropout": 0.2},
    "transformer-first": {"type": "transformer", "pooling": "first", "layers": 1, "d_model": 16, "heads": 2,
                          "ffn": 32, "dropout": 0.2, "max_positions": 64},
}


def _csv(path, rows):
    quoted = ['"' + t.replace('"', '""') + '"' for t, _ in rows]
    path.write_text("label,text\n" + "".join(f"{lab},{q}\n" for q, (_, lab) in zip(quoted, rows)), encoding="utf-8")
    return path


def _config(tmp_path, model="lstm-attention", **train):
    rows = generate_sentiment(120, seed=5)
    return config_from_dict({
        "name": "tiny-cls", "task": "classification",
        "data": {"train": str(_csv(tmp_path / "train.csv", rows[:90])), "dev": str(_csv(tmp_path / "dev.csv", rows[90:])),
                 "max_len": 30},
        "tokenizer": {"kind": "word", "vocab_size": 100, "min_frequency": 1},
        "model": MODELS[model],
        "train": {"batch_tokens": 200, "max_steps": 10, "eval_every": 5, "log_every": 5, "warmup_steps": 2,
                  "schedule": "inverse_sqrt", "lr": 3e-3, **train},
    })


@pytest.mark.parametrize("model", list(MODELS))
def test_resume_ends_with_the_same_weights_as_an_uninterrupted_run(tmp_path, model):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(_config(tmp_path, model), straight, **QUIET)
    train(_config(tmp_path, model, max_steps=5), stopped, **QUIET)  # stops mid-epoch (6 batches an epoch)
    assert train(None, stopped, resume=True, overrides=["train.max_steps=10"], **QUIET).step == 10
    a = load_file(straight / "checkpoints/last/model.safetensors")
    b = load_file(stopped / "checkpoints/last/model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    resumed = [json.loads(x) for x in (stopped / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in log if "loss" in r] == [r["loss"] for r in resumed if "loss" in r]


def test_cli_classify_and_evaluate_agree_with_the_api_and_the_logged_dev_metrics(tmp_path, capsys):
    from seqlab.cli import main

    cfg = _config(tmp_path)
    run = tmp_path / "run"
    train(cfg, run, **QUIET)
    assert json.loads((run / "labels.json").read_text())["labels"] == ["negative", "positive"]
    classifier = Classifier.load(run, checkpoint="last")
    logged = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    fresh = classifier.evaluate(cfg.data.dev)
    assert fresh.accuracy == pytest.approx([r for r in logged if "dev_accuracy" in r][-1]["dev_accuracy"])

    texts = ["the plot was dull but i loved the cast .", "", "i hated the ending ."]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    assert main(["classify", str(run), "--checkpoint", "last", "--input", str(tmp_path / "in.txt")]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert lines[1] == "" and len(lines) == 4  # a blank input line stays blank
    expected = classifier.classify([texts[0], texts[2]])
    for line, (label, p) in zip([lines[0], lines[2]], expected):
        name, prob = line.split("\t")
        assert name == label and float(prob) == pytest.approx(p, abs=1e-4)

    png = tmp_path / "cm.png"
    assert main(["evaluate", str(run), "--checkpoint", "last", "--data", cfg.data.dev, "--confusion", str(png)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == pytest.approx(fresh.accuracy, abs=1e-4)
    assert report["confusion"] == fresh.confusion.tolist() and sum(map(sum, report["confusion"])) == 30
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_dev_label_unseen_in_training_stops_training_before_it_starts(tmp_path):
    cfg = _config(tmp_path)
    (tmp_path / "dev.csv").write_text("label,text\npositive,fine\nneutral,so so\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dev\.csv:3: label 'neutral' was not seen in the training data"):
        train(cfg, tmp_path / "run", **QUIET)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_config_keys_are_checked_per_model_type(tmp_path):
    base = {"task": "classification", "data": {"train": "x.csv"}}
    with pytest.raises(ConfigError, match="model.pooling"):
        config_from_dict({**base, "model": {"type": "transformer", "pooling": "attention"}})
    with pytest.raises(ConfigError, match="model.attention.*unknown key"):
        config_from_dict({**base, "model": {"type": "gru", "attention": "dot"}})
    with pytest.raises(ConfigError, match="data.max_len"):
        config_from_dict({**base, "data": {"train": "x.csv", "max_len": 600}, "model": {"type": "transformer"}})
    with pytest.raises(ConfigError, match="train.best_metric"):
        config_from_dict({**base, "train": {"best_metric": "bleu"}})
    assert config_from_dict({**base, "train": {"best_metric": "macro_f1"}}).train.best_metric == "macro_f1"


@pytest.mark.slow
def test_the_shipped_sentiment_demo_separates_the_generated_task(tmp_path):
    from seqlab.config import load_config

    cfg = load_config("configs/classification/sentiment-demo.yaml", ["train.max_steps=160", "train.eval_every=160"])
    train(cfg, tmp_path / "run", **QUIET)
    result = Classifier.load(tmp_path / "run").evaluate("builtin:synthetic-sentiment-test")
    assert result.accuracy >= 0.95


def test_soft_targets_follow_the_sigmoid_of_the_score_and_harden_as_tau_shrinks():
    from seqlab.tasks.classification import soft_targets

    scores = [-2.0, -0.1, 0.0, 0.3, 3.0]
    q = soft_targets(scores, threshold=0.5, tau=0.5)
    expected = [1 / (1 + torch.exp(torch.tensor(-(s - 0.5) / 0.5)).item()) for s in scores]
    assert torch.allclose(q[:, 1], torch.tensor(expected)) and torch.allclose(q.sum(-1), torch.ones(5))
    hard = soft_targets(scores, threshold=0.0, tau=1e-4)  # tau -> 0: the thresholded labels (s = 0 is 1/2)
    assert hard[:, 1].tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]


def test_soft_target_loss_is_the_cross_entropy_against_q_and_one_hot_q_is_the_hard_loss():
    from seqlab.tasks.classification import ClassificationLoss, LabelledBatch

    torch.manual_seed(0)
    logits = torch.randn(4, 2)
    model = lambda tokens: logits  # noqa: E731 - the loss only calls the model
    labels = torch.tensor([0, 1, 1, 0])
    q = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.0, 1.0], [0.5, 0.5]])
    loss = ClassificationLoss(model, label_smoothing=0.0)
    soft, nll, n = loss(LabelledBatch(torch.ones(4, 3, dtype=torch.long), labels, q), step=0)
    assert soft.item() == pytest.approx(-(q * logits.log_softmax(-1)).sum().item(), rel=1e-6)
    hard_nll = -logits.log_softmax(-1)[torch.arange(4), labels].sum()
    assert nll.item() == pytest.approx(hard_nll.item(), rel=1e-6) and n == 4  # the logged NLL is the labels'
    one_hot = torch.nn.functional.one_hot(labels, 2).float()
    as_soft, _, _ = loss(LabelledBatch(torch.ones(4, 3, dtype=torch.long), labels, one_hot), step=0)
    assert as_soft.item() == pytest.approx(hard_nll.item(), rel=1e-6)


def test_soft_targets_travel_with_their_examples_through_the_batches():
    from seqlab.tasks.classification import LabelledBatches, soft_targets

    scores = [float(s) for s in torch.linspace(-3, 3, 40)]
    ids = [[5] * (1 + i % 7) for i in range(40)]
    labels = [int(s > 0) for s in scores]
    batches = LabelledBatches(ids, labels, batch_tokens=30, seed=3, targets=soft_targets(scores, threshold=0.0, tau=1.0))
    seen = 0
    for epoch, _, batch in batches.iterate():
        if epoch:
            break
        assert torch.equal(batch.targets[:, 1] > 0.5, batch.labels.bool())  # row i's q is row i's example's
        seen += len(batch)
    assert seen == 40


def test_soft_targets_are_checked_on_load_and_a_sharp_tau_trains_as_the_hard_labels(tmp_path):
    rows = generate_sentiment(60, seed=5)
    tsv = tmp_path / "s.tsv"
    tsv.write_text("text\tscore\n" + "".join(f"{t}\t{1.5 if lab == 'positive' else -0.5}\n" for t, lab in rows),
                   encoding="utf-8")
    base = {"task": "classification", "tokenizer": {"kind": "word", "vocab_size": 100, "min_frequency": 1},
            "model": MODELS["lstm-attention"]}
    with pytest.raises(ConfigError, match="data.soft_target_tau.*data.threshold"):
        config_from_dict({**base, "data": {"train": str(tsv), "soft_target_tau": 1.0}})
    with pytest.raises(ConfigError, match="data.soft_target_tau.*must be positive"):
        config_from_dict({**base, "data": {"train": str(tsv), "threshold": 0.0, "soft_target_tau": 0.0}})
    def run(name, tau):
        data = {"train": str(tsv), "label_column": "score", "threshold": 0.0, "soft_target_tau": tau, "max_len": 30}
        cfg = config_from_dict({**base, "data": data, "train": {
            "batch_tokens": 200, "max_steps": 4, "eval_every": 4, "log_every": 2, "warmup_steps": 1,
            "precision": "fp32"}})
        train(cfg, tmp_path / name, **QUIET)
        return load_file(tmp_path / name / "checkpoints/last/model.safetensors")

    hard, sharp, soft = run("hard", None), run("sharp", 1e-6), run("soft", 0.5)
    assert all(torch.allclose(hard[k], sharp[k], atol=1e-6) for k in hard)  # q is one-hot: the hard labels
    assert not all(torch.allclose(hard[k], soft[k], atol=1e-4) for k in hard)  # scores 1.5 / -0.5: q < 1
