"""Nearest neighbours and analogies by cosine similarity, against a brute-force ranking."""

import pytest
import torch

from seqlab.errors import SeqlabError
from seqlab.models.word_vectors import WordVectors


def _cos(x, y):
    return float(x @ y / (x.norm() * y.norm()))


def test_similar_equals_a_brute_force_ranking():
    torch.manual_seed(0)
    words = [f"w{i}" for i in range(12)]
    wv = WordVectors(words, torch.randn(12, 5))
    ranked = sorted(((w, _cos(wv[w], wv["w3"])) for w in words if w != "w3"), key=lambda p: -p[1])
    got = wv.similar("w3", k=4)
    assert [w for w, _ in got] == [w for w, _ in ranked[:4]]
    assert [s for _, s in got] == pytest.approx([s for _, s in ranked[:4]], abs=1e-6)


def test_analogy_adds_unit_directions_and_excludes_the_question():
    # king = royal + male, queen = royal + female, at lengths that differ
    royal, male, female = torch.eye(4)[0], torch.eye(4)[1], torch.eye(4)[2]
    words = ["man", "woman", "king", "queen", "other"]
    vectors = torch.stack([male, 3 * female, 2 * (royal + male), royal + female, torch.eye(4)[3]])
    wv = WordVectors(words, vectors)
    assert wv.analogy("man", "king", "woman", k=1)[0][0] == "queen"
    assert {w for w, _ in wv.analogy("man", "king", "woman", k=2)}.isdisjoint({"man", "king", "woman"})


def test_unknown_word_is_a_clear_error():
    wv = WordVectors(["a", "b"], torch.ones(2, 2))
    with pytest.raises(SeqlabError, match="'zebra' is not in the vocabulary"):
        wv.similar("zebra")
