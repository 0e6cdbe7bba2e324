"""The sequence classifier: padding never changes a prediction, and a small generated task is learned."""

import random

import pytest
import torch

from seqlab.evaluation.classification import predict_batches
from seqlab.models.classifier import RecurrentClassifierConfig, SequenceClassifier, build_classifier
from seqlab.nn.pooling import MeanPooling
from seqlab.text.specials import PAD

VOCAB = 12


def _padded(rows):
    out = torch.full((len(rows), max(map(len, rows))), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r)
    return out


RECURRENT = [dict(type="gru", pooling="attention"), dict(type="lstm", pooling="final"),
             dict(type="rnn", pooling="mean", bidirectional=False), dict(type="lstm", pooling="final", layers=2,
                                                                           cells="explicit")]


@pytest.mark.parametrize("options", RECURRENT, ids=lambda o: f"{o['type']}-{o['pooling']}")
def test_padding_never_changes_the_logits(options):
    torch.manual_seed(0)
    cfg = RecurrentClassifierConfig(embedding=8, hidden=8, **{"layers": 1, **options})
    model = build_classifier(cfg, VOCAB, 3).eval()
    rows = [[4, 5, 6, 7, 8], [9, 4], [5, 5, 11]]
    with torch.no_grad():
        batch = model(_padded(rows))
        for i, r in enumerate(rows):
            torch.testing.assert_close(model(torch.tensor([r]))[0], batch[i], atol=1e-5, rtol=1e-5)


def _first_keyword_task(n, seed):
    """Random sequences of filler ids 6..11 holding keywords 3, 4 and 5 (ids of the three classes);
    the class is the keyword that comes *first*, so a bag of words cannot tell."""
    rng = random.Random(seed)
    rows, labels = [], []
    for _ in range(n):
        row = [rng.randrange(6, VOCAB) for _ in range(rng.randrange(4, 9))]
        keys = rng.sample([3, 4, 5], 2)
        i, j = sorted(rng.sample(range(len(row) + 1), 2))
        row.insert(i, keys[0])
        row.insert(j + 1, keys[1])
        rows.append(row)
        labels.append(keys[0] - 3)
    return rows, labels


def _train(model, rows, labels, steps, lr=1e-2):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(rows), (32,), generator=g).tolist()
        loss = torch.nn.functional.cross_entropy(model(_padded([rows[i] for i in idx])), torch.tensor(
            [labels[i] for i in idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.slow
def test_a_bigru_learns_which_keyword_comes_first():
    torch.manual_seed(0)
    train_rows, train_labels = _first_keyword_task(600, seed=1)
    test_rows, test_labels = _first_keyword_task(200, seed=2)
    model = build_classifier(RecurrentClassifierConfig(type="gru", pooling="attention", embedding=16, hidden=16,
                                                       dropout=0.0), VOCAB, 3)
    _train(model, train_rows, train_labels, steps=150)
    predicted = predict_batches(model, test_rows).argmax(-1)
    accuracy = (predicted == torch.tensor(test_labels)).float().mean().item()
    assert accuracy >= 0.95


class _BagOfWords(torch.nn.Module):
    """encoder(tokens) -> (embeddings, mask): an order-blind encoder for the interface test."""

    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(VOCAB, 16, padding_idx=PAD)

    def forward(self, tokens):
        return self.embedding(tokens), tokens.ne(PAD)


def test_any_encoder_with_the_interface_plugs_in_and_order_blind_ones_cannot_learn_order():
    torch.manual_seed(0)
    rows, labels = _first_keyword_task(600, seed=1)
    test_rows, test_labels = _first_keyword_task(200, seed=2)
    model = SequenceClassifier(encoder=_BagOfWords(), pooling=MeanPooling(), head=torch.nn.Linear(16, 3),
                               dropout=0.0, max_positions=64)
    _train(model, rows, labels, steps=250)
    accuracy = (predict_batches(model, test_rows).argmax(-1) == torch.tensor(test_labels)).float().mean().item()
    assert accuracy < 0.75  # two keywords in random order: a bag of words is right about half the time
