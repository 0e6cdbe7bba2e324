"""Toy tasks: targets follow their definition; training on one with the ordinary trainer learns it."""

import pytest
import torch

from seqlab.studies.tasks import exact_match, make_pairs, train_on_task


def test_targets_follow_each_task():
    for src, tgt in make_pairs("reverse", 20, (2, 9), seed=0):
        assert tgt.split() == src.split()[::-1]
    for src, tgt in make_pairs("sort", 20, (2, 9), seed=0):
        assert tgt.split() == sorted(src.split())
    for src, tgt in make_pairs("copy", 20, 7, seed=0):
        assert tgt == src and len(src.split()) == 7
    for src, tgt in make_pairs("adding", 20, 10, seed=0):
        marked = [int(tok[1:]) for tok in src.split() if tok.startswith("*")]
        assert len(marked) == 2 and int(tgt) == sum(marked)


def test_pairs_depend_on_the_seed_only():
    assert make_pairs("copy", 10, (3, 6), seed=4) == make_pairs("copy", 10, (3, 6), seed=4)
    assert make_pairs("copy", 10, (3, 6), seed=4) != make_pairs("copy", 10, (3, 6), seed=5)


def test_bad_task_or_length_is_an_error():
    with pytest.raises(ValueError, match="unknown task"):
        make_pairs("shuffle", 3, 4, seed=0)
    with pytest.raises(ValueError, match="at least 2"):
        make_pairs("copy", 3, 1, seed=0)


def test_exact_match_counts_whole_sequences():
    assert exact_match(["1 2 3", "1 2", "4"], ["1 2 3", "1 2 3", "4"]) == pytest.approx(2 / 3)


def _reverse_accuracy(tmp_path, positions: str) -> float:
    train_pairs, test_pairs = make_pairs("reverse", 1000, (3, 6), seed=1), make_pairs("reverse", 50, (3, 6), seed=2)
    model = {"type": "transformer", "layers": 2, "d_model": 32, "heads": 2, "ffn": 64, "dropout": 0.0,
             "positions": positions}
    return train_on_task(tmp_path, positions, train_pairs=train_pairs, test_pairs=test_pairs, model=model,
                         max_steps=200).accuracy


@pytest.mark.slow
def test_reverse_fails_without_positional_encoding_and_is_learned_with_it(tmp_path):
    assert _reverse_accuracy(tmp_path, "none") < 0.2
    assert _reverse_accuracy(tmp_path, "sinusoidal") > 0.5
    assert torch.get_num_threads() == 1  # the trainer's train.threads did not leak out


@pytest.mark.slow
def test_attention_beats_a_fixed_context_on_long_copies(tmp_path):
    train_pairs, test_pairs = make_pairs("copy", 800, 12, seed=1), make_pairs("copy", 50, 12, seed=2)
    model = {"type": "lstm", "layers": 1, "embedding": 32, "hidden": 48, "bidirectional": False,
             "input_feeding": False, "dropout": 0.0}
    fixed, attention = (train_on_task(tmp_path, kind, train_pairs=train_pairs, test_pairs=test_pairs,
                                      model={**model, "attention": kind}, max_steps=150)
                        for kind in ("none", "general"))
    assert attention.accuracy > fixed.accuracy + 0.2
    assert attention.final_loss < fixed.final_loss
