"""Study: translation quality against sentence length, with and without attention, on real data.

An encoder-decoder without attention squeezes the whole source into one vector c = h_S that the
decoder starts from, s_0 = f(c) (Sutskever et al. 2014; Cho et al. 2014); the longer the
sentence, the more that vector must hold. With attention the decoder reads a new mixture at
every step, c_i = sum_j a_ij h_j with a_ij = softmax_j(score(s_i, h_j)) (Bahdanau et al. 2015),
so nothing has to fit in one vector. Bahdanau et al.'s figure 2 shows the first model's BLEU
falling with sentence length and the second's holding up.

This study decodes a dev set with trained translation runs (by default the three of
``configs/quality/`` on Tatoeba English-Portuguese), sorts the sentences into buckets by source
length in words, and scores each bucket with corpus BLEU and chrF (sacrebleu, through
:mod:`seqlab.evaluation`). The decoding is each run's own (``decode`` section: beam or greedy).
It compares the relative drop (BLEU_shortest - BLEU_longest) / BLEU_shortest of the
fixed-context models (recurrent, ``model.attention: none``) with the attention models'.

``--quick`` needs no data: it trains two small LSTMs (fixed context and additive attention) on
the built-in English-Portuguese grammar and buckets its dev set.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from seqlab.config import ExperimentConfig
from seqlab.errors import SeqlabError
from seqlab.evaluation.metrics import bleu, chrf
from seqlab.io import atomic_write_text
from seqlab.studies import StudyInputMissing
from seqlab.studies.figures import curves
from seqlab.studies.report import Report, machine
from seqlab.studies.tasks import train_on_task

NAME = "long-sentences"
CLAIM = ("Attention helps long sentences: the BLEU of a model with a fixed context vector falls more from "
         "short to long sentences than the BLEU of models with attention.")
COST = ("about 5 min: it decodes Tatoeba dev with the three runs of configs/quality/, which take 20 min "
        "each to train first (quick: 2 min)")

DEFAULT_RUNS = ("runs/tatoeba-transformer", "runs/tatoeba-lstm-attention-nofeed", "runs/tatoeba-lstm")
DEFAULT_DATA = "../shared/data/tatoeba-en-pt/dev.tsv"
EDGES = (4, 6, 8, 11)
"""Bucket upper bounds for Tatoeba dev (932 pairs): 1-4, 5-6, 7-8, 9-11 and 12+ words hold
243, 288, 226, 104 and 71 sentences."""


@dataclass
class Bucket:
    """Sentences whose source has ``low`` to ``high`` words (``high`` None: no upper bound)."""

    low: int
    high: int | None
    indices: list[int] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.high is None:
            return f"{self.low}+"
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


def length_buckets(sources: list[str], edges: tuple[int, ...]) -> list[Bucket]:
    """Sort sentence indices into buckets by source length in words (whitespace-separated).

    Args:
        sources: the source sentences.
        edges: increasing inclusive upper bounds; ``(4, 6)`` makes 1-4, 5-6 and 7+.

    Returns:
        ``len(edges) + 1`` buckets, every index in exactly one, in order within each.
    """
    if not edges or any(b <= a for a, b in zip((0, *edges), edges)):
        raise ValueError(f"bucket edges must be increasing positive word counts, got {edges}")
    buckets = [Bucket(low, high) for low, high in zip((1, *(e + 1 for e in edges)), (*edges, None))]
    for index, sentence in enumerate(sources):
        n = len(sentence.split())
        buckets[sum(n > e for e in edges)].indices.append(index)  # bucket k: edges[k-1] < n <= edges[k]
    return buckets


def model_label(config: ExperimentConfig) -> str:
    """What a run is, from its config: ``Transformer``, ``LSTM, additive attention``, ``LSTM, fixed context``."""
    m = config.model
    if m.type == "transformer":
        return "Transformer"
    if m.type in ("rnn", "lstm", "gru"):
        if m.attention == "none":
            return f"{m.type.upper()}, fixed context"
        return f"{m.type.upper()}, {m.attention} attention" + (", input feeding" if m.input_feeding else "")
    return m.type


def has_fixed_context(config: ExperimentConfig) -> bool:
    """A recurrent encoder-decoder without attention: the decoder sees the source through one vector."""
    return config.model.type in ("rnn", "lstm", "gru") and config.model.attention == "none"


def settings(quick: bool) -> dict:
    if quick:
        return {"n": 4000, "steps": 500, "hidden": 128, "dev": 500, "edges": (5, 6, 7)}
    return {"edges": EDGES}


def _missing_runs(runs: list[str]) -> str:
    lines = []
    for run in runs:
        config = Path(__file__).resolve().parents[2] / "configs" / "quality" / f"{Path(run).name}.yaml"
        lines.append(f"  {run} (make it: python -m seqlab train "
                     f"{os.path.relpath(config) if config.is_file() else 'CONFIG'} --out {run})")
    return "\n".join(lines)


def check_inputs(runs: list[str], data: str) -> None:
    """Raise :class:`StudyInputMissing` naming each missing run folder or data file and what makes it."""
    absent = [r for r in runs if not (Path(r) / "checkpoints").is_dir()]
    problems = []
    if absent:
        problems.append("no trained run at\n" + _missing_runs(absent))
    if not data.startswith("builtin:") and not Path(data).is_file():
        problems.append(f"no dev set at\n  {data} (the Tatoeba English-Portuguese dev set, see the README's "
                        "'Quality on real data'; or pass --data FILE with source<TAB>target lines)")
    if problems:
        raise StudyInputMissing(f"study {NAME}: " + "\n".join(problems)
                                + "\n(pass other runs with --runs RUN [RUN ...] and the data with --data FILE, "
                                  "or run it with --quick on the built-in data)")


def _toy_runs(out: Path, s: dict) -> tuple[list[Path], list[tuple[str, str]]]:
    """Two small LSTMs on the built-in grammar, fixed context and additive attention; their run folders."""
    from seqlab.data.synthetic import builtin_split

    train_pairs, dev_pairs = builtin_split("train")[: s["n"]], builtin_split("dev")[: s["dev"]]
    base = {"type": "lstm", "layers": 1, "embedding": s["hidden"], "hidden": s["hidden"], "dropout": 0.0,
            "input_feeding": False}
    runs = []
    for name, attention in (("lstm-fixed", "none"), ("lstm-attention", "additive")):
        train_on_task(out / "runs", name, train_pairs=train_pairs, test_pairs=dev_pairs[:50],
                      model={**base, "attention": attention}, max_steps=s["steps"], tokenizer={"vocab_size": 4000})
        runs.append(out / "runs" / name)
    return runs, dev_pairs


def _decode(runs: list[Path], pairs: list[tuple[str, str]]) -> dict[str, dict]:
    """Label -> the run, its decoding, its hypotheses and whether it has a fixed context, per run.

    Raises:
        SeqlabError: the runs are not a mix of fixed-context and attention models (checked
            before the decoding, which takes minutes).
    """
    from seqlab.api import Translator

    translators = {}
    for run in runs:
        translator = Translator.load(run, checkpoint="best")
        label = model_label(translator.config)
        translators[f"{label} ({Path(run).name})" if label in translators else label] = translator
    kinds = {has_fixed_context(t.config) for t in translators.values()}
    if kinds != {True, False}:
        raise SeqlabError(f"study {NAME} compares a fixed-context model (a recurrent run with model.attention: "
                          f"none) with attention models; these runs are: {', '.join(translators)}")
    decoded = {}
    for label, translator in translators.items():
        d = translator.config.decode
        result = translator.evaluate(pairs)  # the run's own decode section: beam or greedy
        decoded[label] = {"run": str(translator.run_dir), "decoding": "greedy" if d.beam == 1 else f"beam {d.beam}",
                          "fixed_context": has_fixed_context(translator.config), "hypotheses": result.hypotheses,
                          "dev_bleu": result.bleu, "dev_chrf": result.chrf}
    return decoded


def relative_drop(scores: list[float]) -> float:
    """(first - last) / first: the share of the shortest bucket's score lost on the longest."""
    return (scores[0] - scores[-1]) / scores[0] if scores[0] > 0 else float("nan")


def run(out: Path, *, quick: bool = False, runs: list[str] | None = None, data: str | None = None) -> Report:
    from seqlab.data.readers import read_parallel

    torch.set_num_threads(1)
    s = settings(quick)
    if quick:
        if runs or data:
            raise SeqlabError(f"study {NAME} --quick trains its own toy runs on the built-in data; "
                              "leave out --runs and --data, or leave out --quick")
        run_dirs, pairs = _toy_runs(out, s)
        source = "the built-in English-Portuguese grammar's dev split"
    else:
        runs, data = list(runs or DEFAULT_RUNS), data or DEFAULT_DATA
        check_inputs(runs, data)
        run_dirs, pairs, source = [Path(r) for r in runs], read_parallel(data), data
    out = Path(out)
    buckets = [b for b in length_buckets([src for src, _ in pairs], s["edges"]) if b.indices]
    if len(buckets) < 2:
        raise SeqlabError(f"{source}: every sentence falls in one length bucket ({buckets[0].label if buckets else 'none'}"
                          f" words); the study compares short with long sentences")
    decoded = _decode(run_dirs, pairs)
    refs = [tgt for _, tgt in pairs]
    scores: dict[str, dict[str, list[float]]] = {}
    for label, m in decoded.items():
        hyps = m["hypotheses"]
        m["hypotheses_file"] = f"hypotheses/{Path(m['run']).name}.txt"  # one line per dev pair, in order
        atomic_write_text(out / m["hypotheses_file"], "".join(h + "\n" for h in hyps))
        scores[label] = {
            "bleu": [bleu([hyps[i] for i in b.indices], [refs[i] for i in b.indices]) for b in buckets],
            "chrf": [chrf([hyps[i] for i in b.indices], [refs[i] for i in b.indices]) for b in buckets]}
    report = Report(NAME, CLAIM, quick=quick, setup=(
        f"Dev set: {source}, {len(pairs)} pairs, bucketed by source length in words (split on spaces; "
        f"punctuation stays on its word). Runs: "
        + "; ".join(f"{label} (`{m['run']}`, {m['decoding']}, checkpoint best)" for label, m in decoded.items())
        + ". Corpus BLEU and chrF per bucket (sacrebleu, 13a, detokenised), the same scorer as `seqlab evaluate`; "
          "each model's translations are in `hypotheses/RUN.txt`."
        + (f" Quick: two 1-layer LSTMs, {s['hidden']} units, trained on {s['n']} pairs for {s['steps']} steps."
           if quick else "")))
    report.table("Sentences per bucket", ["source words", "sentences"], [[b.label, len(b.indices)] for b in buckets])
    report.table("BLEU and chrF per bucket", ["model", "source words", "sentences", "BLEU", "chrF"],
                 [[label, b.label, len(b.indices), sc["bleu"][k], sc["chrf"][k]]
                  for label, sc in scores.items() for k, b in enumerate(buckets)])
    report.table("Whole dev set", ["model", "decoding", "BLEU", "chrF", "relative BLEU drop, shortest to longest"],
                 [[label, m["decoding"], m["dev_bleu"], m["dev_chrf"], relative_drop(scores[label]["bleu"])]
                  for label, m in decoded.items()])
    labels = [b.label for b in buckets]
    positions = list(range(len(buckets)))
    fig = curves({"BLEU": {label: (positions, sc["bleu"]) for label, sc in scores.items()},
                  "chrF": {label: (positions, sc["chrf"]) for label, sc in scores.items()}},
                 xlabel="source length (words)", ylabel="score", sharey=False)
    for ax in fig.axes:
        ax.set_xticks(positions, labels=labels)
    report.figure(fig, "bleu_by_length.png", "Corpus BLEU and chrF per source-length bucket, one line per model")
    _decide(report, decoded, scores, buckets)
    report.numbers = {"machine": machine(), **s, "data": source, "sentences": len(pairs),
                      "buckets": {b.label: len(b.indices) for b in buckets},
                      "models": {label: {k: v for k, v in m.items() if k != "hypotheses"} | scores[label]
                                 for label, m in decoded.items()}}
    return report


def _change(drop: float) -> str:
    if math.isnan(drop):
        return "no relative change: 0 BLEU on the shortest"
    return f"{'down' if drop >= 0 else 'up'} {abs(drop):.0%}"


def _decide(report: Report, decoded: dict, scores: dict, buckets: list[Bucket]) -> None:
    drops = {label: relative_drop(sc["bleu"]) for label, sc in scores.items()}
    fixed = [label for label in decoded if decoded[label]["fixed_context"]]
    attention = [label for label in decoded if not decoded[label]["fixed_context"]]
    first, last = buckets[0].label, buckets[-1].label
    facts = "; ".join(f"{label}: BLEU {scores[label]['bleu'][0]:.2f} on {first} words, "
                      f"{scores[label]['bleu'][-1]:.2f} on {last} ({_change(drops[label])})"
                      for label in decoded)
    if any(math.isnan(drops[label]) for label in decoded):
        report.decide("depends", facts + f". A model scores 0 BLEU on {first} words, so its drop is undefined.")
        return
    beats = [(f, a) for f in fixed for a in attention if drops[f] > drops[a]]
    if len(beats) == len(fixed) * len(attention):
        report.decide("supported", facts + ". The fixed-context model loses the largest share.")
    elif beats:
        report.decide("depends", facts + ". The fixed-context model loses more than "
                      + ", ".join(sorted({a for _, a in beats})) + " only.")
    else:
        report.decide("not supported", facts + ". The fixed-context model does not lose the largest share.")
