import pytest
import torch
from torch import nn

from seqlab.config import TrainConfig
from seqlab.training.optimizer import build_optimizer, clip_gradients


def test_adam_uses_the_config_and_the_fused_kernel_on_cpu():
    model = nn.Linear(3, 2)
    opt = build_optimizer(model, TrainConfig(lr=0.01, betas=[0.8, 0.9], eps=1e-7))
    assert type(opt) is torch.optim.Adam
    group = opt.param_groups[0]
    assert group["lr"] == 0.01 and group["betas"] == (0.8, 0.9) and group["eps"] == 1e-7 and group["fused"]


def test_sgd_steps_against_the_gradient():
    model = nn.Linear(3, 1, bias=False)
    before = model.weight.detach().clone()
    opt = build_optimizer(model, TrainConfig(optimizer="sgd", lr=0.5))
    model(torch.tensor([[1.0, 2.0, -1.0]])).sum().backward()
    opt.step()
    assert type(opt) is torch.optim.SGD
    torch.testing.assert_close(model.weight.detach(), before - 0.5 * torch.tensor([[1.0, 2.0, -1.0]]))


def test_fused_adam_takes_the_same_steps_as_the_reference_loop():
    torch.manual_seed(0)
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    fused = build_optimizer(a, TrainConfig(lr=0.01, optimizer="adamw", weight_decay=0.1))
    plain = torch.optim.AdamW(b.parameters(), lr=0.01, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.1, foreach=False)
    assert type(fused) is torch.optim.AdamW
    x = torch.randn(8, 4)
    for _ in range(5):
        for model, opt in ((a, fused), (b, plain)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def _with_gradients(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    (model(torch.randn(16, 5)) * 10).pow(2).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    return model, grads


def _global_norm(grads):
    return torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])).item()


def test_clip_by_norm_rescales_to_the_limit_and_returns_the_norm_before():
    model, grads = _with_gradients()
    before = _global_norm(grads)
    assert before > 1.0
    norm = clip_gradients(model.parameters(), clip_norm=1.0, clip_value=None)
    assert norm == pytest.approx(before, rel=1e-6)
    after = [p.grad for p in model.parameters()]
    assert _global_norm(after) == pytest.approx(1.0, rel=1e-4)
    for g, g0 in zip(after, grads):  # same direction: g = g0 / ||g0||
        torch.testing.assert_close(g, g0 / before, rtol=1e-4, atol=1e-7)


def test_clip_by_value_bounds_each_element_and_returns_the_norm_before():
    model, grads = _with_gradients()
    limit = 0.5
    assert max(g.abs().max().item() for g in grads) > limit
    norm = clip_gradients(model.parameters(), clip_norm=None, clip_value=limit)
    assert norm == pytest.approx(_global_norm(grads), rel=1e-6)  # logged before clipping
    for p, g0 in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, g0.clamp(-limit, limit))


def test_clip_by_value_then_by_norm():
    model, grads = _with_gradients()
    clip_gradients(model.parameters(), clip_norm=0.1, clip_value=0.5)
    clamped = [g.clamp(-0.5, 0.5) for g in grads]
    scale = 0.1 / _global_norm(clamped)
    assert scale < 1.0
    for p, g in zip(model.parameters(), clamped):
        torch.testing.assert_close(p.grad, g * scale, rtol=1e-4, atol=1e-7)


def test_no_clipping_leaves_gradients_and_still_measures():
    model, grads = _with_gradients()
    norm = clip_gradients(model.parameters(), clip_norm=None, clip_value=None)
    assert norm == pytest.approx(_global_norm(grads), rel=1e-6)
    for p, g0 in zip(model.parameters(), grads):
        assert torch.equal(p.grad, g0)
