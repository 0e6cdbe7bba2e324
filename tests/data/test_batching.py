import itertools
import random

import pytest
import torch

from seqlab.data.batching import Batch, TokenBatcher, example_length, make_batch, sequential_batches
from seqlab.errors import SeqlabError
from seqlab.text.specials import EOS, PAD, SOS


def random_examples(n=60, seed=0, max_len=12):
    rng = random.Random(seed)
    return [
        (
            [rng.randrange(4, 50) for _ in range(rng.randint(1, max_len))],
            [rng.randrange(4, 50) for _ in range(rng.randint(0, max_len))],
        )
        for _ in range(n)
    ]


def test_make_batch_pads_and_shifts():
    batch = make_batch([([5, 6, 7], [8, 9]), ([10], [11, 12, 13])], index=[4, 1])
    assert batch.src.tolist() == [[5, 6, 7], [10, PAD, PAD]]
    assert batch.tgt_in.tolist() == [[SOS, 8, 9, PAD], [SOS, 11, 12, 13]]
    assert batch.tgt_out.tolist() == [[8, 9, EOS, PAD], [11, 12, 13, EOS]]
    assert batch.src.dtype == batch.tgt_in.dtype == batch.tgt_out.dtype == torch.long
    assert batch.n_tokens == 3 + 4 == int(batch.tgt_out.ne(PAD).sum())
    assert batch.index == [4, 1] and len(batch) == 2
    moved = batch.to("cpu")
    assert torch.equal(moved.tgt_out, batch.tgt_out) and moved.index == [4, 1]


def test_make_batch_source_only():
    batch = make_batch([([5], []), ([], [])], index=[0, 1])
    assert batch.src.tolist() == [[5], [PAD]]
    assert batch.tgt_in.tolist() == [[SOS], [SOS]]
    assert batch.tgt_out.tolist() == [[EOS], [EOS]]


def test_budget_respected_and_every_example_once():
    examples = random_examples()
    examples.append(([7] * 40, [8] * 3))  # longer than the budget alone
    long_id = len(examples) - 1
    batcher = TokenBatcher(examples, batch_tokens=30, seed=3)
    batches = batcher.epoch_batches(0)
    assert len(batches) == len(batcher)
    assert sorted(itertools.chain(*batches)) == list(range(len(examples)))
    assert [long_id] in batches
    for ids in batches:
        # the cost is the padded size of the tensors, the extra <sos>/<eos> included
        b = batcher.batch(ids)
        cost = b.src.shape[0] * max(b.src.shape[1], b.tgt_in.shape[1])
        assert cost == len(ids) * max(example_length(examples[i]) for i in ids)
        assert cost <= 30 or ids == [long_id]


def test_batches_are_length_sorted_buckets():
    examples = [([1] * n, [1] * n) for n in [1, 9, 2, 8, 3, 7]]
    batcher = TokenBatcher(examples, batch_tokens=20, shuffle=False)
    # padded lengths n + 1, sorted: 2, 3, 4 | 8, 9 | 10  (4 * 8 > 20, 3 * 10 > 20)
    assert batcher.epoch_batches(0) == [[0, 2, 4], [5, 3], [1]]
    assert batcher.epoch_batches(1) == batcher.epoch_batches(0)


def test_shuffle_deterministic_per_seed_and_epoch():
    examples = random_examples()
    a = TokenBatcher(examples, batch_tokens=24, seed=1)
    b = TokenBatcher(examples, batch_tokens=24, seed=1)
    assert a.epoch_batches(0) == b.epoch_batches(0)
    assert a.epoch_batches(5) == b.epoch_batches(5)
    assert a.epoch_batches(0) != a.epoch_batches(1)
    assert sorted(a.epoch_batches(0)) == sorted(a.epoch_batches(1))  # same buckets, new order
    c = TokenBatcher(examples, batch_tokens=24, seed=2)
    assert c.epoch_batches(0) != a.epoch_batches(0)


def _take(iterator, n):
    return [(e, p, b.index, b.src.tolist()) for e, p, b in itertools.islice(iterator, n)]


def test_iterate_resumes_exactly():
    examples = random_examples(n=30)
    batcher = TokenBatcher(examples, batch_tokens=30, seed=7)
    n = len(batcher)
    full = _take(batcher.iterate(), 3 * n)
    assert [(e, p) for e, p, *_ in full] == [(e, p) for e in range(3) for p in range(n)]
    assert [idx for _, _, idx, _ in full[:n]] == batcher.epoch_batches(0)
    # trained up to the batch at (1, 2): resume at (1, 3), with a fresh batcher
    k = n + 2
    resumed = _take(TokenBatcher(examples, batch_tokens=30, seed=7).iterate(1, 3), 3 * n - k - 1)
    assert resumed == full[k + 1 :]
    # a position past the end of an epoch continues with the next epoch
    assert _take(batcher.iterate(0, n), 1) == full[n : n + 1]


def test_sequential_batches_cover_all_and_restore_order():
    examples = random_examples(n=25, seed=4)
    batches = sequential_batches(examples, batch_tokens=40)
    assert sorted(itertools.chain(*(b.index for b in batches))) == list(range(25))
    restored = [None] * 25
    for b in batches:
        assert isinstance(b, Batch)
        for row, i in enumerate(b.index):
            src = [t for t in b.src[row].tolist() if t != PAD]
            tgt = [t for t in b.tgt_out[row].tolist() if t != PAD][:-1]
            restored[i] = (src, tgt)
    assert restored == examples
    lengths = [max(example_length(examples[i]) for i in b.index) for b in batches]
    assert lengths == sorted(lengths)  # shortest first, deterministic


def test_empty_examples_rejected():
    with pytest.raises(SeqlabError, match="no training examples"):
        TokenBatcher([], batch_tokens=10)
