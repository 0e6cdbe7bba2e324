"""Word2Vec through the one training loop: the courses' example learned, exact resume, the CLI, bad data."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from seqlab.cli import main
from seqlab.config import config_from_dict
from seqlab.data.deixa import BOYS
from seqlab.errors import ConfigError, DataError
from seqlab.tasks.word2vec import load_word_vectors, read_sentences
from seqlab.training.trainer import train

QUIET = dict(progress=False, echo=lambda *_: None)


def _config(**sections):
    """The deixa demo (configs/embeddings/deixa-demo.yaml) at test size; ``sections`` update it."""
    cfg = {
        "name": "deixa", "task": "word2vec",
        "data": {"train": "builtin:deixa", "min_count": 1, "window": 2, "subsample": 0.01, "batch_pairs": 256},
        "model": {"type": "word2vec", "dim": 16, "negatives": 5},
        "train": {"seed": 1, "optimizer": "sgd", "precision": "fp32", "lr": 5.0, "schedule": "linear",
                  "warmup_steps": 0, "min_lr_ratio": 0.004, "clip_norm": None, "max_steps": 200, "eval_every": 100,
                  "log_every": 50, "threads": 1},
    }
    for name, values in sections.items():
        cfg[name] = {**cfg[name], **values}
    return config_from_dict(cfg)


@pytest.mark.parametrize("objective, lr", [("negative_sampling", 5.0), ("softmax", 1.0)])
def test_menino_moleque_and_pia_are_each_others_nearest_neighbours(tmp_path, objective, lr):
    train(_config(model={"objective": objective}, train={"lr": lr}), tmp_path / "run", **QUIET)
    vectors = load_word_vectors(tmp_path / "run")
    for boy in BOYS:
        assert {w for w, _ in vectors.similar(boy, k=2)} == set(BOYS) - {boy}


def test_resume_ends_with_the_same_vectors_as_an_uninterrupted_run(tmp_path):
    """Stopped mid-epoch (77 batches an epoch) at step 90, extended to 120 with --resume."""
    constant = {"schedule": "constant", "max_steps": 120, "eval_every": 45}
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(_config(train=constant), straight, **QUIET)
    first = train(_config(train={**constant, "max_steps": 90}), stopped, **QUIET)
    assert (first.epoch, first.step) == (1, 90)
    assert train(None, stopped, resume=True, overrides=["train.max_steps=120"], **QUIET).step == 120
    a = load_file(straight / "checkpoints/last/model.safetensors")
    b = load_file(stopped / "checkpoints/last/model.safetensors")
    assert a.keys() == b.keys() == {"W", "U"}
    for key in a:
        assert torch.equal(a[key], b[key])


def test_dev_loss_is_logged_and_picks_best(tmp_path):
    dev = tmp_path / "dev.txt"
    dev.write_text("deixa o menino jogar\no gato dorme no quintal\n", encoding="utf-8")
    result = train(_config(data={"dev": str(dev)}, train={"eval_every": 50}), tmp_path / "run", **QUIET)
    records = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    logged = [r["dev_loss"] for r in records if "dev_loss" in r]
    assert len(logged) == 4 and result.best == min(logged)
    assert logged[-1] < 5 * math.log(2)  # an untrained model (U = 0) scores (1 + K) log 2 per pair


def test_cli_similar_analogy_and_export(tmp_path, capsys):
    run, out = tmp_path / "run", tmp_path / "vectors.txt"
    train(_config(), run, **QUIET)
    assert main(["embed", "similar", str(run), "piá", "-k", "2"]) == 0
    assert {line.split("\t")[0] for line in capsys.readouterr().out.splitlines()} == {"menino", "moleque"}
    assert main(["embed", "analogy", str(run), "menino", "jogar", "piá", "-k", "3"]) == 0
    assert not {"menino", "jogar", "piá"} & {ln.split("\t")[0] for ln in capsys.readouterr().out.splitlines()}
    assert main(["embed", "export", str(run), "--out", str(out)]) == 0
    exported = out.read_text(encoding="utf-8").splitlines()
    vectors = load_word_vectors(run)
    assert exported[0] == f"{len(vectors)} 16"
    word, *values = exported[1].split()
    assert torch.equal(torch.tensor([float(v) for v in values]), vectors[word])


def test_cli_refuses_a_config_of_another_task(tmp_path, capsys):
    path = tmp_path / "t.yaml"
    path.write_text("task: translation\n", encoding="utf-8")
    assert main(["embed", "train", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "a 'translation' config; this command trains task: word2vec" in capsys.readouterr().err


def test_bad_text_files_are_named_with_their_line(tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("deixa o menino\njogar na rua\n".encode("latin-1") + b"caf\xe9\n")
    with pytest.raises(DataError, match=r"latin1.txt:3: invalid UTF-8 byte 0xe9"):
        read_sentences(str(latin1), lowercase=True)
    digits = tmp_path / "digits.txt"
    digits.write_text("123 456\n--\n", encoding="utf-8")
    with pytest.raises(DataError, match="digits.txt: no words found"):
        read_sentences(str(digits), lowercase=True)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="empty.txt"):
        read_sentences(str(empty), lowercase=True)


def test_config_keys_are_checked():
    with pytest.raises(ConfigError, match="data.window"):
        _config(data={"window": 0})
    with pytest.raises(ConfigError, match="model.negatives"):
        _config(model={"negatives": 0})
    with pytest.raises(ConfigError, match="model.layers"):
        _config(model={"layers": 2})
