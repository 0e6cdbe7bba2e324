"""Every YAML under configs/ validates and builds its model."""

from pathlib import Path

import pytest

from seqlab.config import load_config
from seqlab.models.build import build_model
from seqlab.models.classifier import build_classifier

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_configs_exist():
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_and_builds(path):
    cfg = load_config(path)
    assert cfg.name == path.stem
    if cfg.task == "classification":
        assert build_classifier(cfg.model, 100, 3).num_classes == 3
    else:
        model = build_model(cfg.model, 100, 100)
        assert model.tgt_vocab_size == 100
