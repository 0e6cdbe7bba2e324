"""Skip-gram data: pairs against a per-position loop, the subsampling formula, negatives, determinism."""

import math
from collections import Counter

import pytest
import torch

from seqlab.data.deixa import BOYS, generate_deixa_sentences
from seqlab.data.skipgram import (
    SkipGramBatches,
    Vocabulary,
    keep_probabilities,
    noise_distribution,
    skipgram_pairs,
    tokenize,
)
from seqlab.errors import DataError


def test_tokenize_keeps_letters_and_inner_apostrophes():
    assert tokenize("O'er the Piá, 3 cats--and 'twas!") == ["o'er", "the", "piá", "cats", "and", "twas"]
    assert tokenize("Deixa O", lowercase=False) == ["Deixa", "O"]


def test_pairs_equal_a_per_position_loop():
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 9, (40,), generator=g)
    sentence = torch.tensor([0] * 7 + [1] * 1 + [2] * 12 + [3] * 20)
    reach = torch.randint(1, 4, (40,), generator=g)
    expected = Counter()
    for i in range(40):
        for j in range(-int(reach[i]), int(reach[i]) + 1):
            if j != 0 and 0 <= i + j < 40 and sentence[i + j] == sentence[i]:
                expected[(int(ids[i]), int(ids[i + j]))] += 1
    centre, context = skipgram_pairs(ids, sentence, reach, window=3)
    assert Counter(zip(centre.tolist(), context.tolist())) == expected


def test_keep_probability_is_word2vecs_formula():
    counts = [5000, 300, 20, 1]
    t = 1e-3
    total = sum(counts)
    expected = [min(1.0, (math.sqrt(c / (t * total)) + 1) * (t * total) / c) for c in counts]
    assert keep_probabilities(counts, t).tolist() == pytest.approx(expected, rel=1e-6)
    assert keep_probabilities(counts, 0).tolist() == [1.0] * 4


def _batches(**kw):
    sentences = [tokenize(s) for s in generate_deixa_sentences(300, seed=1)]
    vocab = Vocabulary.build(sentences, min_count=1)
    ids, sentence = vocab.encode(sentences)
    args = dict(window=2, subsample=1e-2, negatives=3, batch_pairs=64, seed=5) | kw
    return vocab, SkipGramBatches(ids, sentence, vocab.counts, **args)


def test_negatives_follow_the_noise_distribution():
    vocab, batches = _batches(negatives=50)
    drawn = torch.cat([batches.batch(0, p).negatives.reshape(-1) for p in range(len(batches))])
    freq = torch.bincount(drawn, minlength=len(vocab)).double() / len(drawn)
    expected = noise_distribution(vocab.counts, 0.75)
    assert (freq - expected).abs().max() < 0.01  # > 50,000 draws


def test_batches_are_deterministic_cover_the_epoch_and_resume_anywhere():
    _, a = _batches()
    _, b = _batches()
    n = len(a)
    first = [batch for _, (e, p, batch) in zip(range(2 * n + 3), a.iterate())]
    assert first[n].centre.tolist() != first[0].centre.tolist()  # a new epoch draws anew
    resumed = [batch for _, (e, p, batch) in zip(range(n + 1), b.iterate(1, 2))]
    for x, y in zip(first[n + 2:], resumed):
        assert torch.equal(x.centre, y.centre) and torch.equal(x.negatives, y.negatives)
    centre, context = a.epoch_pairs(1)
    joined = first[n:2 * n]
    assert torch.equal(torch.cat([x.centre for x in joined]), centre)
    assert torch.equal(torch.cat([x.context for x in joined]), context)


def test_vocabulary_min_count_order_and_round_trip(tmp_path):
    vocab = Vocabulary.build([["b", "a", "b"], ["c", "a", "b"]], min_count=2)
    assert vocab.words == ["b", "a"] and vocab.counts == [3, 2]
    ids, sentence = vocab.encode([["a", "c", "b"], ["x"], ["b"]])
    assert ids.tolist() == [1, 0, 0] and sentence.tolist() == [0, 0, 2]
    vocab.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json") == vocab
    with pytest.raises(DataError, match="corpus.txt: no word occurs at least min_count=5 times"):
        Vocabulary.build([["a"]], min_count=5, source="corpus.txt")


def test_deixa_corpus_starts_with_the_course_sentences():
    sentences = generate_deixa_sentences(50, seed=0)
    assert sentences[:3] == [f"deixa o {boy} jogar" for boy in BOYS]
    assert sentences == generate_deixa_sentences(50, seed=0) != generate_deixa_sentences(50, seed=1)
