"""Study: LSTM against GRU, at the same hidden size.

The LSTM has four gate blocks (input, forget, candidate, output) and two states (h_t, C_t); the GRU
three (reset, update, candidate) and one state. At hidden size H and input size E a layer has
G (H (E + H) + 2H) parameters, G = 4 for the LSTM and 3 for the GRU: the GRU is 25% smaller per
layer and does 25% fewer multiply-adds per step. The course says the GRU is "simpler and often as
good". The study trains both, everything else equal, on the same data with the ordinary trainer
and compares parameters, training throughput, forward time and exact match.
"""

from __future__ import annotations

from pathlib import Path

import torch

from seqlab.config import RecurrentConfig
from seqlab.models.build import build_model
from seqlab.studies.parallelism import measure
from seqlab.studies.report import Report, machine
from seqlab.studies.tasks import make_pairs, train_on_task

NAME = "lstm-gru"
CLAIM = "The GRU has fewer parameters and is faster than the LSTM, and reaches similar accuracy."
COST = "about 15 min (quick: 30 s)"

CELLS = ("lstm", "gru")


def settings(quick: bool) -> dict:
    if quick:
        return {"tasks": {"reverse": (4, 8)}, "n": 1500, "steps": 200, "hidden": 48, "seeds": [1]}
    return {"tasks": {"reverse": (8, 16), "adding": (20, 40)}, "n": 8000, "steps": 1500, "hidden": 128,
            "seeds": [1, 2]}


def run(out: Path, *, quick: bool = False) -> Report:
    torch.set_num_threads(1)
    s = settings(quick)
    H = s["hidden"]
    model = {"attention": "general", "layers": 1, "embedding": H, "hidden": H, "bidirectional": True,
             "input_feeding": False, "dropout": 0.0}
    report = Report(NAME, CLAIM, quick=quick, setup=(
        f"Encoder-decoder with `general` attention, 1 layer, bidirectional encoder, embedding = hidden = {H}, "
        f"`model.type` lstm or gru and nothing else changed; {s['n']} training sequences, {s['steps']} steps, "
        f"seeds {s['seeds']}; exact match of greedy decoding on 100 new sequences. Tasks and lengths: "
        + ", ".join(f"{t} {a}-{b}" for t, (a, b) in s["tasks"].items())
        + ". Training tokens/s as logged by the trainer; forward time of a batch of 16 sequences of 32 tokens."))
    rows, numbers = [], {}
    for task, length in s["tasks"].items():
        test_pairs = make_pairs(task, 100, length, seed=999)
        for cell in CELLS:
            accs, tps, params = [], [], 0
            for seed in s["seeds"]:
                result = train_on_task(out / "runs", f"{task}-{cell}-{seed}",
                                       train_pairs=make_pairs(task, s["n"], length, seed=seed), test_pairs=test_pairs,
                                       model={"type": cell, **model}, max_steps=s["steps"], train={"seed": seed})
                accs.append(result.accuracy)
                tps.append(result.tokens_per_s)
                params = result.parameters
            numbers[f"{task}/{cell}"] = {"accuracy": accs, "tokens_per_s": tps, "parameters": params}
            rows.append([task, cell.upper(), params, sum(accs) / len(accs), sum(tps) / len(tps)])
    forward = {}
    for cell in CELLS:
        torch.manual_seed(0)
        cfg = RecurrentConfig(type=cell, **model)
        forward[cell] = measure(build_model(cfg, 32, 32), 32, 16, 5, "cpu")[0]
    report.table("Parameters, accuracy and speed", ["task", "cell", "parameters", "exact match", "train tokens/s"], rows)
    report.table("Forward pass (16 x 32 tokens)", ["cell", "ms", "ratio to LSTM"],
                 [[c.upper(), 1000 * forward[c], forward[c] / forward["lstm"]] for c in CELLS])
    tasks = list(s["tasks"])
    p_ratio = numbers[f"{tasks[0]}/gru"]["parameters"] / numbers[f"{tasks[0]}/lstm"]["parameters"]

    def mean(values):
        return sum(values) / len(values)

    acc_gap = {t: mean(numbers[f"{t}/gru"]["accuracy"]) - mean(numbers[f"{t}/lstm"]["accuracy"]) for t in tasks}
    speed = mean([mean(numbers[f"{t}/gru"]["tokens_per_s"]) / mean(numbers[f"{t}/lstm"]["tokens_per_s"])
                  for t in tasks])
    fwd_ratio = forward["gru"] / forward["lstm"]
    facts = (f"GRU/LSTM parameters {p_ratio:.2f}; training throughput GRU/LSTM {speed:.2f}; forward time GRU/LSTM "
             f"{fwd_ratio:.2f}; exact-match gap GRU - LSTM: " + ", ".join(f"{t} {g:+.2f}" for t, g in acc_gap.items()))
    smaller, faster = p_ratio < 0.9, speed > 1.0 and fwd_ratio < 1.0
    similar = all(abs(g) <= 0.1 for g in acc_gap.values())
    if smaller and faster and similar:
        report.decide("supported", facts + ".")
    elif smaller:
        missing = [w for w, ok in (("faster", faster), ("similar accuracy", similar)) if not ok]
        report.decide("depends", facts + f". Smaller, but not {' and not '.join(missing)} here.")
    else:
        report.decide("not supported", facts + ".")
    report.numbers = {"machine": machine(), **{k: v for k, v in s.items() if k != "tasks"},
                      "tasks": {t: list(v) for t, v in s["tasks"].items()}, "runs": numbers,
                      "forward_s": forward}
    return report
