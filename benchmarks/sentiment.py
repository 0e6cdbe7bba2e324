"""Sentiment on real movie-review snippets: a seqlab classifier beside bag-of-words logistic regression.

Data: ``movie-review-sentiment/all.tsv`` (header ``text<TAB>score``, score in [-4, 4], the mean of
human ratings; positive is score > 0), the VADER ground truth of Hutto & Gilbert (2014), MIT.
Nothing of it is in the repository. This script

1. splits it, seeded, into test (10%), dev (10% of the rest) and train (the rest), written as TSV
   with the original header into ``--split-dir`` (outside the repository, e.g. ``runs/``);
2. fits the baseline on train: word counts (lowercased words, unigrams, or unigrams and bigrams)
   and L2-regularised logistic regression (scikit-learn), with C chosen on dev;
3. trains the seqlab config (default ``configs/classification/movie-sentiment.yaml``, whose data
   paths name the split folder) with ``seqlab train`` in-process, picks its best checkpoint by dev
   accuracy, and evaluates it on test;
4. prints a table and writes JSON (machine, CPU capability, settings, accuracy and macro-F1 on the
   same test split, wall time of each system).

    pip install -e '.[bench]'
    python benchmarks/sentiment.py --data ../shared/data/movie-review-sentiment/all.tsv \\
        --split-dir runs/movie-sentiment-split --out results/sentiment.json
    python benchmarks/sentiment.py --data ... --split-only      # just write the split

Every figure is on the same held-out test split; neither system sees it before its final score.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine_info, print_table, report  # noqa: E402

SEED = 20261202
THRESHOLD = 0.0


def make_split(data: Path, out_dir: Path, *, seed: int = SEED, test_fraction: float = 0.1,
               dev_fraction: float = 0.1) -> dict[str, Path]:
    """Write ``train.tsv``, ``dev.tsv`` and ``test.tsv`` (same header as ``data``) into ``out_dir``."""
    lines = data.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [ln for ln in lines[1:] if ln.strip()]
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_test = round(test_fraction * len(rows))
    n_dev = round(dev_fraction * (len(rows) - n_test))
    parts = {"test": order[:n_test], "dev": order[n_test:n_test + n_dev], "train": order[n_test + n_dev:]}
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, idx in parts.items():
        paths[name] = out_dir / f"{name}.tsv"
        paths[name].write_text("\n".join([header, *(rows[i] for i in sorted(idx))]) + "\n", encoding="utf-8")
    return paths


def _read(path: Path) -> tuple[list[str], list[int]]:
    from seqlab.data.labelled import read_labelled

    data = read_labelled(path, label_column="score", threshold=THRESHOLD)
    return data.texts, [int(lab == "positive") for lab in data.labels]


def _scores(gold: list[int], predicted: list[int]) -> dict:
    from seqlab.evaluation.classification import accuracy, confusion_matrix, macro_f1

    m = confusion_matrix(gold, predicted, 2)
    return {"accuracy": accuracy(m), "macro_f1": macro_f1(m), "confusion": m.tolist()}


def logistic_regression(paths: dict[str, Path], *, ngrams: int) -> dict:
    """Bag-of-words (lowercased word counts, n-grams up to ``ngrams``) logistic regression, C tuned on dev."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    (x_train, y_train), (x_dev, y_dev), (x_test, y_test) = (_read(paths[s]) for s in ("train", "dev", "test"))
    vectorizer = CountVectorizer(lowercase=True, ngram_range=(1, ngrams), token_pattern=r"(?u)\b\w[\w']*\b")
    train_m = vectorizer.fit_transform(x_train)
    dev_m, test_m = vectorizer.transform(x_dev), vectorizer.transform(x_test)
    best = None
    for C in (0.03, 0.1, 0.3, 1.0, 3.0, 10.0):
        model = LogisticRegression(C=C, solver="liblinear", max_iter=1000).fit(train_m, y_train)
        dev_accuracy = float((model.predict(dev_m) == y_dev).mean())
        if best is None or dev_accuracy > best[0]:
            best = (dev_accuracy, C, model)
    dev_accuracy, C, model = best
    result = _scores(y_test, model.predict(test_m).tolist())
    return {"system": f"bag-of-words LR ({'unigrams' if ngrams == 1 else f'1-{ngrams}-grams'})",
            "dev_accuracy": dev_accuracy, "settings": f"C={C}, {len(vectorizer.vocabulary_)} features",
            "seconds": time.perf_counter() - start, **result}


def seqlab_classifier(paths: dict[str, Path], config: Path, run_dir: Path, overrides: list[str]) -> dict:
    """Train ``config`` with the seqlab trainer and score its best (dev accuracy) checkpoint on test."""
    from seqlab.api import Classifier
    from seqlab.config import load_config
    from seqlab.training.trainer import train

    cfg = load_config(config, [f"data.train={paths['train']}", f"data.dev={paths['dev']}", *overrides])
    start = time.perf_counter()
    train(cfg, run_dir, progress=False)
    seconds = time.perf_counter() - start
    classifier = Classifier.load(run_dir)
    x_test, y_test = _read(paths["test"])
    predicted = classifier.probabilities(x_test).argmax(-1).tolist()
    dev = classifier.evaluate(paths["dev"])
    m = cfg.model
    return {"system": f"seqlab {m.type} ({m.pooling} pooling)", "dev_accuracy": dev.accuracy,
            "settings": " ".join(overrides) or config.name, "seconds": seconds, **_scores(y_test, predicted)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="all.tsv of movie-review-sentiment")
    p.add_argument("--split-dir", type=Path, default=Path("runs/movie-sentiment-split"))
    p.add_argument("--split-only", action="store_true", help="write the split and stop")
    p.add_argument("--config", type=Path, default=Path("configs/classification/movie-sentiment.yaml"))
    p.add_argument("--run-dir", type=Path, default=Path("runs/movie-sentiment"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, help="write the JSON report here")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides of the seqlab config")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    paths = make_split(args.data, args.split_dir)
    sizes = {k: sum(1 for _ in v.open(encoding="utf-8")) - 1 for k, v in paths.items()}
    print(f"split of {args.data} (seed {SEED}): {sizes} in {args.split_dir}")
    if args.split_only:
        return
    rows = [logistic_regression(paths, ngrams=1), logistic_regression(paths, ngrams=2),
            seqlab_classifier(paths, args.config, args.run_dir, args.overrides)]
    print_table(rows, [("system", "system"), ("settings", "settings"), ("dev_accuracy", "dev acc"),
                       ("accuracy", "test acc"), ("macro_f1", "test macro-F1"), ("seconds", "seconds")])
    info = machine_info()
    print(f"CPU: {info['cpu_model']} ({info['cpu_capability']}), {args.threads} thread(s)")
    settings = {"data": str(args.data), "seed": SEED, "threshold": THRESHOLD, "split_sizes": sizes,
                "config": str(args.config), "overrides": args.overrides, "threads": args.threads}
    report("sentiment", args.out, settings, rows)


if __name__ == "__main__":
    main()
