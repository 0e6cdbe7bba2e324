"""Word2Vec skip-gram: seqlab's training speed and vector quality beside gensim's, same corpus, same settings.

Both train skip-gram with negative sampling on the same tokens (seqlab's ``read_sentences``:
lowercased runs of letters, one sentence a line) with word2vec's defaults: d 100, window 5 drawn
per centre from 1..5, min_count 5, 5 negatives from count^0.75, subsampling t = 1e-3 (word2vec's
keep formula in both), SGD with alpha 0.025 falling linearly to 0.0001, 5 epochs, 2 threads.
seqlab trains through its one training loop (``seqlab embed train``), in batches of 4096 pairs
(lr = 0.025 x 4096 on the per-pair mean); gensim (``Word2Vec(sg=1, hs=0, negative=5, workers=2)``)
updates pair by pair in its Cython loop with 2 worker threads.

Speed is corpus words (every token, before min_count, as gensim counts "raw words") times epochs
over the seconds of the training loop: gensim's ``train()`` after ``build_vocab()``; seqlab's loop
(its per-epoch pair drawing included; reading, vocabulary and the final checkpoint excluded).
gensim runs before and after seqlab; the ratio is against the mean of its two runs.

Quality, for both models' vectors read through ``KeyedVectors`` (seqlab's via its word2vec text
export, ``load_word2vec_format``): Spearman correlation with WordSim-353 and accuracy on the
Google analogy questions, the two files that ship with gensim's test data
(``evaluate_word_pairs``, ``evaluate_word_analogies``; pairs and questions with a word outside the
vocabulary are skipped, and the share skipped is reported).

    python benchmarks/word2vec_speed.py --data ../shared/data/shakespeare/train.txt --out results/word2vec.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# OpenMP threads that wait passively (sleep) instead of spinning: on a machine shared with other
# busy processes, spinning torch threads wait at every parallel region for a descheduled partner
# (measured here: 2-thread skip-gram steps 5x slower, 5x the CPU time). Must be set before torch
# loads; --omp-wait-policy active restores OpenMP's default behaviour.
if "--omp-wait-policy" in sys.argv:
    os.environ["OMP_WAIT_POLICY"] = sys.argv[sys.argv.index("--omp-wait-policy") + 1].upper()
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from _timing import machine_info, print_table, write_json  # noqa: E402

from seqlab.config import config_from_dict  # noqa: E402
from seqlab.tasks.word2vec import Word2VecTask, load_word_vectors, read_sentences  # noqa: E402
from seqlab.training.trainer import train  # noqa: E402

SETTINGS = {"dim": 100, "window": 5, "min_count": 5, "negatives": 5, "subsample": 1e-3, "alpha": 0.025,
            "min_alpha": 0.0001, "batch_pairs": 4096, "seed": 1}
PROBES = ("king", "love", "night", "sword")


def seqlab_config(data: str, epochs: int, threads: int, max_steps: int | None = None) -> dict:
    s = SETTINGS
    return {
        "name": "word2vec-benchmark", "task": "word2vec",
        "data": {"train": data, "min_count": s["min_count"], "window": s["window"], "dynamic_window": True,
                 "subsample": s["subsample"], "batch_pairs": s["batch_pairs"]},
        "model": {"type": "word2vec", "dim": s["dim"], "negatives": s["negatives"]},
        "train": {"seed": s["seed"], "optimizer": "sgd", "precision": "fp32", "lr": s["alpha"] * s["batch_pairs"],
                  "schedule": "linear", "warmup_steps": 0, "min_lr_ratio": s["min_alpha"] / s["alpha"],
                  "clip_norm": None, "max_steps": max_steps or 1, "max_epochs": epochs, "eval_every": 10**9,
                  "log_every": 100, "threads": threads},
    }


def run_seqlab(data: str, epochs: int, threads: int, workdir: Path) -> tuple[dict, Path]:
    probe = Word2VecTask(config_from_dict(seqlab_config(data, epochs, threads)))
    steps = epochs * len(probe.prepare(workdir / "probe", resume=False).batches)  # the linear schedule's total
    run = workdir / "seqlab"
    t0 = time.perf_counter()
    result = train(config_from_dict(seqlab_config(data, epochs, threads, steps)), run, progress=False,
                   echo=lambda *_: None)
    total = time.perf_counter() - t0
    state = json.loads((run / "checkpoints/last/trainer.json").read_text())
    loop_seconds = state["trainer_state"]["train_seconds"]
    return {"steps": result.step, "epochs_done": result.epoch, "loop_seconds": loop_seconds,
            "train_call_seconds": total}, run


def run_gensim(sentences: list[list[str]], epochs: int, threads: int) -> tuple[dict, object]:
    from gensim.models import Word2Vec

    s = SETTINGS
    model = Word2Vec(vector_size=s["dim"], window=s["window"], min_count=s["min_count"], sg=1, hs=0,
                     negative=s["negatives"], ns_exponent=0.75, sample=s["subsample"], alpha=s["alpha"],
                     min_alpha=s["min_alpha"], workers=threads, seed=s["seed"])
    t0 = time.perf_counter()
    model.build_vocab(sentences)
    t1 = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), epochs=epochs)
    t2 = time.perf_counter()
    return {"vocab_seconds": t1 - t0, "loop_seconds": t2 - t1}, model.wv


def quality(kv) -> dict:
    from gensim.test.utils import datapath

    pearson, spearman, oov = kv.evaluate_word_pairs(datapath("wordsim353.tsv"))
    accuracy, sections = kv.evaluate_word_analogies(datapath("questions-words.txt"))
    total = next(sec for sec in sections if sec["section"] == "Total accuracy")
    answered = len(total["correct"]) + len(total["incorrect"])
    return {"wordsim353_spearman": float(spearman.statistic), "wordsim353_pearson": float(pearson.statistic),
            "wordsim353_oov_percent": float(oov), "analogy_accuracy": float(accuracy),
            "analogy_questions_answered": answered,
            "neighbours": {w: [n for n, _ in kv.most_similar(w, topn=5)] for w in PROBES if w in kv.key_to_index}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/shakespeare/train.txt")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write settings, machine and results as JSON")
    parser.add_argument("--omp-wait-policy", choices=["passive", "active"], default="passive",
                        help="OMP_WAIT_POLICY for torch's threads (default passive, see the top of this file)")
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)  # gensim's progress lines
    torch.set_num_threads(args.threads)
    from gensim.models import KeyedVectors

    load_before = os.getloadavg()
    sentences = read_sentences(str(Path(args.data).resolve()), lowercase=True)
    n_words = sum(len(s) for s in sentences)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        timing, gensim_a = run_gensim(sentences, args.epochs, args.threads)
        rows.append({"system": "gensim (before)", **timing})
        timing, run = run_seqlab(str(Path(args.data).resolve()), args.epochs, args.threads, workdir)
        rows.append({"system": "seqlab", **timing})
        timing, gensim_b = run_gensim(sentences, args.epochs, args.threads)
        rows.append({"system": "gensim (after)", **timing})
        load_word_vectors(run).save(workdir / "seqlab.txt")
        seqlab_kv = KeyedVectors.load_word2vec_format(str(workdir / "seqlab.txt"))
    for row in rows:
        row["words_per_s"] = n_words * args.epochs / row["loop_seconds"]
    gensim_rate = (rows[0]["words_per_s"] + rows[2]["words_per_s"]) / 2
    for row in rows:
        row["speed_vs_gensim"] = row["words_per_s"] / gensim_rate
    rows[0].update(quality(gensim_a))
    rows[1].update(quality(seqlab_kv))
    rows[2].update(quality(gensim_b))
    print(f"{args.data}: {n_words} words, {len(sentences)} sentences, {args.epochs} epochs, {args.threads} threads")
    print_table(rows, [("system", "system"), ("loop_seconds", "seconds"), ("words_per_s", "words/s"),
                       ("speed_vs_gensim", "x gensim"), ("wordsim353_spearman", "WS-353 rho"),
                       ("analogy_accuracy", "analogy acc"), ("analogy_questions_answered", "questions")])
    for row in rows:
        print(row["system"], json.dumps(row["neighbours"], ensure_ascii=False))
    if args.out is not None:
        import gensim

        payload = {"benchmark": "word2vec_speed",
                   "machine": {**machine_info(), "gensim": gensim.__version__,
                               "load_average_1_5_15min_before": load_before,
                               "load_average_1_5_15min_after": os.getloadavg()},
                   "settings": {**SETTINGS, "epochs": args.epochs, "threads": args.threads,
                                "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
                                "data": args.data, "corpus_words": n_words, "sentences": len(sentences)},
                   "rows": rows}
        write_json(args.out, payload)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
