"""Study: what the heads of multi-head attention do, and the dot-product intuition.

MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W_O, head_i = softmax(Q W_Q^i (K W_K^i)^T / sqrt(d_k)) V W_V^i:
each head has its own projections, so it can attend to different positions. Three measurements on
a small Transformer translator trained on the built-in English-Portuguese grammar:

1. the cross-attention of every head in every decoder layer for one sentence (heatmaps), and how
   far apart the heads' distributions are (mean total-variation distance between heads);
2. head ablation: BLEU on dev with one cross-attention head silenced (its slice of the input of
   W_O set to zero, by a forward pre-hook), one head at a time;
3. the lesson's intuition that similar meanings give a larger dot product: sentence vectors (mean
   of the encoder's outputs) of "X eats the apple." and "X eats the cake." against
   "X writes the letter." (the grammar has no "bread" or "read").
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
from matplotlib.figure import Figure

from seqlab.api import Translator
from seqlab.data.synthetic import builtin_split
from seqlab.models.base import padding_mask
from seqlab.studies.report import Report, machine
from seqlab.studies.tasks import train_on_task
from seqlab.text.specials import PAD, SOS

NAME = "heads"
CLAIM = ("Multi-head attention lets the model attend to different things at once (heads differ and matter "
         "unequally), and related sentences have larger dot products (\"eat apple\" . \"eat bread\" > "
         "\"eat apple\" . \"read book\").")
COST = "about 15 min (quick: 40 s)"

SENTENCE = "My sister is visiting Brazil in January."
SUBJECTS = ("Maria", "Lucas", "my father", "the children")


def settings(quick: bool) -> dict:
    if quick:
        return {"layers": 2, "d_model": 64, "heads": 4, "n": 4000, "steps": 400, "dev": 100}
    return {"layers": 3, "d_model": 128, "heads": 4, "n": 30000, "steps": 4000, "dev": 500}


@torch.inference_mode()
def cross_attention_per_head(model, src: torch.Tensor, tgt_in: torch.Tensor) -> list[torch.Tensor]:
    """Per decoder layer, the (h, T, S) cross-attention weights of one sentence under teacher forcing."""
    memory, memory_mask = model.run_encoder(src)
    y, weights = model.tgt_embed(tgt_in), []
    for layer in model.decoder_layers:
        k, v = layer.cross_attn.project_kv(memory, memory)  # (B, h, S, d_k)
        y, attn, _ = layer(y, None, None, k, v, memory_mask, causal=True, need_weights=True)
        weights.append(attn[0])  # (h, T, S)
    return weights


def silence_head(attention, head: int):
    """Zero head ``head``'s slice of the input of W_O; returns the hook handle (``.remove()`` undoes it)."""
    d_k = attention.d_k

    def hook(module, args):
        (x,) = args
        x = x.clone()
        x[..., head * d_k:(head + 1) * d_k] = 0.0  # (B, T, h * d_k): head i is columns i*d_k .. (i+1)*d_k
        return (x,)

    return attention.W_o.register_forward_pre_hook(hook)


@torch.inference_mode()
def sentence_vectors(translator: Translator, sentences: list[str]) -> torch.Tensor:
    """(N, d) mean of the encoder outputs over each sentence's tokens."""
    ids = translator.tokenizers.src.encode_batch(sentences)
    width = max(map(len, ids))
    src = torch.tensor([row + [PAD] * (width - len(row)) for row in ids])  # (N, S)
    memory, _ = translator.model.run_encoder(src)  # (N, S, d)
    mask = padding_mask(src).unsqueeze(-1).float()  # (N, S, 1)
    return (memory * mask).sum(1) / mask.sum(1)


def _heads_figure(weights: list[torch.Tensor], src: list[str], tgt: list[str]) -> Figure:
    L, h = len(weights), weights[0].size(0)
    fig = Figure(figsize=(2.6 * h + 0.5, 2.4 * L + 0.6))
    axes = fig.subplots(L, h, squeeze=False)
    for (layer, head), ax in zip(itertools.product(range(L), range(h)), axes.flat):
        ax.imshow(weights[layer][head].numpy(), cmap="viridis", aspect="auto", vmin=0, vmax=1)
        ax.set_title(f"layer {layer + 1}, head {head + 1}", fontsize=8)
        ax.set_xticks(range(len(src)), labels=src, rotation=70, fontsize=5)
        ax.set_yticks(range(len(tgt)), labels=tgt, fontsize=5)
    fig.tight_layout()
    return fig


def run(out: Path, *, quick: bool = False) -> Report:
    torch.set_num_threads(1)
    s = settings(quick)
    train_pairs, dev_pairs = builtin_split("train")[: s["n"]], builtin_split("dev")[: s["dev"]]
    model = {"type": "transformer", "layers": s["layers"], "d_model": s["d_model"], "heads": s["heads"],
             "ffn": 2 * s["d_model"], "dropout": 0.1}
    result = train_on_task(out / "runs", "translator", train_pairs=train_pairs, test_pairs=dev_pairs, model=model,
                           max_steps=s["steps"], tokenizer={"vocab_size": 4000})
    translator = Translator.load(out / "runs" / "translator", checkpoint="last")
    report = Report(NAME, CLAIM, quick=quick, setup=(
        f"Transformer translator, {s['layers']} layers, d_model {s['d_model']}, {s['heads']} heads, trained on "
        f"{s['n']} pairs of the built-in English-Portuguese grammar for {s['steps']} steps (word tokenizer); "
        f"greedy BLEU on {s['dev']} dev pairs. Cross-attention per head for \"{SENTENCE}\"; ablation silences one "
        "cross-attention head of one decoder layer at a time."))
    tok = translator.tokenizers
    hyp = translator.translate(SENTENCE, beam=1)
    src = torch.tensor([tok.src.encode(SENTENCE)])
    tgt_ids = tok.tgt.encode(hyp)
    tgt_in = torch.tensor([[SOS] + tgt_ids])  # <sos> y_1 .. y_T
    weights = cross_attention_per_head(translator.model, src, tgt_in)
    report.figure(_heads_figure(weights, [tok.src.id_to_token(i) for i in src[0].tolist()],
                                ["<sos>"] + [tok.tgt.id_to_token(i) for i in tgt_ids]),
                  "cross_attention_heads.png", f"Cross-attention of each head and layer: {SENTENCE} -> {hyp}")
    spread = []
    for w in weights:
        pairs = list(itertools.combinations(range(w.size(0)), 2))
        spread.append(sum(float(0.5 * (w[a] - w[b]).abs().sum(-1).mean()) for a, b in pairs) / len(pairs))

    base = translator.evaluate(dev_pairs, beam=1).bleu
    drops = []
    for layer_index, layer in enumerate(translator.model.decoder_layers):
        for head in range(s["heads"]):
            handle = silence_head(layer.cross_attn, head)
            try:
                drops.append((layer_index + 1, head + 1, base - translator.evaluate(dev_pairs, beam=1).bleu))
            finally:
                handle.remove()
    report.table(f"Cross-attention head ablation (dev BLEU {base:.2f} with every head)",
                 ["layer", "head", "BLEU drop"], [list(d) for d in drops])
    report.table("How different the heads are", ["decoder layer", "mean total-variation distance between heads"],
                 [[i + 1, v] for i, v in enumerate(spread)])

    triples = []
    for subject in SUBJECTS:
        a, b, c = sentence_vectors(translator, [f"{subject} eats the apple.", f"{subject} eats the cake.",
                                                f"{subject} writes the letter."])
        triples.append((subject, float(a @ b), float(a @ c)))
    report.table("Dot products of sentence vectors", ["subject", "eats apple . eats cake", "eats apple . writes letter"],
                 [list(t) for t in triples])
    holds = sum(ab > ac for _, ab, ac in triples)
    largest = max(d for *_, d in drops)
    checks = {"heads attend differently (mean distance > 0.2)": max(spread) > 0.2,
              "heads matter unequally (largest BLEU drop > 1 and over twice the smallest)":
                  largest > 1.0 and largest > 2 * max(0.0, min(d for *_, d in drops)),
              "related sentences have the larger dot product (most subjects)": holds * 2 > len(triples)}
    facts = (f"dev BLEU {base:.2f}; head distance per layer {', '.join(f'{v:.2f}' for v in spread)}; BLEU drop "
             f"when silencing one head: {min(d for *_, d in drops):.2f} to {largest:.2f}; eats apple . eats cake > "
             f"eats apple . writes letter for {holds} of {len(triples)} subjects")
    if all(checks.values()):
        report.decide("supported", facts + ".")
    elif any(checks.values()):
        report.decide("depends", facts + ". Did not hold: " + "; ".join(k for k, ok in checks.items() if not ok) + ".")
    else:
        report.decide("not supported", facts + ".")
    report.numbers = {"machine": machine(), **s, "dev_bleu": base, "exact_match": result.accuracy,
                      "head_distance": spread, "ablation": drops, "dot_products": triples, "translation": hyp}
    return report
