"""Study: vanishing and exploding gradients in backpropagation through time.

The gradient that reaches an early state is a product of one Jacobian per step::

    dL/dh_t = (dh_{t+1}/dh_t)^T ... (dh_T/dh_{T-1})^T dL/dh_T,   dh_{k+1}/dh_k = diag(f'(a_{k+1})) W_h

For a tanh RNN each factor has norm at most ||W_h|| (tanh' <= 1), so when the largest singular
value of W_h is below 1 the product shrinks geometrically with T - t (vanishing); with a ReLU and a
W_h that amplifies, it grows (exploding). The LSTM's cell path C_t = f_t * C_{t-1} + ... has the
factor f_t instead, which the forget-gate bias of 1 keeps near 1.

Part 1 instruments :class:`~seqlab.nn.cells.ExplicitRecurrent` (``record_states``): one loss on the
last state, L = ||W_o h_T - y||^2 / 2, and ||dL/dh_t|| for every t, for the tanh RNN, the ReLU RNN,
the LSTM and the GRU, under four initialisations of the weights (:func:`seqlab.nn.init.init_weights`):
``small`` (U(-0.1, 0.1)), ``xavier``, ``he`` (Kaiming) and ``orthogonal`` recurrent matrices.
Part 2 trains a ReLU RNN encoder-decoder with He initialisation on the reverse task with the
ordinary trainer, with and without clipping, and plots the global gradient norm of every step.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from seqlab.nn.cells import ExplicitRecurrent
from seqlab.nn.init import init_weights
from seqlab.studies.figures import curves
from seqlab.studies.report import Report, machine
from seqlab.studies.tasks import make_pairs, train_on_task

NAME = "gradients"
CLAIM = ("Backpropagation through time makes the gradient reaching early steps of a plain RNN vanish "
         "(or explode), which gated cells (LSTM, GRU), careful initialisation and clipping counter.")
COST = "about 4 min (quick: 20 s)"

CELLS = {"tanh RNN": ("rnn", "tanh"), "ReLU RNN": ("rnn", "relu"), "LSTM": ("lstm", "tanh"), "GRU": ("gru", "tanh")}
INITS = {"small": ("uniform", "same"), "xavier": ("xavier", "same"), "he": ("kaiming", "same"),
         "orthogonal": ("xavier", "orthogonal")}
"""init name -> (input scheme, recurrent scheme) of :func:`init_weights`."""


def gradient_profile(mode: str, nonlinearity: str, init: str, *, T: int, H: int, batch: int = 16,
                     seed: int = 0) -> list[float]:
    """||dL/dh_t|| for t = 1 .. T of one randomly initialised recurrent layer, L on h_T only.

    Args:
        mode: ``"rnn"``, ``"lstm"`` or ``"gru"``. nonlinearity: the RNN's ``"tanh"`` or ``"relu"``.
        init: a key of :data:`INITS`.
        T: sequence length. H: hidden size (= input size). batch: sequences averaged over.

    Returns:
        T norms, averaged over the batch's sequences (inf or nan where they overflowed).
    """
    torch.manual_seed(seed)
    layer = ExplicitRecurrent(mode, H, H, nonlinearity=nonlinearity)
    init_weights(layer, *INITS[init])
    layer.record_states = True
    x = torch.randn(batch, T, H)  # (B, T, E)
    layer(x)
    states = layer.recorded_states[0][0]  # h_1 .. h_T, each (B, H)
    for h in states:
        h.retain_grad()
    W_o, y = torch.randn(H, H) / math.sqrt(H), torch.randn(batch, H)
    loss = 0.5 * ((states[-1] @ W_o.T - y) ** 2).sum(dim=1).mean()
    loss.backward()
    return [float(h.grad.norm(dim=1).mean()) for h in states]


def _ratio(profile: list[float]) -> float:
    """||dL/dh_1|| / ||dL/dh_T||: below 1 the gradient vanished on its way back, above 1 it grew."""
    first, last = profile[0], profile[-1]
    if not (math.isfinite(first) and math.isfinite(last)) or last == 0:
        return float("inf") if not math.isfinite(first) else float("nan")
    return first / last


def run(out: Path, *, quick: bool = False) -> Report:
    T, H = (40, 32) if quick else (100, 64)
    torch.set_num_threads(1)
    report = Report(NAME, CLAIM, quick=quick, setup=(
        f"Part 1: one recurrent layer of explicit cells, input and hidden size {H}, random N(0, 1) inputs "
        f"of T = {T} steps, batch 16; L = ||W_o h_T - y||^2 / 2 on the last state only; ||dL/dh_t|| read "
        "from the recorded states (`ExplicitRecurrent.record_states`). Initialisations: small = U(-0.1, 0.1), "
        "xavier, he (Kaiming uniform) for every matrix, orthogonal = xavier inputs with orthogonal W_h; "
        "biases 0 (LSTM forget bias 1).\n\nPart 2: a ReLU-RNN encoder-decoder (He initialisation, "
        "W_h initialised like the inputs) trained with `seqlab.training.trainer.train` on the reverse task, "
        "with train.clip_norm null (no clipping) and 1.0."))
    ratios, panels = {}, {}
    for init in INITS:
        series = {}
        for label, (mode, nonlin) in CELLS.items():
            profile = gradient_profile(mode, nonlin, init, T=T, H=H)
            ratios[(label, init)] = _ratio(profile)
            series[label] = (list(range(1, T + 1)), profile)
        panels[f"init: {init}"] = series
    report.figure(curves(panels, xlabel="t", ylabel="||dL/dh_t||", logy=True,
                         title="Gradient reaching each step from a loss on h_T"),
                  "grad_norm_vs_t.png", "||dL/dh_t|| against t (log scale), one panel per initialisation")
    report.table("||dL/dh_1|| / ||dL/dh_T|| (below 1: vanished; above 1: exploded)", ["cell", *INITS],
                 [[label, *(ratios[(label, init)] for init in INITS)] for label in CELLS])

    # part 2: exploding in training, with and without clipping
    length, n, steps = ((6, 10), 1000, 120) if quick else ((10, 20), 4000, 600)
    train_pairs, test_pairs = make_pairs("reverse", n, length, seed=1), make_pairs("reverse", 100, length, seed=2)
    model = {"type": "rnn", "nonlinearity": "relu", "attention": "none", "layers": 1, "embedding": 32,
             "hidden": 64, "bidirectional": False, "input_feeding": False, "dropout": 0.0,
             "init": "kaiming", "recurrent_init": "same"}
    runs = {}
    for label, clip in (("no clipping", None), ("clip_norm 1.0", 1.0)):
        runs[label] = train_on_task(out / "runs", label.replace(" ", "-"), train_pairs=train_pairs,
                                    test_pairs=test_pairs, model=model, max_steps=steps,
                                    train={"clip_norm": clip, "lr": 1e-2})
    report.figure(curves({"global gradient norm (before clipping)": {k: (list(range(1, len(r.grad_norms) + 1)),
                                                                          r.grad_norms) for k, r in runs.items()},
                          "training loss": {k: (r.steps, r.losses) for k, r in runs.items()}},
                         xlabel="step", ylabel="", logy=True, sharey=False),
                  "training.png", "ReLU RNN, He init, lr 1e-2: gradient norm and loss per step, with and without clipping")
    report.table("Training a ReLU RNN (He init) on reverse", ["run", "max grad norm", "final loss", "diverged",
                                                               "exact match"],
                 [[k, max(r.grad_norms, default=float("nan")), r.final_loss, r.diverged, r.accuracy]
                  for k, r in runs.items()])

    tanh_small, tanh_xavier = ratios[("tanh RNN", "small")], ratios[("tanh RNN", "xavier")]
    lstm_small, relu_he = ratios[("LSTM", "small")], ratios[("ReLU RNN", "he")]
    free, clipped = runs["no clipping"], runs["clip_norm 1.0"]
    free_max = max(free.grad_norms, default=float("nan"))
    checks = {
        "a tanh RNN's gradient vanishes (ratio < 1e-3, small init)": tanh_small < 1e-3,
        "a ReLU RNN's gradient explodes under He init (ratio > 1e3)": relu_he > 1e3,
        "the LSTM keeps more gradient than the tanh RNN (10x, small init)": lstm_small > 10 * tanh_small,
        "training without clipping blows up (diverges or norm > 100)": free.diverged or free_max > 100,
        "training with clipping stays finite": not clipped.diverged,
    }
    facts = (f"tanh RNN ||dL/dh_1||/||dL/dh_T|| = {tanh_small:.2e} (small init), {tanh_xavier:.2e} (xavier); "
             f"LSTM {lstm_small:.2e} (small init); ReLU RNN with He init {relu_he:.2e}; training without "
             f"clipping: max grad norm {free_max:.3g}, diverged: {free.diverged}; with clipping diverged: "
             f"{clipped.diverged}. ")
    failed = [k for k, ok in checks.items() if not ok]
    if not failed:
        report.decide("supported", facts + "Every part held.")
    elif len(failed) < len(checks):
        report.decide("depends", facts + "Did not hold here: " + "; ".join(failed) + ".")
    else:
        report.decide("not supported", facts)
    report.table("Checks", ["check", "held"], [[k, ok] for k, ok in checks.items()])
    report.numbers = {"machine": machine(), "T": T, "H": H,
                      "ratio_first_to_last": {f"{c} / {i}": r for (c, i), r in ratios.items()},
                      "training": {k: {"max_grad_norm": max(r.grad_norms, default=float("nan")),
                                       "final_loss": r.final_loss, "diverged": r.diverged, "accuracy": r.accuracy,
                                       "grad_norms": r.grad_norms} for k, r in runs.items()}}
    return report
