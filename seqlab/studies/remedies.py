"""Study: the remedies for vanishing and exploding gradients, one at a time and together.

The course shows them on a deep feed-forward network, where the gradient of the first layer is a
product of one Jacobian per layer, dL/dx_1 = W_1^T D_1 ... W_L^T D_L dL/dx_L (D_l = diag(f'(a_l))),
exactly as through time in an RNN. With sigmoid units f' <= 1/4, so a deep plain stack vanishes.
The remedies::

    ReLU               f'(a) = 1 for a > 0
    batch norm         a~ = gamma (a - mean_batch(a)) / std_batch(a) + beta   (Ioffe & Szegedy 2015)
    layer norm         the same over the features of each example (Ba et al. 2016)
    residual           x_{l+1} = x_l + F(x_l): an identity path for the gradient (He et al. 2016)
    clipping           g <- g * min(1, c / ||g||) (by norm), or clamp(g, -c, c) (by value)

The network is a stack of ``torch.nn`` layers (Linear, activation, optional norm and skip); it
is trained with Adam on the adding task (:mod:`seqlab.studies.tasks`) read as a classification of
one-hot digits into the sum, and clipping is :func:`seqlab.training.optimizer.clip_gradients`,
the trainer's own. The trainer itself trains sequence models; a feed-forward stack is the course's
own setting for batch normalisation, so this study runs its short loop here.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from seqlab.studies.figures import curves
from seqlab.studies.report import Report, machine
from seqlab.studies.tasks import SYMBOLS, make_pairs
from seqlab.training.optimizer import clip_gradients

NAME = "remedies"
CLAIM = ("A deep plain network with saturating units fails to train, and ReLU, batch or layer normalisation, "
         "residual connections and gradient clipping each help.")
COST = "about 5 min (quick: 20 s)"

VARIANTS = {
    "plain (sigmoid)": {},
    "ReLU": {"activation": "relu"},
    "batch norm": {"norm": "batch"},
    "layer norm": {"norm": "layer"},
    "residual": {"residual": True},
    "clip by norm 1": {"clip_norm": 1.0},
    "clip by value 0.1": {"clip_value": 0.1},
    "all: ReLU + layer norm + residual + clip": {"activation": "relu", "norm": "layer", "residual": True,
                                                 "clip_norm": 1.0},
}


class _Block(nn.Module):
    """x -> f(norm(W x + b)), plus x when residual."""

    def __init__(self, width: int, *, activation: str, norm: str | None, residual: bool):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.norm = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}[norm](width) if norm else nn.Identity()
        self.f = nn.ReLU() if activation == "relu" else nn.Sigmoid()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.f(self.norm(self.linear(x)))
        return x + y if self.residual else y


def deep_net(d_in: int, width: int, depth: int, classes: int, *, activation: str = "sigmoid",
             norm: str | None = None, residual: bool = False) -> nn.Sequential:
    """Input layer, ``depth`` hidden blocks of ``width``, output layer."""
    blocks = [_Block(width, activation=activation, norm=norm, residual=residual) for _ in range(depth)]
    return nn.Sequential(nn.Linear(d_in, width), *blocks, nn.Linear(width, classes))


def _encode(pairs: list[tuple[str, str]], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot (digit, marked) features (N, length * 20) and the sum as a class (N,)."""
    vocab = {s: i for i, s in enumerate(SYMBOLS + [f"*{d}" for d in SYMBOLS])}
    x = torch.zeros(len(pairs), length, len(vocab))
    for n, (src, _) in enumerate(pairs):
        for t, tok in enumerate(src.split()):
            x[n, t, vocab[tok]] = 1.0
    return x.flatten(1), torch.tensor([int(tgt) for _, tgt in pairs])  # (N, length * 20), (N,)


def train_variant(x, y, x_test, y_test, *, depth: int, steps: int, seed: int = 0, clip_norm: float | None = None,
                  clip_value: float | None = None, **net) -> dict:
    """Train one variant with Adam (lr 1e-3, batch 64); its loss curve, first-layer gradient norm, accuracy."""
    torch.manual_seed(seed)
    model = deep_net(x.size(1), 64, depth, 19, **net)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses, first_grad = [], []
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        index = torch.randint(0, x.size(0), (64,), generator=gen)
        loss = nn.functional.cross_entropy(model(x[index]), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        first_grad.append(float(model[0].weight.grad.norm()))
        clip_gradients(model.parameters(), clip_norm=clip_norm, clip_value=clip_value)
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        accuracy = float((model(x_test).argmax(dim=1) == y_test).float().mean())
    return {"losses": losses, "first_layer_grad": first_grad, "accuracy": accuracy,
            "final_loss": sum(losses[-20:]) / len(losses[-20:])}


def run(out: Path, *, quick: bool = False) -> Report:
    torch.set_num_threads(1)
    depth, steps, n, length = (20, 300, 3000, 6) if quick else (30, 3000, 20000, 10)
    x, y = _encode(make_pairs("adding", n, length, seed=1), length)
    x_test, y_test = _encode(make_pairs("adding", 1000, length, seed=2), length)
    report = Report(NAME, CLAIM, quick=quick, setup=(
        f"A feed-forward network of {depth} hidden layers of width 64 (sigmoid unless stated) on the adding "
        f"task with {length} digits, one-hot, as a 19-way classification of the sum; {n} training examples, "
        f"{steps} Adam steps (lr 1e-3, batch 64), one seed; accuracy on 1,000 new examples (chance is about "
        "0.1: the most frequent sum, 9, has probability 0.1)."))
    results = {label: train_variant(x, y, x_test, y_test, depth=depth, steps=steps, **opts)
               for label, opts in VARIANTS.items()}
    report.table("Remedies", ["variant", "final loss", "test accuracy", "first-layer grad norm at step 1"],
                 [[k, r["final_loss"], r["accuracy"], r["first_layer_grad"][0]] for k, r in results.items()])
    report.figure(curves({"training loss": {k: (list(range(1, steps + 1)), r["losses"]) for k, r in results.items()},
                          "first-layer gradient norm": {k: (list(range(1, steps + 1)), r["first_layer_grad"])
                                                        for k, r in results.items()}},
                         xlabel="step", ylabel="", logy=True, sharey=False),
                  "remedies.png", "Training loss and the first layer's gradient norm, per variant")
    plain = results["plain (sigmoid)"]
    helped = {k: r["final_loss"] < plain["final_loss"] - 0.1 for k, r in results.items() if k != "plain (sigmoid)"}
    plain_fails = plain["accuracy"] < 0.2
    facts = (f"plain sigmoid net: final loss {plain['final_loss']:.2f}, accuracy {plain['accuracy']:.2f}; "
             + "; ".join(f"{k}: {results[k]['final_loss']:.2f} / {results[k]['accuracy']:.2f}" for k in helped))
    if plain_fails and all(helped.values()):
        report.decide("supported", facts + ". Every remedy lowered the loss by more than 0.1.")
    elif plain_fails and any(helped.values()):
        report.decide("depends", facts + ". No clear gain from: "
                      + ", ".join(k for k, ok in helped.items() if not ok) + ".")
    else:
        report.decide("not supported", facts + ("." if plain_fails else "; the plain network did not fail."))
    report.numbers = {"machine": machine(), "depth": depth, "steps": steps, "n": n, "length": length,
                      "results": {k: {"final_loss": r["final_loss"], "accuracy": r["accuracy"],
                                      "first_layer_grad_step1": r["first_layer_grad"][0]} for k, r in results.items()}}
    return report
