"""Every YAML under configs/ validates and builds its model."""

from pathlib import Path

import pytest

from seqlab.config import load_config
from seqlab.tasks import TaskData, make_task
from seqlab.text.pair import TokenizerPair
from seqlab.text.tokenizer import CharTokenizer

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_configs_exist():
    assert len(CONFIGS) >= 4


def _tokenizers(task: str):
    """Tokenizer(s) of 100 symbols in the form the task keeps them."""
    char = CharTokenizer.train(["".join(chr(33 + i) for i in range(96))], vocab_size=100)
    return TokenizerPair(char) if task == "translation" else char


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_and_builds(path):
    cfg = load_config(path)
    assert cfg.name == path.stem
    model = make_task(cfg).build_model(TaskData(batches=None, dev=None, text=_tokenizers(cfg.task)))
    logits_size = model.tgt_vocab_size if cfg.task == "translation" else model.vocab_size
    assert logits_size == 100
