"""Classification metrics against hand-computed values (and scikit-learn where installed)."""

import pytest
import torch

from seqlab.evaluation.classification import (
    accuracy,
    confusion_matrix,
    f1_per_class,
    macro_f1,
    predict_batches,
    score_predictions,
)
from seqlab.text.specials import PAD

GOLD = [0, 0, 0, 1, 1, 2, 2, 2, 2, 0]
PRED = [0, 1, 0, 1, 2, 2, 2, 0, 2, 0]


def test_confusion_accuracy_and_macro_f1_by_hand():
    m = confusion_matrix(GOLD, PRED, 3)
    assert m.tolist() == [[3, 1, 0], [0, 1, 1], [1, 0, 3]]
    assert accuracy(m) == pytest.approx(7 / 10)
    # class 0: P 3/4, R 3/4; class 1: P 1/2, R 1/2; class 2: P 3/4, R 3/4
    assert f1_per_class(m).tolist() == pytest.approx([0.75, 0.5, 0.75])
    assert macro_f1(m) == pytest.approx(2 / 3)


def test_a_class_never_predicted_or_never_present_scores_zero():
    m = confusion_matrix([0, 0, 1], [0, 0, 0], 3)  # class 1 never predicted, class 2 never present
    assert f1_per_class(m).tolist() == pytest.approx([0.8, 0.0, 0.0])
    result = score_predictions([0, 0, 1], [0, 0, 0], [0.9, 0.8, 0.7], ["a", "b", "c"])
    assert result.as_dict()["f1_per_class"] == pytest.approx({"a": 0.8, "b": 0.0, "c": 0.0})


def test_equal_to_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    g = torch.Generator().manual_seed(0)
    gold = torch.randint(0, 4, (200,), generator=g).tolist()
    pred = torch.randint(0, 4, (200,), generator=g).tolist()
    m = confusion_matrix(gold, pred, 4)
    assert m.tolist() == metrics.confusion_matrix(gold, pred, labels=[0, 1, 2, 3]).tolist()
    assert accuracy(m) == pytest.approx(metrics.accuracy_score(gold, pred))
    assert macro_f1(m) == pytest.approx(metrics.f1_score(gold, pred, average="macro", zero_division=0))


class _LastTokenModel(torch.nn.Module):
    """Logits = one-hot of the last real token id (mod C): padding would change the answer."""

    def forward(self, tokens):
        n = tokens.ne(PAD).sum(1) - 1
        last = tokens[torch.arange(len(tokens)), n]
        return torch.nn.functional.one_hot(last % 3, 3).float() * 10


def test_predict_batches_keeps_input_order_and_ignores_padding():
    ids = [[4, 5, 6, 7], [5], [4, 8], [6, 6, 6, 6, 6, 6, 4]]
    probs = predict_batches(_LastTokenModel(), ids, batch_size=2)
    assert probs.argmax(-1).tolist() == [7 % 3, 5 % 3, 8 % 3, 4 % 3]
    torch.testing.assert_close(probs.sum(-1), torch.ones(4))
