"""Classification metrics: confusion matrix, accuracy, per-class and macro F1; the batched prediction pass.

With M the C x C confusion matrix, M[i, j] = number of examples of true class i predicted as j:

    accuracy   = sum_i M[i, i] / sum_ij M[i, j]
    P_c        = M[c, c] / sum_i M[i, c]          (precision of class c; 0 when c is never predicted)
    R_c        = M[c, c] / sum_j M[c, j]          (recall of class c; 0 when c never occurs)
    F1_c       = 2 P_c R_c / (P_c + R_c)          (0 when P_c + R_c = 0)
    macro-F1   = 1/C sum_c F1_c                   (every class weighs the same, whatever its size)

These are the definitions of scikit-learn's ``accuracy_score``, ``f1_score(average="macro")`` with
``zero_division=0``, and ``confusion_matrix``; ``tests/evaluation/test_classification.py`` holds
them equal where scikit-learn is installed, and to hand-computed cases otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqlab.text.specials import PAD

__all__ = ["ClassificationResult", "accuracy", "confusion_matrix", "f1_per_class", "macro_f1", "predict_batches",
           "score_predictions"]


def confusion_matrix(gold: Sequence[int], predicted: Sequence[int], num_classes: int) -> Tensor:
    """(C, C) int64 counts: row = true class, column = predicted class."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    m = torch.zeros(num_classes * num_classes, dtype=torch.int64)
    index = torch.as_tensor(list(gold), dtype=torch.int64) * num_classes + torch.as_tensor(list(predicted),
                                                                                          dtype=torch.int64)
    m.index_add_(0, index, torch.ones_like(index))
    return m.view(num_classes, num_classes)  # (C, C)


def accuracy(m: Tensor) -> float:
    """sum_i M[i, i] / sum M, from a confusion matrix."""
    total = int(m.sum())
    return float(m.diagonal().sum()) / total if total else float("nan")


def f1_per_class(m: Tensor) -> Tensor:
    """(C,) F1_c = 2 P_c R_c / (P_c + R_c), with 0 where a ratio's denominator is 0."""
    m = m.double()
    tp = m.diagonal()
    predicted, actual = m.sum(dim=0), m.sum(dim=1)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(actual > 0, tp / actual.clamp(min=1), torch.zeros_like(tp))
    denominator = precision + recall
    return torch.where(denominator > 0, 2 * precision * recall / denominator.clamp(min=1e-300), torch.zeros_like(tp))


def macro_f1(m: Tensor) -> float:
    """1/C sum_c F1_c, from a confusion matrix."""
    return float(f1_per_class(m).mean())


@dataclass
class ClassificationResult:
    """Scores of a classifier on labelled data.

    Attributes:
        accuracy, macro_f1: see the module docstring.
        confusion: (C, C) counts, row = true class, column = predicted.
        labels: the C class names, in id order.
        predictions: the predicted class id of every example, in input order.
        probabilities: p(predicted class | x) of every example.
    """

    accuracy: float
    macro_f1: float
    confusion: Tensor
    labels: list[str]
    predictions: list[int]
    probabilities: list[float]

    def as_dict(self) -> dict:
        f1 = f1_per_class(self.confusion)
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1, "examples": len(self.predictions),
                "labels": self.labels, "confusion": self.confusion.tolist(),
                "f1_per_class": {name: float(v) for name, v in zip(self.labels, f1)}}


def score_predictions(gold: Sequence[int], predicted: Sequence[int], probabilities: Sequence[float],
                      labels: list[str]) -> ClassificationResult:
    """Accuracy, macro-F1 and the confusion matrix of ``predicted`` against ``gold``."""
    m = confusion_matrix(gold, predicted, len(labels))
    return ClassificationResult(accuracy(m), macro_f1(m), m, list(labels), list(predicted), list(probabilities))


def _padded(rows: Sequence[Sequence[int]]) -> Tensor:
    width = max(1, max(len(r) for r in rows))
    out = torch.full((len(rows), width), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.as_tensor(r, dtype=torch.long)
    return out  # (B, T)


@torch.inference_mode()
def predict_batches(model: nn.Module, ids: Sequence[Sequence[int]], *, batch_size: int = 64) -> Tensor:
    """Class probabilities p(y | x) of every id sequence, in input order.

    Sequences are sorted by length into batches (less padding) and run in eval mode (the previous
    mode is restored).

    Args:
        model: maps (B, T) ids to (B, C) logits.
        ids: token ids of each input (at least one token each).
        batch_size: sequences per forward pass.

    Returns:
        (N, C) probabilities, on the CPU.
    """
    was_training = model.training
    model.eval()
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    try:
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = [None] * len(ids)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            logits = model(_padded([ids[i] for i in chunk]).to(device))
            probs = torch.softmax(logits.float(), dim=-1).cpu()  # (B, C)
            for row, i in enumerate(chunk):
                out[i] = probs[row]
        return torch.stack(out) if out else torch.zeros(0, 0)
    finally:
        model.train(was_training)
