"""Every YAML under configs/ validates and builds its model."""

from pathlib import Path

import pytest

from seqlab.config import load_config
from seqlab.data.labelled import LabelSet
from seqlab.data.skipgram import Vocabulary
from seqlab.tasks import TaskData, make_task
from seqlab.tasks.classification import ClassificationText
from seqlab.text.pair import TokenizerPair
from seqlab.text.tokenizer import CharTokenizer

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_configs_exist():
    assert len(CONFIGS) >= 4


def _tokenizers(task: str):
    """Tokenizer(s) of 100 symbols in the form the task keeps them (three classes to classify;
    word2vec: a vocabulary)."""
    if task == "word2vec":
        return Vocabulary([f"w{i}" for i in range(100)], [1] * 100)
    char = CharTokenizer.train(["".join(chr(33 + i) for i in range(96))], vocab_size=100)
    if task == "classification":
        return ClassificationText(char, LabelSet(["a", "b", "c"]))
    return TokenizerPair(char) if task in ("translation", "chat") else char


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_and_builds(path):
    cfg = load_config(path)
    assert cfg.name == path.stem
    model = make_task(cfg).build_model(TaskData(batches=None, dev=None, text=_tokenizers(cfg.task)))
    if cfg.task == "classification":
        assert model.num_classes == 3
    else:
        logits_size = model.tgt_vocab_size if cfg.task in ("translation", "chat") else model.vocab_size  # w2v: rows of W
        assert logits_size == 100
