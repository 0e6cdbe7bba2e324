"""Label-smoothed NLL against F.cross_entropy and a hand-written q'(k)."""

import math

import pytest
import torch
import torch.nn.functional as F

from seqlab.text.specials import PAD
from seqlab.training.loss import label_smoothed_nll, output_layer_nll


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


# ---------------------------------------------------------------- the fused output layer + loss


def _projection_case(seed=0, V=11, d=6, with_bias=True):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(3, 5, d, generator=g, requires_grad=True)
    W = torch.randn(V, d, generator=g, requires_grad=True)
    b = torch.randn(V, generator=g, requires_grad=True) if with_bias else None
    target = torch.randint(4, V, (3, 5), generator=g)
    target[0, 3:] = PAD
    target[2, 1:] = PAD
    return h, W, b, target


def _grads(loss, tensors):
    return torch.autograd.grad(loss, [t for t in tensors if t is not None])


@pytest.mark.parametrize("chunk_rows", [1, 3, 256])
@pytest.mark.parametrize("epsilon", [0.0, 0.1])
@pytest.mark.parametrize("with_bias", [True, False])
def test_output_layer_nll_equals_linear_then_loss(chunk_rows, epsilon, with_bias):
    h, W, b, target = _projection_case(with_bias=with_bias)
    ref_loss, ref_nll, ref_n = label_smoothed_nll(F.linear(h, W, b), target, epsilon=epsilon)
    loss, nll, n = output_layer_nll(h, W, b, target, epsilon=epsilon, chunk_rows=chunk_rows)
    assert n == ref_n == 9
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(nll, ref_nll, rtol=1e-5, atol=1e-5)
    # a scaled loss, as the trainer uses (sum / n): the upstream gradient must reach every input
    for got, want in zip(_grads(loss / n * 3.0, (h, W, b)), _grads(ref_loss / n * 3.0, (h, W, b))):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_output_layer_nll_gradient_zero_at_padded_rows():
    h, W, b, target = _projection_case()
    loss, _, _ = output_layer_nll(h, W, b, target, epsilon=0.1)
    (grad_h,) = torch.autograd.grad(loss, [h])
    assert torch.equal(grad_h[target.eq(PAD)], torch.zeros(int(target.eq(PAD).sum()), h.size(-1)))
    assert grad_h[target.ne(PAD)].abs().sum() > 0


def test_output_layer_nll_without_pad_column_matches_torch():
    h, W, b, target = _projection_case(seed=1)
    target = target.masked_fill(target.eq(PAD), -100)
    loss, _, _ = output_layer_nll(h, W, b, target, epsilon=0.2, ignore_index=-100)
    ref = F.cross_entropy(F.linear(h, W, b).reshape(-1, W.size(0)), target.reshape(-1), reduction="sum",
                          label_smoothing=0.2)
    torch.testing.assert_close(loss, ref)


def test_output_layer_nll_under_bf16_autocast_is_close_to_autocast_reference():
    h, W, b, target = _projection_case(seed=2, V=40, d=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref_loss, _, _ = label_smoothed_nll(F.linear(h, W, b), target, epsilon=0.1)
        loss, _, _ = output_layer_nll(h, W, b, target, epsilon=0.1, chunk_rows=4)
    torch.testing.assert_close(loss, ref_loss, rtol=2e-2, atol=1e-2)
    ref_grads, grads = _grads(ref_loss, (h, W, b)), _grads(loss, (h, W, b))
    for got, want in zip(grads, ref_grads):
        assert got.dtype == torch.float32  # gradients come back in the parameters' dtype
        torch.testing.assert_close(got, want, rtol=5e-2, atol=2e-2)


def test_output_layer_nll_rejects_mismatched_shapes():
    h, W, b, target = _projection_case()
    with pytest.raises(ValueError, match="do not match target"):
        output_layer_nll(h, W, b, target[:, :4], epsilon=0.1)
    with pytest.raises(ValueError, match="epsilon"):
        output_layer_nll(h, W, b, target, epsilon=1.0)
