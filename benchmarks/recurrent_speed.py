"""Recurrent seq2seq training speed: seqlab's LSTM with attention against bare torch.nn.LSTM layers.

seqlab rows: ``build_recurrent(RecurrentConfig(type="lstm", layers=2, embedding=256, hidden=256,
bidirectional=True, attention=..., input_feeding=..., cells=...))`` for attention in {additive,
dot}, input feeding off/on, cells fused (torch.nn.LSTM) and explicit (the textbook cells unrolled
in Python). Dropout is RecurrentConfig's default, 0.2.

The bare baseline has the sizes the seqlab model uses (seqlab/models/recurrent.py):

* source and target embeddings 8000 x 256 (not shared), dropout 0.2;
* encoder ``nn.LSTM(256, 256, num_layers=2, bidirectional=True, dropout=0.2)`` (256 per direction;
  seqlab then maps the 512-wide outputs to 256 with W_m and bridges the final states with W_init);
* decoder ``nn.LSTM(256, 256, num_layers=2, dropout=0.2)`` over all target positions at once,
  started from the encoder's forward-direction final states;
* output ``nn.Linear(256, 8000)``; no attention, no bridge, no attentional layer W_c.

"bare" runs the encoder on the padded batch; "bare-packed" packs it by length as seqlab's encoder
does. Every row trains with the same label-smoothed loss (eps 0.1), backward, clip at norm 1.0 and
Adam step, on batches of 64 pairs with lengths 12-16, vocabulary 8000; the rate is non-pad target
tokens per second, and the ratio is against "bare".

The seqlab rows run the step of seqlab's trainer (``seqlab train``): ``model.features`` and then
the output layer fused with the loss (``output_layer_nll``, which never builds the (B, T, V)
logits). The bare rows, as a user of bare ``torch.nn`` would, compute the full logits and then
``label_smoothed_nll``. To show what the recurrent part alone costs, ``--loss logits`` adds seqlab
rows that train exactly as bare does (full logits, same loss); they are marked "logits".

The aim (issue 3): the fused path, without input feeding, within 10% of bare (ratio >= 0.9).

    python benchmarks/recurrent_speed.py --quick
    python benchmarks/recurrent_speed.py --out results/recurrent.json
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import (
    CLIP_NORM,
    LABEL_SMOOTHING,
    PAD,
    Batch,
    add_common_options,
    apply_threads,
    make_batches,
    optimizer_step,
    precision_context,
    machine_line,
    print_table,
    report,
    run_rounds,
    schedule,
    seqlab_train,
    training_optimizer,
)

__all__ = ["main"]

VOCAB, LAYERS, EMBEDDING, HIDDEN, DROPOUT = 8000, 2, 256, 256, 0.2
BATCH, MIN_LEN, MAX_LEN, N_BATCHES = 64, 12, 16, 8
AIM_FUSED_VS_BARE = 0.9
DEFAULTS = ((3, 7, 5), (1, 2, 1))  # (warmup, repeats, iters): full run / --quick


class BareLSTMSeq2Seq(nn.Module):
    """Embeddings -> bidirectional encoder LSTM -> decoder LSTM (no attention) -> output layer."""

    def __init__(self, *, packed: bool):
        super().__init__()
        self.packed = packed
        self.src_embedding = nn.Embedding(VOCAB, EMBEDDING, padding_idx=PAD)
        self.tgt_embedding = nn.Embedding(VOCAB, EMBEDDING, padding_idx=PAD)
        self.dropout = nn.Dropout(DROPOUT)
        self.encoder = nn.LSTM(EMBEDDING, HIDDEN, num_layers=LAYERS, bidirectional=True, dropout=DROPOUT,
                               batch_first=True)
        self.decoder = nn.LSTM(EMBEDDING, HIDDEN, num_layers=LAYERS, dropout=DROPOUT, batch_first=True)
        self.output = nn.Linear(HIDDEN, VOCAB)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        x = self.dropout(self.src_embedding(src))  # (B, S, E)
        if self.packed:
            x = pack_padded_sequence(x, src.ne(PAD).sum(dim=1), batch_first=True, enforce_sorted=False)
        _, (h, c) = self.encoder(x)  # (L*2, B, H), directions interleaved per layer
        state = (h[0::2].contiguous(), c[0::2].contiguous())  # (L, B, H) forward directions
        s, _ = self.decoder(self.dropout(self.tgt_embedding(tgt_in)), state)  # (B, T, H)
        return self.output(self.dropout(s))  # (B, T, V)


def build_seqlab(seed: int, *, attention: str, input_feeding: bool, cells: str) -> nn.Module:
    from seqlab.config import RecurrentConfig
    from seqlab.models.recurrent import build_recurrent

    torch.manual_seed(seed)
    cfg = RecurrentConfig(type="lstm", attention=attention, layers=LAYERS, embedding=EMBEDDING, hidden=HIDDEN,
                          bidirectional=True, input_feeding=input_feeding, cells=cells, dropout=DROPOUT)
    return build_recurrent(cfg, VOCAB, VOCAB)


def logits_train(model: nn.Module, batches: list[Batch], precision: str):
    """call(i): one training step on batch i through the full (B, T, V) logits; returns its non-pad
    target tokens. The bare rows' step, and seqlab's with ``--loss logits``."""
    from seqlab.training.loss import label_smoothed_nll

    optimizer = training_optimizer(model)
    model.train()

    def call(i: int) -> int:
        b = batches[i % len(batches)]
        with precision_context(precision):
            logits = model(b.src, b.tgt_in)  # (B, T, V)
        loss_sum, _, n = label_smoothed_nll(logits, b.tgt_out, epsilon=LABEL_SMOOTHING)
        optimizer_step(model, optimizer, loss_sum / n)
        return b.n_tgt_tokens

    return call


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument("--cells", default="fused,explicit", help="comma-separated: fused, explicit")
    parser.add_argument("--attention", default="additive,dot", help="comma-separated: additive, dot, general, none")
    parser.add_argument("--input-feeding", default="no,yes", help="comma-separated: no, yes")
    parser.add_argument("--loss", default="trainer,logits",
                        help="comma-separated seqlab steps: trainer (fused output layer + loss, as seqlab "
                             "train), logits (full logits then the loss, as the bare rows; fused cells, "
                             "no input feeding only)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    apply_threads(args.threads)
    warnings.filterwarnings("ignore")
    warmup, repeats, iters = schedule(args, *DEFAULTS)

    batches = make_batches(args.seed, N_BATCHES, size=BATCH, min_len=MIN_LEN, max_len=MAX_LEN, vocab=VOCAB)
    variants, calls, params = {}, {}, {}
    for packed, name in ((False, "bare"), (True, "bare-packed")):
        torch.manual_seed(args.seed)
        model = BareLSTMSeq2Seq(packed=packed)
        variants[name] = {"system": name, "cells": "fused", "attention": "none", "input_feeding": False,
                         "loss": "logits"}
        calls[name], params[name] = logits_train(model, batches, args.precision), sum(p.numel() for p in model.parameters())
    for loss in _split(args.loss):
        for cells in _split(args.cells) if loss == "trainer" else ["fused"]:
            for feeding in _split(args.input_feeding) if loss == "trainer" else ["no"]:
                for attention in _split(args.attention):
                    input_feeding = {"no": False, "yes": True}[feeding]
                    name = f"seqlab {cells} {attention}" + (" +feed" if input_feeding else "")
                    name += " logits" if loss == "logits" else ""
                    model = build_seqlab(args.seed, attention=attention, input_feeding=input_feeding, cells=cells)
                    variants[name] = {"system": "seqlab", "cells": cells, "attention": attention,
                                      "input_feeding": input_feeding, "loss": loss}
                    step = seqlab_train if loss == "trainer" else logits_train
                    calls[name], params[name] = step(model, batches, args.precision), sum(
                        p.numel() for p in model.parameters())

    print(f"threads {args.threads}; {args.precision}; warmup {warmup}, {repeats} rounds x {iters} steps; "
          f"{len(calls)} systems ...", flush=True)
    results = run_rounds(calls, warmup=warmup, repeats=repeats, iters=iters)
    bare, bare_packed = results["bare"].median, results["bare-packed"].median
    rows = []
    for name, m in results.items():
        rows.append({"name": name, **variants[name], "parameters": params[name], "median": m.median,
                     "unit": "tgt tokens/s", "rates": m.rates, "seconds": m.seconds, "spread": m.spread,
                     "ratio_vs_bare": m.median / bare, "ratio_vs_bare_packed": m.median / bare_packed})

    print()
    print_table(rows, [("name", "system"), ("median", "tgt tokens/s"), ("ratio_vs_bare", "x bare"),
                       ("ratio_vs_bare_packed", "x bare-packed"), ("spread", "spread")], title=machine_line())
    aims = []
    for r in rows:
        if r["system"] == "seqlab" and r["cells"] == "fused" and not r["input_feeding"]:
            aims.append({"what": f"{r['name']} / bare", "loss": r["loss"], "ratio": r["ratio_vs_bare"],
                         "ratio_text": f"{r['ratio_vs_bare']:.3f}", "target": AIM_FUSED_VS_BARE,
                         "met": r["ratio_vs_bare"] >= AIM_FUSED_VS_BARE})
    if aims:
        print("\naim: fused without input feeding within 10% of bare nn.LSTM (ratio >= 0.9); loss 'trainer' is "
              "the step seqlab train runs, 'logits' the same loss path as bare:")
        print_table(aims, [("what", "aim"), ("loss", "seqlab step"), ("ratio_text", "ratio"),
                           ("target", "target"), ("met", "met")])
    print("spread = (max - min) / median over rounds; large values mean a noisy machine.")

    settings = {
        "model": {"type": "lstm", "layers": LAYERS, "embedding": EMBEDDING, "hidden": HIDDEN,
                  "bidirectional": True, "dropout": DROPOUT, "vocab": VOCAB, "share_embeddings": False},
        "batch_sentences": BATCH, "lengths": [MIN_LEN, MAX_LEN], "n_batches": N_BATCHES,
        "loss": {"bare": f"label_smoothed_nll(logits) eps={LABEL_SMOOTHING}",
                 "seqlab trainer": f"output_layer_nll eps={LABEL_SMOOTHING}, as seqlab train",
                 "seqlab logits": f"label_smoothed_nll(logits) eps={LABEL_SMOOTHING}, as bare"},
        "clip_norm": CLIP_NORM,
        "optimizer": "fused Adam(lr=1e-4, betas=(0.9, 0.98), eps=1e-9)", "precision": args.precision,
        "threads": args.threads, "quick": args.quick, "seed": args.seed,
        "warmup": warmup, "repeats": repeats, "iters": iters,
        "timing": "round-robin over systems; median over rounds of tokens/seconds",
        "rate": "non-pad target tokens (y_1..y_n <eos>) per second",
    }
    return report("recurrent_speed", args.out, settings, rows, aims=aims)


if __name__ == "__main__":
    main()
