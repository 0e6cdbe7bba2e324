"""Fixtures of the export tests: the sentences they translate and a second, untrained Transformer."""

from __future__ import annotations

import pytest
import torch

from seqlab.config import TransformerConfig
from seqlab.models.transformer import build_transformer
from seqlab.text.pair import TokenizerPair


@pytest.fixture(scope="session")
def export_sentences(tiny_corpus) -> list[str]:
    """Every source sentence of the tiny corpus (80), plus one that is empty."""
    return [s for s, _ in tiny_corpus.train_pairs + tiny_corpus.dev_pairs] + [""]


@pytest.fixture(scope="session")
def prenorm_transformer(tiny_run):
    """An untrained pre-norm Transformer with learned positions, an untied output layer and 2 encoder
    layers over 1 decoder layer, with the tiny run's tokenizers: the other branches of every mapping."""
    tokenizers = TokenizerPair.load(tiny_run.path)
    torch.manual_seed(0)
    cfg = TransformerConfig(layers=2, decoder_layers=1, d_model=16, heads=4, ffn=24, norm="pre",
                            positions="learned", tie_output=False, max_positions=40)
    model = build_transformer(cfg, tokenizers.src.vocab_size, tokenizers.tgt.vocab_size).eval()
    with torch.no_grad():  # non-zero biases and norms, so a mix-up of any of them shows
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    return model, tokenizers
