"""Every YAML under configs/ validates and builds its model."""

from pathlib import Path

import pytest

from seqlab.config import load_config
from seqlab.models.build import build_model

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_configs_exist():
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_and_builds(path):
    cfg = load_config(path)
    assert cfg.name == path.stem
    model = build_model(cfg.model, 100, 100)
    assert model.tgt_vocab_size == 100
