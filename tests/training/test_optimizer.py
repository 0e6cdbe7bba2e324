import torch
from torch import nn

from seqlab.config import TrainConfig
from seqlab.training.optimizer import build_optimizer


def test_adam_uses_the_config_and_the_fused_kernel_on_cpu():
    model = nn.Linear(3, 2)
    opt = build_optimizer(model, TrainConfig(lr=0.01, betas=[0.8, 0.9], eps=1e-7))
    assert type(opt) is torch.optim.Adam
    group = opt.param_groups[0]
    assert group["lr"] == 0.01 and group["betas"] == (0.8, 0.9) and group["eps"] == 1e-7 and group["fused"]


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
