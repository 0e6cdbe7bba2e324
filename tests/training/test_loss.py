"""Label-smoothed NLL against F.cross_entropy and a hand-written q'(k)."""

import math

import pytest
import torch
import torch.nn.functional as F

from seqlab.text.specials import PAD
from seqlab.training.loss import label_smoothed_nll


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 7, generator=g)
    target = torch.tensor([[5, 3, 2, PAD], [4, 6, PAD, PAD]])
    return logits, target


def test_eps_zero_is_cross_entropy(batch):
    logits, target = batch
    loss, nll, n = label_smoothed_nll(logits, target, epsilon=0.0)
    ref = F.cross_entropy(logits.reshape(-1, 7), target.reshape(-1), reduction="sum", ignore_index=PAD)
    assert n == 5
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(nll, ref)


def test_smoothing_matches_manual_q(batch):
    logits, target = batch
    eps, V = 0.1, 7
    loss, nll, n = label_smoothed_nll(logits, target, epsilon=eps)
    log_p = torch.log_softmax(logits, dim=-1)
    expected, expected_nll = 0.0, 0.0
    for b in range(2):
        for t in range(4):
            y = int(target[b, t])
            if y == PAD:
                continue
            # q'(k) = (1 - eps) 1[k = y] + eps / (V - 1) 1[k != PAD]
            q = torch.full((V,), eps / (V - 1))
            q[PAD] = 0.0
            q[y] += 1 - eps
            assert math.isclose(float(q.sum()), 1.0, rel_tol=1e-6)
            expected += float(-(q * log_p[b, t]).sum())
            expected_nll += float(-log_p[b, t, y])
    assert n == 5
    assert math.isclose(float(loss), expected, rel_tol=1e-5)
    assert math.isclose(float(nll), expected_nll, rel_tol=1e-5)
    assert float(loss) > float(nll) * (1 - eps)


def test_without_pad_column_matches_torch_label_smoothing(batch):
    # ignore_index outside the vocabulary: eps is spread over all V classes, as in torch
    logits, target = batch
    target = target.masked_fill(target.eq(PAD), -100)
    loss, _, _ = label_smoothed_nll(logits, target, epsilon=0.2, ignore_index=-100)
    ref = F.cross_entropy(logits.reshape(-1, 7), target.reshape(-1), reduction="sum", label_smoothing=0.2)
    torch.testing.assert_close(loss, ref)


def test_padding_positions_contribute_nothing(batch):
    logits, target = batch
    changed = logits.clone()
    changed[target.eq(PAD)] = torch.randn(3, 7) * 100
    a = label_smoothed_nll(logits, target, epsilon=0.1)
    b = label_smoothed_nll(changed, target, epsilon=0.1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]


def test_gradient_finite_and_zero_at_pad(batch):
    logits, target = batch
    logits = logits.clone().requires_grad_(True)
    loss, _, _ = label_smoothed_nll(logits, target, epsilon=0.1)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert torch.equal(logits.grad[target.eq(PAD)], torch.zeros(3, 7))
    assert logits.grad[target.ne(PAD)].abs().sum() > 0


def test_bf16_logits_computed_in_float32(batch):
    logits, target = batch
    low = logits.to(torch.bfloat16)
    loss, nll, _ = label_smoothed_nll(low, target, epsilon=0.1)
    ref, ref_nll, _ = label_smoothed_nll(low.float(), target, epsilon=0.1)
    assert loss.dtype == torch.float32 and nll.dtype == torch.float32
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(nll, ref_nll)


def test_all_padding_gives_zero():
    loss, nll, n = label_smoothed_nll(torch.randn(1, 3, 5), torch.full((1, 3), PAD), epsilon=0.1)
    assert n == 0 and float(loss) == 0.0 and float(nll) == 0.0
