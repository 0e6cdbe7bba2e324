"""Study: positional encoding, and what the Transformer sees without it.

Self-attention softmax(Q K^T / sqrt(d_k)) V treats its inputs as a set: permuting the tokens
permutes the outputs the same way. Order enters only through the positional encoding added to
the embeddings (Vaswani et al. 2017, section 3.5)::

    PE(t, 2i) = sin(t / 10000^(2i/d)),   PE(t, 2i+1) = cos(t / 10000^(2i/d))

so PE(t) . PE(t+k) = sum_i cos(k / 10000^(2i/d)) depends on the offset k only, not on t.

The study trains one Transformer configuration with ``model.positions`` sinusoidal, learned and
none on an order-sensitive task (reverse), on one where only content matters (sort), and on
translation (the built-in English-Portuguese grammar, scored by dev BLEU, its unigram precision
and exact match: word order matters there, but a model that sees the source as a bag of words can
still get most words right), and draws the encoding and its dot products.
"""

from __future__ import annotations

from pathlib import Path

import sacrebleu
import torch
from matplotlib.figure import Figure

from seqlab.data.synthetic import builtin_split
from seqlab.nn.positional import sinusoidal_table
from seqlab.studies.report import Report, machine
from seqlab.studies.tasks import make_pairs, train_on_task

NAME = "positions"
CLAIM = "Without positional encoding a Transformer cannot see word order, so it fails where order matters."
COST = "about 25 min (quick: 2 min)"

POSITIONS = ("sinusoidal", "learned", "none")


def settings(quick: bool) -> dict:
    if quick:
        return {"tasks": ["reverse", "sort"], "length": (4, 8), "n": 1500, "steps": 200, "d_model": 32,
                "translation": {"n": 4000, "steps": 400, "d_model": 64, "dev": 100}}
    return {"tasks": ["reverse", "sort"], "length": (8, 16), "n": 8000, "steps": 2000, "d_model": 64,
            "translation": {"n": 30000, "steps": 2000, "d_model": 64, "dev": 500}}


def encoding_figure(d_model: int = 64, positions: int = 64) -> Figure:
    """Heatmap of PE(t, i), and PE(t) . PE(t+k) against k for a few t."""
    pe = sinusoidal_table(positions + 64, d_model)  # (T, d)
    fig = Figure(figsize=(10, 3.6))
    left, right = fig.subplots(1, 2)
    image = left.imshow(pe[:positions].numpy(), aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
    left.set_xlabel("dimension i")
    left.set_ylabel("position t")
    left.set_title(f"PE(t, i), d_model = {d_model}")
    fig.colorbar(image, ax=left)
    ks = torch.arange(0, 64)
    for t, style in ((0, "-"), (10, "--"), (40, ":")):
        right.plot(ks.numpy(), (pe[t] * pe[t + ks]).sum(dim=1).numpy(), style, linewidth=3 if t == 0 else 1.5,
                   label=f"t = {t}")
    right.set_xlabel("offset k")
    right.set_ylabel("PE(t) . PE(t+k)")
    right.set_title("depends on k, not on t (the curves coincide)")
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _transformer(d: int, positions: str) -> dict:
    return {"type": "transformer", "layers": 2, "d_model": d, "heads": 4, "ffn": 2 * d, "dropout": 0.0,
            "positions": positions}


def translation_scores(out: Path, t: dict) -> dict[str, dict[str, float]]:
    """Per ``model.positions``: dev BLEU, its unigram precision and exact match on the built-in grammar."""
    from seqlab.api import Translator

    train_pairs, dev_pairs = builtin_split("train")[: t["n"]], builtin_split("dev")[: t["dev"]]
    refs = [tgt for _, tgt in dev_pairs]
    scores = {}
    for positions in POSITIONS:
        result = train_on_task(out / "runs", f"translation-{positions}", train_pairs=train_pairs,
                               test_pairs=dev_pairs, model=_transformer(t["d_model"], positions),
                               max_steps=t["steps"], tokenizer={"vocab_size": 4000})
        evaluation = Translator.load(out / "runs" / f"translation-{positions}", checkpoint="last").evaluate(
            dev_pairs, beam=1)
        scores[positions] = {"bleu": evaluation.bleu, "exact_match": result.accuracy,  # BLEU-1 precision:
                             "unigram_precision": sacrebleu.corpus_bleu(evaluation.hypotheses, [refs]).precisions[0]}
    return scores


def run(out: Path, *, quick: bool = False) -> Report:
    torch.set_num_threads(1)
    s = settings(quick)
    d = s["d_model"]
    t = s["translation"]
    report = Report(NAME, CLAIM, quick=quick, setup=(
        f"Transformer, 2 layers, d_model {d}, 4 heads, trained with `model.positions` sinusoidal / learned / "
        f"none on {s['n']} random digit sequences of length {s['length'][0]}-{s['length'][1]} for "
        f"{s['steps']} steps per run; exact match of greedy decoding on 100 new sequences. Reverse needs "
        "the order of the source; sort needs only its contents (a multiset), but the output must still be "
        "emitted in order, which the decoder's own positions provide. Translation: the same Transformer with "
        f"d_model {t['d_model']} on {t['n']} pairs of the built-in English-Portuguese grammar for {t['steps']} "
        f"steps (word tokenizer); greedy BLEU, its unigram precision and exact match on {t['dev']} dev pairs."))
    accuracy: dict[str, dict[str, float]] = {}
    for task in s["tasks"]:
        train_pairs = make_pairs(task, s["n"], s["length"], seed=1)
        test_pairs = make_pairs(task, 100, s["length"], seed=2)
        accuracy[task] = {}
        for positions in POSITIONS:
            result = train_on_task(out / "runs", f"{task}-{positions}", train_pairs=train_pairs,
                                   test_pairs=test_pairs, model=_transformer(d, positions),
                                   max_steps=s["steps"])
            accuracy[task][positions] = result.accuracy
    report.table("Exact match", ["task", *POSITIONS], [[k, *(acc[p] for p in POSITIONS)] for k, acc in accuracy.items()])
    translation = translation_scores(out, t)
    report.table("Translation (built-in English-Portuguese, dev)", ["measure", *POSITIONS],
                 [[label, *(translation[p][key] for p in POSITIONS)] for key, label in
                  (("bleu", "BLEU"), ("unigram_precision", "unigram precision (%)"), ("exact_match", "exact match"))])
    report.figure(encoding_figure(), "encoding.png", "The sinusoidal encoding, and PE(t) . PE(t+k) against k")
    pe = sinusoidal_table(200, 64)
    shift = [float(pe[t] @ pe[t + 5]) for t in (0, 50, 100)]
    rev = accuracy["reverse"]
    with_pe = max(rev["sinusoidal"], rev["learned"])
    facts = (f"reverse: sinusoidal {rev['sinusoidal']:.2f}, learned {rev['learned']:.2f}, none {rev['none']:.2f}; "
             f"sort: none {accuracy['sort']['none']:.2f} against sinusoidal {accuracy['sort']['sinusoidal']:.2f}. "
             f"Translation dev BLEU: sinusoidal {translation['sinusoidal']['bleu']:.1f}, learned "
             f"{translation['learned']['bleu']:.1f}, none {translation['none']['bleu']:.1f} (unigram precision "
             f"{translation['none']['unigram_precision']:.0f}% without against "
             f"{translation['sinusoidal']['unigram_precision']:.0f}% with sinusoidal). "
             f"PE(t).PE(t+5) at t = 0, 50, 100: {', '.join(f'{v:.3f}' for v in shift)} (the same)")
    bleu_with_pe = max(translation["sinusoidal"]["bleu"], translation["learned"]["bleu"])
    translation_fails = translation["none"]["bleu"] < 0.5 * bleu_with_pe
    if with_pe >= rev["none"] + 0.3 and not translation_fails:
        report.decide("depends", facts + f"; reverse fails without positions, but translation does not: it keeps "
                      f"{translation['none']['bleu'] / max(bleu_with_pe, 1e-9):.0%} of the BLEU with positions.")
    elif with_pe >= rev["none"] + 0.3:
        report.decide("supported", facts + ".")
    elif with_pe > rev["none"]:
        report.decide("depends", facts + "; the gap on reverse is small at this size.")
    else:
        report.decide("not supported", facts + ".")
    report.numbers = {"machine": machine(), **s, "accuracy": accuracy, "translation": translation,
                      "pe_dot_offset_5": shift}
    return report
