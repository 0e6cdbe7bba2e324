"""Every YAML under configs/ validates and builds its model."""

from pathlib import Path

import pytest

from seqlab.config import load_config
from seqlab.data.skipgram import Vocabulary
from seqlab.models.build import build_model
from seqlab.tasks import TaskData, make_task

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_configs_exist():
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_and_builds(path):
    cfg = load_config(path)
    assert cfg.name == path.stem
    if cfg.task == "word2vec":
        vocab = Vocabulary([f"w{i}" for i in range(100)], [1] * 100)
        assert make_task(cfg).build_model(TaskData(None, None, vocab)).vocab_size == 100
        return
    model = build_model(cfg.model, 100, 100)
    assert model.tgt_vocab_size == 100
