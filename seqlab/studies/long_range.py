"""Study: long-range dependencies, the fixed context vector, and attention.

A recurrent encoder-decoder without attention must squeeze the whole source into its last state,
the context vector C = h_S (Sutskever et al. 2014; Cho et al. 2014); with attention each output
step reads a fresh mixture c_i = sum_j a_ij h_j of every encoder state (Bahdanau et al. 2015); the
Transformer reads every position through self- and cross-attention. The course's claim: the fixed
context fails as sequences grow, attention does not.

Three model configurations, the same LSTM for the first two, each trained from scratch on
sequences of one length and scored by exact match on new sequences of that length, for the copy,
reverse and adding tasks (:mod:`seqlab.studies.tasks`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from seqlab.studies.figures import curves
from seqlab.studies.report import Report, machine
from seqlab.studies.tasks import make_pairs, train_on_task

NAME = "long-range"
CLAIM = ("A seq2seq model with a fixed context vector loses accuracy as sequences grow, while attention "
         "(recurrent or Transformer) keeps it.")
COST = "about 40 min (quick: 40 s)"

_RECURRENT = {"type": "lstm", "layers": 1, "embedding": 32, "hidden": 64, "bidirectional": False,
              "input_feeding": False, "dropout": 0.0}
MODELS = {
    "LSTM, fixed context": {**_RECURRENT, "attention": "none"},
    "LSTM + attention": {**_RECURRENT, "attention": "general"},
    "Transformer": {"type": "transformer", "layers": 2, "d_model": 64, "heads": 4, "ffn": 128, "dropout": 0.0},
}


def settings(quick: bool) -> dict:
    if quick:
        return {"tasks": ["copy"], "lengths": [4, 16], "n": 1500, "steps": 200}
    return {"tasks": ["copy", "reverse", "adding"], "lengths": [5, 10, 20, 40], "n": 8000, "steps": 1500}


def run(out: Path, *, quick: bool = False) -> Report:
    torch.set_num_threads(1)
    s = settings(quick)
    report = Report(NAME, CLAIM, quick=quick, setup=(
        f"Tasks {', '.join(s['tasks'])}; source lengths {s['lengths']}; for each (task, length) every model is "
        f"trained from scratch on {s['n']} random sequences for {s['steps']} steps (Adam, lr 3e-3, cosine "
        "schedule, clip 1.0) and scored by exact match of greedy decoding on 100 new sequences. Models: "
        "LSTM encoder-decoder, 1 layer, hidden 64, with attention `none` (the context vector) or `general`; "
        "Transformer, 2 layers, d_model 64, 4 heads."))
    accuracy: dict[str, dict[str, list[float]]] = {}
    params = {}
    for task in s["tasks"]:
        accuracy[task] = {m: [] for m in MODELS}
        for length in s["lengths"]:
            train_pairs = make_pairs(task, s["n"], length, seed=length)
            test_pairs = make_pairs(task, 100, length, seed=1000 + length)
            for label, model in MODELS.items():
                name = f"{task}-{length}-{label.split(',')[0].replace(' + ', '-').replace(' ', '-').lower()}"
                result = train_on_task(out / "runs", name, train_pairs=train_pairs, test_pairs=test_pairs,
                                       model=model, max_steps=s["steps"])
                accuracy[task][label].append(result.accuracy)
                params[label] = result.parameters
    report.figure(curves({task: {m: (s["lengths"], acc) for m, acc in accuracy[task].items()} for task in accuracy},
                         xlabel="source length", ylabel="exact match"),
                  "accuracy_vs_length.png", "Exact match against source length, one panel per task")
    for task, by_model in accuracy.items():
        report.table(f"Exact match on {task}", ["model", "parameters", *(f"length {n}" for n in s["lengths"])],
                     [[m, params[m], *acc] for m, acc in by_model.items()])
    longest = s["lengths"][-1]
    fixed = {t: accuracy[t]["LSTM, fixed context"][-1] for t in accuracy}
    attn = {t: max(accuracy[t]["LSTM + attention"][-1], accuracy[t]["Transformer"][-1]) for t in accuracy}
    drop = {t: accuracy[t]["LSTM, fixed context"][0] - fixed[t] for t in accuracy}
    facts = "; ".join(f"{t} at length {longest}: fixed context {fixed[t]:.2f} (it lost {drop[t]:.2f} from length "
                      f"{s['lengths'][0]}), best attention model {attn[t]:.2f}" for t in accuracy)
    wins = [t for t in accuracy if attn[t] > fixed[t] + 0.1 and drop[t] > 0.1]
    if len(wins) == len(accuracy):
        report.decide("supported", facts + ".")
    elif wins:
        report.decide("depends", facts + f". It held on {', '.join(wins)} only.")
    else:
        report.decide("not supported", facts + ".")
    report.numbers = {"machine": machine(), **s, "accuracy": accuracy, "parameters": params}
    return report
