"""seqlab's dropout: drop rate, exact scaling, gradient, reproducibility, evaluation mode."""

import pytest
import torch

from seqlab.nn.dropout import Dropout, dropout, effective_p


def test_drop_rate_and_scale_of_kept_values():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = dropout(x, 0.1)
    dropped = y.eq(0)
    p = effective_p(0.1)
    assert abs(float(dropped.float().mean()) - p) < 0.003  # binomial sd ~ 0.0007
    torch.testing.assert_close(y[~dropped], torch.full_like(y[~dropped], 1 / (1 - p)), rtol=0, atol=0)
    assert abs(float(y.mean()) - 1.0) < 0.005  # E[y] = x


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_mask_is_unbiased_per_position_pair(p):
    # neighbouring elements share one 32-bit draw; their masks must still be independent
    torch.manual_seed(1)
    y = dropout(torch.ones(400_000), p).view(-1, 2).eq(0).float()
    both = float((y[:, 0] * y[:, 1]).mean())
    assert abs(float(y[:, 0].mean()) - p) < 0.005 and abs(float(y[:, 1].mean()) - p) < 0.005
    assert abs(both - p * p) < 0.005


def test_effective_p_is_close_to_p():
    assert effective_p(0.1) == 3277 / 32768
    assert abs(effective_p(0.3) - 0.3) < 2 ** -16


def test_gradient_is_the_mask_times_scale():
    torch.manual_seed(2)
    x = torch.randn(64, 33, requires_grad=True)
    y = dropout(x, 0.3)
    y.sum().backward()
    keep = y.detach().ne(0)
    expected = keep.float() / (1 - effective_p(0.3))
    torch.testing.assert_close(x.grad, expected)


def test_same_seed_same_mask_and_bf16_works():
    x = torch.randn(10, 17, dtype=torch.bfloat16)
    torch.manual_seed(3)
    a = dropout(x, 0.2)
    torch.manual_seed(3)
    b = dropout(x, 0.2)
    assert a.dtype == torch.bfloat16 and torch.equal(a, b)
    assert not torch.equal(a, dropout(x, 0.2))


def test_identity_when_not_training_or_p_zero_and_zero_at_p_one():
    x = torch.randn(5, 7)
    module = Dropout(0.5).eval()
    assert module(x) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Dropout(1.5)
