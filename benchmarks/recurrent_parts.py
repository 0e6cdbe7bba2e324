"""Where the recurrent benchmark's like-for-like time goes: the encoder and the attention, timed alone.

Forward + backward, on the batches of ``recurrent_speed.py`` (64 pairs of 12-16 tokens, 256 wide),
in milliseconds per call (median over rounds; lower is faster):

* ``encoder bare``: embedding, dropout, bare ``nn.LSTM(256, 256, 2 layers, bidirectional)`` on the
  padded batch (the encoder of the "bare" row);
* ``encoder rnn exact``: seqlab's fused recurrent layer over the real lengths (what seqlab runs);
* ``encoder rnn padded``: the same module and weights called as a plain ``nn.LSTM`` on the padded
  batch (not exact: the difference to the row above is the price of exactness);
* ``encoder seqlab``: seqlab's whole encoder (adds the W_m projection and the bridge W_init);
* ``attention additive`` / ``attention dot``: seqlab's attention for 17 decoder states over 16
  encoder states.

    python benchmarks/recurrent_parts.py --quick
    python benchmarks/recurrent_parts.py --out results/recurrent-parts.json
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import (
    PAD,
    add_common_options,
    apply_threads,
    make_batches,
    machine_line,
    print_table,
    report,
    run_rounds,
    schedule,
)
from recurrent_speed import (
    BATCH,
    HIDDEN,
    MAX_LEN,
    MIN_LEN,
    N_BATCHES,
    VOCAB,
    BareLSTMSeq2Seq,
    build_seqlab,
)

__all__ = ["main"]

REFERENCE = {"encoder bare": "encoder bare", "encoder rnn exact": "encoder bare", "encoder rnn padded": "encoder bare",
             "encoder seqlab": "encoder bare", "attention additive": "attention dot", "attention dot": "attention dot"}
"""Each part's time is also given as a ratio to this row's."""


def _timed(f):
    """call(i): forward + backward of ``f(i)``; counts one call."""

    def call(i: int) -> int:
        f(i).backward()
        return 1

    return call


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    args = parser.parse_args(argv)
    apply_threads(args.threads)
    warnings.filterwarnings("ignore")
    batches = make_batches(args.seed, N_BATCHES, size=BATCH, min_len=MIN_LEN, max_len=MAX_LEN, vocab=VOCAB)
    torch.manual_seed(args.seed)
    bare = BareLSTMSeq2Seq(packed=False).train()
    encoder = build_seqlab(args.seed, attention="dot", input_feeding=False, cells="fused").encoder.train()
    additive = build_seqlab(args.seed, attention="additive", input_feeding=False, cells="fused").attention
    dot = build_seqlab(args.seed, attention="dot", input_feeding=False, cells="fused").attention

    def src(i):
        return batches[i % len(batches)].src

    def total(out, final):
        return out.sum() + sum(s.sum() for s in final)

    def encoded(result):  # memory, mask, h, C of RecurrentEncoder
        memory, _, h, C = result
        return memory.sum() + h.sum() + C.sum()

    def rnn_input(i):
        return encoder.dropout(encoder.embedding(src(i)))

    g = torch.Generator().manual_seed(args.seed)
    s = torch.randn(BATCH, MAX_LEN + 1, HIDDEN, generator=g, requires_grad=True)  # decoder states
    memory = torch.randn(BATCH, MAX_LEN, HIDDEN, generator=g, requires_grad=True)  # encoder states
    mask = src(0).ne(PAD)

    calls = {
        "encoder bare": _timed(lambda i: total(*bare.encoder(bare.dropout(bare.src_embedding(src(i)))))),
        "encoder rnn exact": _timed(lambda i: total(*encoder.rnn(rnn_input(i), src(i).ne(PAD).sum(dim=1)))),
        "encoder rnn padded": _timed(lambda i: total(*nn.LSTM.forward(encoder.rnn, rnn_input(i)))),
        "encoder seqlab": _timed(lambda i: encoded(encoder(src(i)))),
        "attention additive": _timed(lambda i: additive(s, memory, mask)[0].sum()),
        "attention dot": _timed(lambda i: dot(s, memory, mask)[0].sum()),
    }
    warmup, repeats, iters = schedule(args, (3, 9, 8), (1, 2, 2))
    print(f"threads {args.threads}; warmup {warmup}, {repeats} rounds x {iters} calls ...", flush=True)
    results = run_rounds(calls, warmup=warmup, repeats=repeats, iters=iters)
    ms = {name: 1000.0 / m.median for name, m in results.items()}
    rows = [{"name": name, "ms": ms[name], "reference": REFERENCE[name], "time_ratio": ms[name] / ms[REFERENCE[name]],
             "spread": m.spread} for name, m in results.items()]
    print_table(rows, [("name", "part (forward + backward)"), ("ms", "ms per call"),
                       ("time_ratio", "time / reference"), ("reference", "reference"), ("spread", "spread")],
                title=machine_line())
    settings = {"threads": args.threads, "seed": args.seed, "warmup": warmup, "repeats": repeats, "iters": iters,
                "quick": args.quick}
    return report("recurrent_parts", args.out, settings, rows)


if __name__ == "__main__":
    main()
