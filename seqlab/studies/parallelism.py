"""Study: the Transformer processes a sequence in parallel, a recurrent network step by step.

A recurrent layer computes h_t = f(h_{t-1}, x_t): T dependent steps, each a small matrix product,
so its time grows linearly in T with a large constant and no parallelism across time. The
Transformer's self-attention computes softmax(Q K^T / sqrt(d_k)) V for all positions at once: a
few large matrix products (parallel), whose cost grows with T^2 for the attention scores.

The study builds encoder-decoders of matched parameter count with :func:`seqlab.models.build.build_model`
(RNN, LSTM and GRU with dot attention, fused PyTorch kernels; the Transformer), and times on
batches of B sequences of T tokens (source and target): one forward pass (inference) and one
training step (forward, loss, backward, Adam step), as training tokens per second. Speeds are also
given as ratios against the LSTM measured in the same run. On a GPU, when one is available, the
same is measured there too.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from seqlab.config import RecurrentConfig, TrainConfig, TransformerConfig
from seqlab.models.build import build_model
from seqlab.studies.figures import curves
from seqlab.studies.report import Report, machine
from seqlab.training.loss import output_layer_nll
from seqlab.training.optimizer import build_optimizer

NAME = "parallelism"
CLAIM = ("The Transformer trains faster than a recurrent seq2seq model because it processes all positions "
         "in parallel, while a recurrent network's time grows step by step with the sequence length.")
COST = "about 10 min (quick: 20 s)"

VOCAB = 32


def settings(quick: bool) -> dict:
    if quick:
        return {"lengths": [16, 64, 256], "batch": 8, "d_model": 64, "repeats": 3, "threads": 1}
    return {"lengths": [16, 32, 64, 128, 256, 512, 1024], "batch": 16, "d_model": 256, "repeats": 3,
            "threads": torch.get_num_threads()}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matched_models(d_model: int, max_positions: int) -> dict[str, torch.nn.Module]:
    """The Transformer (2 layers) and RNN/LSTM/GRU whose hidden size gives the nearest parameter count."""
    transformer = TransformerConfig(layers=2, d_model=d_model, heads=4, ffn=4 * d_model, dropout=0.0,
                                    max_positions=max_positions)
    models = {"Transformer": build_model(transformer, VOCAB, VOCAB)}
    target = _count(models["Transformer"])
    for kind in ("rnn", "lstm", "gru"):

        def build(hidden: int, kind: str = kind) -> torch.nn.Module:
            cfg = RecurrentConfig(type=kind, attention="dot", layers=2, embedding=hidden, hidden=hidden,
                                  bidirectional=False, input_feeding=False, dropout=0.0, max_positions=max_positions)
            return build_model(cfg, VOCAB, VOCAB)

        low, high = 8, 8 * d_model  # the count grows with the hidden size: bisect on it
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if _count(build(middle)) < target else (low, middle)
        models[kind.upper() if kind != "lstm" else "LSTM"] = min((build(low), build(high)),
                                                                 key=lambda m: abs(_count(m) - target))
    return models


def _timed(fn, repeats: int, device: str) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(model: torch.nn.Module, T: int, batch: int, repeats: int, device: str) -> tuple[float, float]:
    """(forward seconds, training tokens per second) of ``model`` on a (batch, T) batch."""
    gen = torch.Generator().manual_seed(T)
    src = torch.randint(4, VOCAB, (batch, T), generator=gen).to(device)  # ids 0-3 are specials
    tgt = torch.randint(4, VOCAB, (batch, T + 1), generator=gen).to(device)
    tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]  # (B, T) each
    optimizer = build_optimizer(model, TrainConfig())

    @torch.inference_mode()
    def forward():
        model.eval()
        model(src, tgt_in)

    def train_step():
        model.train()
        out = model.output_layer
        loss_sum, _, n = output_layer_nll(model.features(src, tgt_in), out.weight, out.bias, tgt_out, epsilon=0.0)
        optimizer.zero_grad(set_to_none=True)
        (loss_sum / n).backward()
        optimizer.step()

    forward_s = _timed(forward, repeats, device)
    step_s = _timed(train_step, repeats, device)
    return forward_s, batch * T / step_s


def run(out: Path, *, quick: bool = False) -> Report:
    s = settings(quick)
    torch.set_num_threads(s["threads"])
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    torch.manual_seed(0)
    models = matched_models(s["d_model"], max(s["lengths"]) + 2)
    params = {name: _count(m) for name, m in models.items()}
    report = Report(NAME, CLAIM, quick=quick, setup=(
        f"Encoder-decoders of matched size built from configs: Transformer 2+2 layers, d_model {s['d_model']}, "
        f"4 heads, FFN {4 * s['d_model']}; RNN, LSTM, GRU with 2 layers, dot attention, no input feeding (so "
        "the decoder runs in one fused call under teacher forcing, the recurrent models' fastest path), hidden "
        f"size chosen for the nearest parameter count ({', '.join(f'{k} {v:,}' for k, v in params.items())}). "
        f"Batches of {s['batch']} random sequences, source and target of T tokens each; median of "
        f"{s['repeats']} timed calls after a warm-up; {torch.get_num_threads()} CPU threads. Training tokens/s "
        "counts target tokens of one step (forward, loss, backward, Adam)."))
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    for device in devices:
        results[device] = {}
        for name, model in models.items():
            model.to(device)
            fwd, tps = zip(*(measure(model, T, s["batch"], s["repeats"], device) for T in s["lengths"]))
            results[device][name] = {"forward_s": list(fwd), "train_tokens_per_s": list(tps)}
            model.to("cpu")
    for device, res in results.items():
        report.figure(curves({"training tokens/s": {m: (s["lengths"], r["train_tokens_per_s"]) for m, r in res.items()},
                              "forward pass (s)": {m: (s["lengths"], r["forward_s"]) for m, r in res.items()}},
                             xlabel="sequence length T", ylabel="", logx=True, logy=True, title=device, sharey=False),
                      f"speed_{device}.png", f"Training throughput and forward time against T on {device}")
        lstm = res["LSTM"]["train_tokens_per_s"]
        report.table(f"Training tokens/s on {device} (ratio to the LSTM in brackets)",
                     ["model", *(f"T={T}" for T in s["lengths"])],
                     [[m, *(f"{v:,.0f} ({v / b:.2f}x)" for v, b in zip(r["train_tokens_per_s"], lstm))]
                      for m, r in res.items()])
        report.table(f"Forward pass, ms, on {device}", ["model", *(f"T={T}" for T in s["lengths"])],
                     [[m, *(round(1000 * v, 2) for v in r["forward_s"])] for m, r in res.items()])
    cpu = results["cpu"]
    faster = [all(cpu["Transformer"]["train_tokens_per_s"][i] > cpu[m]["train_tokens_per_s"][i]
                  for m in ("RNN", "LSTM", "GRU")) for i in range(len(s["lengths"]))]
    growth = {m: r["forward_s"][-1] / r["forward_s"][0] for m, r in cpu.items()}
    ratio_last = {m: cpu["Transformer"]["train_tokens_per_s"][-1] / cpu[m]["train_tokens_per_s"][-1]
                  for m in ("RNN", "LSTM", "GRU")}
    facts = (f"on the CPU the Transformer trains faster than all three recurrent models at "
             f"{sum(faster)} of {len(faster)} lengths (at T = {s['lengths'][-1]}: "
             + ", ".join(f"{v:.2f}x the {m}" for m, v in ratio_last.items())
             + f"); forward time grows {s['lengths'][-1] // s['lengths'][0]}x in T by "
             + ", ".join(f"{g:.1f}x ({m})" for m, g in growth.items()))
    if all(faster):
        report.decide("supported", facts + ".")
    elif any(faster):
        first = s["lengths"][faster.index(True)]
        report.decide("depends", facts + f". The Transformer is ahead from T = {first} on some lengths only.")
    else:
        report.decide("not supported", facts + ".")
    report.numbers = {"machine": machine(), **s, "parameters": params, "results": results}
    return report
