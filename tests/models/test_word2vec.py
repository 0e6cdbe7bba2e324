"""Skip-gram objectives against per-pair loops: the readable and the fused negative-sampling loss."""

import math

import pytest
import torch

from seqlab.models.word2vec import SkipGram
from seqlab.nn.negative_sampling import negative_sampling_loss_fused


def _model(V=7, d=4, objective="negative_sampling"):
    torch.manual_seed(0)
    model = SkipGram(V, dim=d, objective=objective)
    with torch.no_grad():  # U starts at zero; random values make every term count
        model.U.normal_()
        model.W.normal_()
    return model


def _pairs():
    centre = torch.tensor([0, 3, 3, 6, 2])
    context = torch.tensor([1, 2, 4, 0, 2])
    negatives = torch.tensor([[2, 5], [2, 6], [1, 1], [0, 3], [4, 5]])  # pair 1 and 3 draw their context
    return centre, context, negatives


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _per_pair_negative_sampling(W, U, centre, context, negatives) -> float:
    """-log sigma(u_o^T v_c) - sum_k log sigma(-u_k^T v_c), one pair and one noise word at a time."""
    total = 0.0
    for c, o, ks in zip(centre.tolist(), context.tolist(), negatives.tolist()):
        v = W[c].tolist()
        dot = lambda w: sum(a * b for a, b in zip(U[w].tolist(), v))  # noqa: E731
        total -= math.log(_sigmoid(dot(o)))
        for k in ks:
            if k != o:  # word2vec skips a noise word equal to the context word
                total -= math.log(_sigmoid(-dot(k)))
    return total


def test_negative_sampling_losses_equal_a_per_pair_loop():
    model = _model()
    centre, context, negatives = _pairs()
    expected = _per_pair_negative_sampling(model.W.detach(), model.U.detach(), centre, context, negatives)
    readable = model.negative_sampling_loss(centre, context, negatives)
    fused = model(centre, context, negatives)
    assert readable.item() == pytest.approx(expected, rel=1e-5)
    assert fused.item() == pytest.approx(expected, rel=1e-5)


def test_fused_gradients_equal_autograd_of_the_readable_loss():
    model = _model()
    centre, context, negatives = _pairs()
    readable = torch.autograd.grad(model.negative_sampling_loss(centre, context, negatives), [model.W, model.U])
    fused = torch.autograd.grad(negative_sampling_loss_fused(model.W, model.U, centre, context, negatives) * 2.0,
                                [model.W, model.U])
    for r, f in zip(readable, fused):
        torch.testing.assert_close(f, 2.0 * r, rtol=1e-5, atol=1e-6)
    assert readable[0][5].abs().sum() == 0  # word 5 is never a centre: no gradient on v_5


def test_softmax_loss_equals_a_per_pair_loop():
    model = _model(objective="softmax")
    centre, context, negatives = _pairs()
    W, U = model.W.detach(), model.U.detach()
    expected = 0.0
    for c, o in zip(centre.tolist(), context.tolist()):
        scores = [float(U[w] @ W[c]) for w in range(U.shape[0])]  # u_w^T v_c
        expected -= scores[o] - math.log(sum(math.exp(s) for s in scores))
    assert model(centre, context, negatives).item() == pytest.approx(expected, rel=1e-5)


def test_initialisation_is_word2vecs():
    model = SkipGram(50, dim=10)
    assert model.W.abs().max() <= 0.05 and model.W.std() > 0
    assert torch.equal(model.U, torch.zeros(50, 10))
