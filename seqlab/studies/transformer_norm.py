"""Study: residual connections and layer normalisation in the Transformer.

Every sub-layer of the Transformer is wrapped as ``LayerNorm(x + Sublayer(x))`` (post-norm, the
paper) or ``x + Sublayer(LayerNorm(x))`` (pre-norm). The residual gives the gradient an identity
path through the stack; the normalisation keeps the scale of x_l fixed as layers are added. The
study trains one configuration with ``model.norm`` post / pre / none and ``model.residual``
true / false (:class:`seqlab.nn.transformer_layers.AddNorm`), at two depths, on the reverse task,
and compares the training curves and exact match.
"""

from __future__ import annotations

from pathlib import Path

import torch

from seqlab.studies.figures import curves
from seqlab.studies.report import Report, machine
from seqlab.studies.tasks import make_pairs, train_on_task

NAME = "transformer-norm"
CLAIM = ("The Transformer needs its residual connections and layer normalisation to train, more so as it "
         "gets deeper; pre-norm trains at least as easily as post-norm.")
COST = "about 30 min (quick: 40 s)"

VARIANTS = {
    "post-norm (paper)": {"norm": "post"},
    "pre-norm": {"norm": "pre"},
    "no layer norm": {"norm": "none"},
    "no residual": {"residual": False},
}


def settings(quick: bool) -> dict:
    if quick:
        return {"layers": [3], "d_model": 32, "length": (4, 8), "n": 1000, "steps": 120}
    return {"layers": [3, 6], "d_model": 64, "length": (8, 14), "n": 8000, "steps": 1500}


def run(out: Path, *, quick: bool = False) -> Report:
    torch.set_num_threads(1)
    s = settings(quick)
    d = s["d_model"]
    train_pairs = make_pairs("reverse", s["n"], s["length"], seed=1)
    test_pairs = make_pairs("reverse", 100, s["length"], seed=2)
    report = Report(NAME, CLAIM, quick=quick, setup=(
        f"Transformer, d_model {d}, 4 heads, FFN {2 * d}, no dropout, {' and '.join(map(str, s['layers']))} "
        f"encoder and decoder layers, on reverse with lengths {s['length'][0]}-{s['length'][1]} ({s['n']} "
        f"sequences, {s['steps']} steps, Adam lr 3e-3 with warm-up, clip 1.0); one model key changed per "
        "variant: `model.norm: post|pre|none`, `model.residual: false`."))
    results: dict[int, dict[str, object]] = {}
    for layers in s["layers"]:
        results[layers] = {}
        for label, opts in VARIANTS.items():
            model = {"type": "transformer", "layers": layers, "d_model": d, "heads": 4, "ffn": 2 * d, "dropout": 0.0,
                     **opts}
            name = f"{layers}-layers-{label.split(' (')[0].replace(' ', '-')}"
            results[layers][label] = train_on_task(out / "runs", name, train_pairs=train_pairs,
                                                   test_pairs=test_pairs, model=model, max_steps=s["steps"])
    report.figure(curves({f"{layers} layers": {k: (r.steps, r.losses) for k, r in res.items()}
                          for layers, res in results.items()}, xlabel="step", ylabel="training loss", logy=True),
                  "curves.png", "Training loss per variant, one panel per depth")
    report.table("Final training loss and exact match", ["layers", "variant", "final loss", "exact match"],
                 [[layers, k, r.final_loss, r.accuracy] for layers, res in results.items() for k, r in res.items()])
    deepest = results[s["layers"][-1]]
    base = min(deepest["post-norm (paper)"].final_loss, deepest["pre-norm"].final_loss)
    hurt = {k: deepest[k].final_loss > base + 0.1 or deepest[k].diverged for k in ("no layer norm", "no residual")}
    pre_ok = deepest["pre-norm"].final_loss <= deepest["post-norm (paper)"].final_loss + 0.05
    facts = (f"at {s['layers'][-1]} layers, final loss post-norm {deepest['post-norm (paper)'].final_loss:.3f}, "
             f"pre-norm {deepest['pre-norm'].final_loss:.3f}, no layer norm {deepest['no layer norm'].final_loss:.3f}, "
             f"no residual {deepest['no residual'].final_loss:.3f}; exact match "
             + ", ".join(f"{k} {r.accuracy:.2f}" for k, r in deepest.items()))
    if all(hurt.values()) and pre_ok:
        report.decide("supported", facts + ".")
    elif any(hurt.values()):
        report.decide("depends", facts + ". Removing " + " and ".join(k[3:] for k, h in hurt.items() if h)
                      + " hurt" + ("" if pre_ok else "; pre-norm ended above post-norm") + ".")
    else:
        report.decide("not supported", facts + ".")
    report.numbers = {"machine": machine(), **s,
                      "results": {str(layers): {k: {"final_loss": r.final_loss, "accuracy": r.accuracy,
                                                    "losses": r.losses} for k, r in res.items()}
                                  for layers, res in results.items()}}
    return report
