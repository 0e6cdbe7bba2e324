"""Transformer translation speed: seqlab against HuggingFace Marian (and torch.nn.Transformer).

The standard model: 3 encoder + 3 decoder layers, d_model 256, 4 heads, FFN 1024, vocabulary 8,000
(shared source/target embeddings, output tied to them), dropout 0.1, attention and activation
dropout 0. Random weights, random token ids; every system sees the same batches.

Training: batches of 64 sentence pairs, source and target lengths uniform in 12-16 tokens. One step
is forward, loss, backward, gradient clipping at norm 1.0 and a (fused) Adam step; the rate is non-pad
target tokens per second. Decoding: batches of 32 source sentences of 12-16 tokens, exactly 20 new
tokens per sentence (end-of-sentence is masked: seqlab's decode_step is wrapped so
logits[:, EOS] = -inf; Marian gets min_new_tokens = max_new_tokens = 20), greedy and beam 5; the
rate is sentences per second. Ratios are seqlab / Marian at the same setting.

    python benchmarks/translation_speed.py --quick
    python benchmarks/translation_speed.py --out results/translation.json
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import (
    CLIP_NORM,
    EOS,
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

VOCAB = 8000
LAYERS, D_MODEL, HEADS, FFN = 3, 256, 4, 1024
DROPOUT = 0.1
TRAIN_BATCH, DECODE_BATCH, MIN_LEN, MAX_LEN = 64, 32, 12, 16
NEW_TOKENS, BEAM, LENGTH_PENALTY = 20, 5, 0.6
N_BATCHES = 8
"""Distinct pre-built batches, cycled (so data generation is never timed)."""

AIMS = {  # issue 2 (best setting, where bf16 is native) and issue 9 (fp32, on every CPU)
    "train_best_vs_marian_fp32": 2.0,
    "train_fp32_vs_marian_fp32": 1.2,
    "greedy_vs_marian": 2.0,
    "beam5_vs_marian": 2.0,
    "greedy_fp32_vs_marian_fp32": 1.5,
    "beam5_fp32_vs_marian_fp32": 1.5,
}

DEFAULTS = {  # (warmup, repeats, iters) per task, full run / --quick
    "train": ((5, 7, 10), (1, 2, 1)),
    "decode": ((2, 7, 3), (1, 2, 1)),
}


# --------------------------------------------------------------------------------------------
# the three systems


def build_seqlab(seed: int) -> nn.Module:
    from seqlab.config import TransformerConfig
    from seqlab.models.transformer import build_transformer

    torch.manual_seed(seed)
    cfg = TransformerConfig(layers=LAYERS, d_model=D_MODEL, heads=HEADS, ffn=FFN, dropout=DROPOUT,
                            share_embeddings=True, tie_output=True)
    return build_transformer(cfg, VOCAB, VOCAB)


def marian_config(activation: str):
    from transformers import MarianConfig

    return MarianConfig(
        vocab_size=VOCAB, d_model=D_MODEL, encoder_layers=LAYERS, decoder_layers=LAYERS,
        encoder_attention_heads=HEADS, decoder_attention_heads=HEADS,
        encoder_ffn_dim=FFN, decoder_ffn_dim=FFN, max_position_embeddings=512,
        pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=1, forced_eos_token_id=None,
        dropout=DROPOUT, attention_dropout=0.0, activation_dropout=0.0,
        activation_function=activation,
    )


def build_marian(seed: int, activation: str) -> nn.Module:
    from transformers import MarianMTModel

    torch.manual_seed(seed)
    return MarianMTModel(marian_config(activation))


class TorchTransformerMT(nn.Module):
    """torch.nn.Transformer with shared scaled embeddings, sinusoidal positions and a tied output."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, D_MODEL, padding_idx=PAD)
        self.dropout = nn.Dropout(DROPOUT)
        self.transformer = nn.Transformer(d_model=D_MODEL, nhead=HEADS, num_encoder_layers=LAYERS,
                                          num_decoder_layers=LAYERS, dim_feedforward=FFN,
                                          dropout=DROPOUT, batch_first=True)
        self.output = nn.Linear(D_MODEL, VOCAB, bias=False)
        self.output.weight = self.embedding.weight
        position = torch.arange(512)[:, None]
        freq = torch.exp(torch.arange(0, D_MODEL, 2) * (-math.log(10000.0) / D_MODEL))
        pe = torch.zeros(512, D_MODEL)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(position * freq), torch.cos(position * freq)
        self.register_buffer("pe", pe, persistent=False)

    def embed(self, ids: Tensor) -> Tensor:
        return self.dropout(self.embedding(ids) * math.sqrt(D_MODEL) + self.pe[: ids.size(1)])

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        T = tgt_in.size(1)
        causal = nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.bool)
        h = self.transformer(self.embed(src), self.embed(tgt_in), tgt_mask=causal,
                             src_key_padding_mask=src.eq(PAD), tgt_key_padding_mask=tgt_in.eq(PAD),
                             memory_key_padding_mask=src.eq(PAD), tgt_is_causal=True)
        return self.output(h)  # (B, T, V)


# --------------------------------------------------------------------------------------------
# training steps: call(i) -> non-pad target tokens of the batch it trained on


def marian_train(model: nn.Module, batches: list[Batch], precision: str, *, smoothing: bool):
    optimizer = training_optimizer(model)
    labels = [b.tgt_out.masked_fill(b.tgt_out.eq(PAD), -100) for b in batches]

    def call(i: int) -> int:
        b = batches[i % len(batches)]
        y = labels[i % len(batches)]
        with precision_context(precision):
            if smoothing:  # what Trainer(label_smoothing_factor=0.1) does, on the logits
                out = model(input_ids=b.src, attention_mask=b.src.ne(PAD), decoder_input_ids=b.tgt_in)
                loss = F.cross_entropy(out.logits.float().flatten(0, 1), y.flatten(),
                                       ignore_index=-100, label_smoothing=LABEL_SMOOTHING)
            else:  # the model's own loss: plain cross-entropy, mean over labels != -100
                loss = model(input_ids=b.src, attention_mask=b.src.ne(PAD), decoder_input_ids=b.tgt_in,
                             labels=y).loss
        optimizer_step(model, optimizer, loss)
        return b.n_tgt_tokens

    return call


def torch_train(model: nn.Module, batches: list[Batch], precision: str):
    optimizer = training_optimizer(model)

    def call(i: int) -> int:
        b = batches[i % len(batches)]
        with precision_context(precision):
            logits = model(b.src, b.tgt_in)
        loss = F.cross_entropy(logits.float().flatten(0, 1), b.tgt_out.flatten(), ignore_index=PAD,
                               label_smoothing=LABEL_SMOOTHING)
        optimizer_step(model, optimizer, loss)
        return b.n_tgt_tokens

    return call


# --------------------------------------------------------------------------------------------
# decoding: call(i) -> sentences translated


class NoEos:
    """A Seq2SeqModel view whose decode_step never proposes <eos> (logits[:, EOS] = -inf)."""

    def __init__(self, model: nn.Module):
        self.model = model

    def encode(self, src: Tensor):
        return self.model.encode(src)

    def decode_step(self, state, y_prev: Tensor):
        logits, state = self.model.decode_step(state, y_prev)
        return logits.index_fill(1, torch.tensor([EOS]), float("-inf")), state


def seqlab_decode(model: nn.Module, batches: list[Batch], precision: str, beam: int):
    from seqlab.decoding import beam_search, greedy_search
    from seqlab.nn.linear import pack_for_decoding

    pack_for_decoding(model, precision=precision)  # as seqlab.api.Translator does
    view = NoEos(model)

    def call(i: int) -> int:
        src = batches[i % len(batches)].src
        with precision_context(precision):
            if beam == 1:
                out = greedy_search(view, src, max_len=NEW_TOKENS)
            else:
                out = beam_search(view, src, beam=beam, max_len=NEW_TOKENS, length_penalty=LENGTH_PENALTY)
        if i == 0:
            lengths = {len(t) for t in out.tokens}
            assert lengths == {NEW_TOKENS}, f"seqlab produced lengths {lengths}, expected {NEW_TOKENS}"
        return src.size(0)

    return call


def marian_decode(model: nn.Module, batches: list[Batch], precision: str, beam: int):
    extra = {} if beam == 1 else {"length_penalty": LENGTH_PENALTY}

    def call(i: int) -> int:
        src = batches[i % len(batches)].src
        with precision_context(precision):
            out = model.generate(input_ids=src, attention_mask=src.ne(PAD), num_beams=beam,
                                 max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False,
                                 use_cache=True, **extra)
        if i == 0:  # (B, 1 + new tokens): the decoder start token, then the output
            assert out.shape == (src.size(0), NEW_TOKENS + 1), f"Marian output {tuple(out.shape)}"
            assert not bool(out[:, 1:].eq(EOS).any()), "Marian emitted <eos> despite min_new_tokens"
        return src.size(0)

    return call


# --------------------------------------------------------------------------------------------
# driver


def _rows(task: str, precision: str, unit: str, results: dict, losses: dict, plan) -> list[dict]:
    rows = []
    marian = results.get("marian")
    for name, m in results.items():
        rows.append({
            "task": task, "precision": precision, "system": name, "unit": unit,
            "median": m.median, "rates": m.rates, "seconds": m.seconds, "spread": m.spread,
            "ratio_vs_marian": m.median / marian.median if marian else None,
            "loss": losses.get(name), "warmup": plan[0], "repeats": plan[1], "iters": plan[2],
        })
    return rows


def run_training(args, systems: dict, precisions: list[str]) -> list[dict]:
    batches = make_batches(args.seed, N_BATCHES, size=TRAIN_BATCH, min_len=MIN_LEN, max_len=MAX_LEN, vocab=VOCAB)
    plan = schedule(args, *DEFAULTS["train"])
    losses = {
        "seqlab": f"output_layer_nll eps={LABEL_SMOOTHING} (sum/n), as the trainer",
        "marian": "model's own loss: plain cross-entropy (labels=...)",
        "marian+ls": f"F.cross_entropy(logits, label_smoothing={LABEL_SMOOTHING})",
        "torch.nn.Transformer": f"F.cross_entropy(logits, label_smoothing={LABEL_SMOOTHING})",
    }
    rows = []
    for precision in precisions:
        for model in systems.values():
            model.train()
        calls = {
            "seqlab": seqlab_train(systems["seqlab"], batches, precision),
            "marian": marian_train(systems["marian"], batches, precision, smoothing=False),
            "marian+ls": marian_train(systems["marian"], batches, precision, smoothing=True),
            "torch.nn.Transformer": torch_train(systems["torch.nn.Transformer"], batches, precision),
        }
        print(f"training, {precision}: warmup {plan[0]}, {plan[1]} rounds x {plan[2]} steps ...",
              flush=True)
        results = run_rounds(calls, warmup=plan[0], repeats=plan[1], iters=plan[2])
        rows += _rows("train", precision, "tgt tokens/s", results, losses, plan)
    return rows


def run_decoding(args, systems: dict, precisions: list[str]) -> list[dict]:
    batches = make_batches(args.seed + 1, N_BATCHES, size=DECODE_BATCH, min_len=MIN_LEN, max_len=MAX_LEN,
                           vocab=VOCAB)
    plan = schedule(args, *DEFAULTS["decode"])
    rows = []
    for model in systems.values():
        model.eval()
    for beam in (1, BEAM):
        task = "greedy" if beam == 1 else f"beam{beam}"
        for precision in precisions:
            calls = {
                "seqlab": seqlab_decode(systems["seqlab"], batches, precision, beam),
                "marian": marian_decode(systems["marian"], batches, precision, beam),
            }
            print(f"{task}, {precision}: warmup {plan[0]}, {plan[1]} rounds x {plan[2]} batches ...",
                  flush=True)
            results = run_rounds(calls, warmup=plan[0], repeats=plan[1], iters=plan[2])
            rows += _rows(task, precision, "sentences/s", results, {}, plan)
    return rows


def check_aims(rows: list[dict]) -> list[dict]:
    """The team's targets, computed from the rows that exist."""
    def row(task, system, precision):
        for r in rows:
            if (r["task"], r["system"], r["precision"]) == (task, system, precision):
                return r
        return None

    def rate(task, system, precision):
        r = row(task, system, precision)
        return None if r is None else r["median"]

    aims = []

    def add(name, what, num, den, per_round=None):
        if num is None or den is None:
            return
        ratio = num / den
        aim = {"aim": name, "what": what, "ratio": ratio, "ratio_text": f"{ratio:.3f}", "target": AIMS[name],
               "met": ratio >= AIMS[name], "rounds_text": ""}
        if per_round:
            aim.update(per_round=per_round, per_round_median=statistics.median(per_round),
                       rounds_text=f"{statistics.median(per_round):.2f} ({min(per_round):.2f}-{max(per_round):.2f})")
        aims.append(aim)

    def add_fp32(name, what, task):
        """seqlab fp32 / Marian fp32 of ``task``: they ran in the same rounds, so also round by round."""
        a, b = row(task, "seqlab", "fp32"), row(task, "marian", "fp32")
        if a is not None and b is not None:
            add(name, what, a["median"], b["median"], [x / y for x, y in zip(a["rates"], b["rates"])])

    def best(task, system):
        rates = [r["median"] for r in rows if r["task"] == task and r["system"] == system]
        return max(rates) if rates else None

    marian_fp32 = rate("train", "marian", "fp32")
    add("train_best_vs_marian_fp32", "training: seqlab best setting / Marian fp32", best("train", "seqlab"),
        marian_fp32)
    add_fp32("train_fp32_vs_marian_fp32", "training: seqlab fp32 / Marian fp32", "train")
    for task, name in (("greedy", "greedy_vs_marian"), (f"beam{BEAM}", "beam5_vs_marian")):
        add(name, f"{task}: seqlab best setting / Marian fp32", best(task, "seqlab"), rate(task, "marian", "fp32"))
        add(name, f"{task}: seqlab best setting / Marian best setting", best(task, "seqlab"), best(task, "marian"))
    for task, name in (("greedy", "greedy_fp32_vs_marian_fp32"), (f"beam{BEAM}", "beam5_fp32_vs_marian_fp32")):
        add_fp32(name, f"{task}: seqlab fp32 / Marian fp32", task)
    return aims


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument("--only", choices=["train", "decode"], default=None, help="run one half only")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16 (autocast)")
    parser.add_argument("--marian-activation", default="relu", choices=["relu", "gelu"],
                        help="Marian FFN activation; relu matches seqlab and torch.nn.Transformer "
                             "(MarianConfig's own default is gelu)")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    apply_threads(args.threads)
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    warnings.filterwarnings("ignore")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
    except ImportError as e:
        raise SystemExit("this benchmark needs HuggingFace transformers: pip install -e '.[bench]'") from e

    systems = {
        "seqlab": build_seqlab(args.seed),
        "marian": build_marian(args.seed, args.marian_activation),
        "torch.nn.Transformer": TorchTransformerMT(),
    }
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in systems.items()}
    settings = {
        "model": {"layers": LAYERS, "d_model": D_MODEL, "heads": HEADS, "ffn": FFN, "vocab": VOCAB,
                  "dropout": DROPOUT, "attention_dropout": 0.0, "activation_dropout": 0.0,
                  "shared_embeddings": True, "tied_output": True,
                  "marian_activation": args.marian_activation, "seqlab_activation": "relu"},
        "parameters": params,
        "train": {"batch_sentences": TRAIN_BATCH, "lengths": [MIN_LEN, MAX_LEN], "optimizer": "fused Adam(lr=1e-4, "
                  "betas=(0.9, 0.98), eps=1e-9)", "clip_norm": CLIP_NORM, "label_smoothing": LABEL_SMOOTHING,
                  "rate": "non-pad target tokens (y_1..y_n <eos>) per second"},
        "decode": {"batch_sentences": DECODE_BATCH, "lengths": [MIN_LEN, MAX_LEN], "new_tokens": NEW_TOKENS,
                   "beam": BEAM, "length_penalty": LENGTH_PENALTY,
                   "eos": "masked: seqlab decode_step logits[:, EOS] = -inf with max_len=20; Marian "
                          "min_new_tokens = max_new_tokens = 20",
                   "rate": "source sentences per second"},
        "precisions": precisions, "threads": args.threads, "quick": args.quick, "seed": args.seed,
        "n_batches": N_BATCHES, "timing": "round-robin over systems; median over rounds of work/seconds",
    }
    print(f"threads {args.threads}; parameters: " + ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in params.items()))
    print(f"decoding: <eos> masked so every sentence gets exactly {NEW_TOKENS} new tokens")

    rows = []
    if args.only in (None, "train"):
        rows += run_training(args, systems, precisions)
    if args.only in (None, "decode"):
        rows += run_decoding(args, systems, precisions)

    print()
    print_table(rows, [("task", "task"), ("precision", "precision"), ("system", "system"), ("median", "median"),
                       ("unit", "unit"), ("ratio_vs_marian", "x Marian"), ("spread", "spread")], title=machine_line())
    aims = check_aims(rows)
    if aims:
        print("\naims (ratio >= target):")
        print_table(aims, [("what", "aim"), ("ratio_text", "ratio"), ("target", "target"), ("met", "met"),
                           ("rounds_text", "per round: median (min-max)")])
        print("ratio: of the medians (what 'met' reads); per round: seqlab / Marian within each round, "
              "which ran them back to back, so a slow spell of the machine hits both")
    losses = [f"{r['system']}: {r['loss']}" for r in rows if r["task"] == "train" and r["precision"] == precisions[0]]
    if losses:
        print("\nlosses: " + "; ".join(losses))
    print("spread = (max - min) / median over rounds; large values mean a noisy machine.")

    return report("translation_speed", args.out, settings, rows, aims=aims)


if __name__ == "__main__":
    main()
