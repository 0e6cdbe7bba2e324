"""The long-sentences study: bucketing by source length, the verdict's arithmetic, the study end to end."""

import json
import math

import pytest

from seqlab.cli import main
from seqlab.data.synthetic import builtin_split
from seqlab.errors import SeqlabError
from seqlab.evaluation.metrics import bleu
from seqlab.studies import long_sentences
from seqlab.studies.long_sentences import length_buckets, relative_drop
from seqlab.studies.report import Report
from seqlab.studies.tasks import write_tsv


def test_buckets_hold_every_sentence_once_by_word_count():
    sources = ["a", "a b c d", "a b c d e", "a b c d e f", "a b c d e f g", "one two three four five six seven eight",
               " ".join("w" * 1 for _ in range(30)), "x y"]
    buckets = length_buckets(sources, (4, 6))
    assert [b.label for b in buckets] == ["1-4", "5-6", "7+"]
    assert [b.indices for b in buckets] == [[0, 1, 7], [2, 3], [4, 5, 6]]
    assert sorted(i for b in buckets for i in b.indices) == list(range(len(sources)))


def test_single_length_buckets_and_boundaries():
    lengths = [5, 6, 7, 8, 12, 3]
    buckets = length_buckets([" ".join(["w"] * n) for n in lengths], (5, 6, 7))
    assert [b.label for b in buckets] == ["1-5", "6", "7", "8+"]
    assert [len(b.indices) for b in buckets] == [2, 1, 1, 2]
    for b in buckets:  # every sentence lies within its bucket's bounds
        assert all(b.low <= lengths[i] and (b.high is None or lengths[i] <= b.high) for i in b.indices)


def test_bucket_edges_must_increase():
    with pytest.raises(ValueError, match="increasing"):
        length_buckets(["a"], (6, 4))
    with pytest.raises(ValueError, match="increasing"):
        length_buckets(["a"], ())


def _verdict(fixed: list[float], attention: list[float]) -> str:
    report = Report("t", "c.", "s")
    decoded = {"fixed": {"fixed_context": True}, "attention": {"fixed_context": False}}
    scores = {"fixed": {"bleu": fixed}, "attention": {"bleu": attention}}
    long_sentences._decide(report, decoded, scores, length_buckets(["a", "a b c"], (2,)))
    return report.verdict


def test_verdict_compares_relative_drops():
    assert relative_drop([20.0, 15.0, 5.0]) == pytest.approx(0.75)
    assert math.isnan(relative_drop([0.0, 3.0]))
    assert _verdict([20.0, 5.0], [30.0, 27.0]) == "supported"  # fixed loses 75%, attention 10%
    assert _verdict([20.0, 18.0], [30.0, 15.0]) == "not supported"  # a higher BLEU is not what decides
    assert _verdict([0.0, 1.0], [30.0, 15.0]) == "depends"


def test_quick_study_reports_every_model_in_every_bucket(tmp_path, monkeypatch):
    from seqlab.studies import run_study

    monkeypatch.setattr(long_sentences, "settings",
                        lambda quick: {"n": 300, "steps": 20, "hidden": 16, "dev": 80, "edges": (5, 6, 7)})
    report = run_study("long-sentences", tmp_path, quick=True)
    record = json.loads((tmp_path / "results.json").read_text())
    models = record["numbers"]["models"]
    assert set(models) == {"LSTM, fixed context", "LSTM, additive attention"}
    assert [m["fixed_context"] for m in models.values()] == [True, False]
    buckets = record["numbers"]["buckets"]
    assert list(buckets) == ["1-5", "6", "7", "8+"] and sum(buckets.values()) == 80
    *_, rows = next(t for t in report.tables if t[0] == "BLEU and chrF per bucket")
    assert [(r[0], r[1]) for r in rows] == [(m, b) for m in models for b in buckets]
    assert all(len(m["bleu"]) == len(m["chrf"]) == len(buckets) for m in models.values())
    assert all(isinstance(m["dev_bleu"], float) for m in models.values())  # the whole set's, beside the buckets' scores
    assert record["verdict"] == report.verdict and (tmp_path / "bleu_by_length.png").is_file()
    # each bucket's BLEU is the corpus BLEU of that bucket's translations, as written
    pairs = builtin_split("dev")[:80]
    hyps = (tmp_path / models["LSTM, fixed context"]["hypotheses_file"]).read_text().splitlines()
    longest = [i for i, (src, _) in enumerate(pairs) if len(src.split()) >= 8]
    assert len(hyps) == 80 and len(longest) == buckets["8+"]
    assert models["LSTM, fixed context"]["bleu"][-1] == pytest.approx(
        bleu([hyps[i] for i in longest], [pairs[i][1] for i in longest]))

    # the same runs measured as given runs on a given data set; two fixed-context runs are refused
    fixed, attention = (models[m]["run"] for m in models)
    data = write_tsv(tmp_path / "dev.tsv", builtin_split("dev")[100:160])
    given = run_study("long-sentences", tmp_path / "given", runs=[attention, fixed], data=str(data))
    assert given.numbers["sentences"] == 60 and sum(given.numbers["buckets"].values()) == 60
    assert "12+" not in given.numbers["buckets"]  # the grammar has no sentence that long: the empty bucket is left out
    assert list(given.numbers["models"]) == ["LSTM, additive attention", "LSTM, fixed context"]
    with pytest.raises(SeqlabError, match="compares a fixed-context model"):
        run_study("long-sentences", tmp_path / "same", runs=[fixed, fixed], data=str(data))


def test_missing_runs_and_data_are_named_with_the_command_that_makes_them(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["study", "long-sentences", "--out", "out", "--runs", "runs/tatoeba-lstm", "nowhere"]) == 2
    err = capsys.readouterr().err
    assert "runs/tatoeba-lstm" in err and "nowhere" in err and "../shared/data/tatoeba-en-pt/dev.tsv" in err
    assert main(["study", "long-sentences", "--quick", "--out", "out", "--data", "dev.tsv"]) == 2
    assert "leave out --runs and --data" in capsys.readouterr().err
    assert main(["study", "positions", "--out", "out", "--runs", "r"]) == 2
    assert "study positions takes no --runs (only long-sentences does)" in capsys.readouterr().err


def test_study_all_skips_a_study_whose_runs_are_missing(tmp_path, monkeypatch, capsys):
    from seqlab import studies

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(studies, "STUDIES", {"long-sentences": "seqlab.studies.long_sentences"})
    assert main(["study", "all", "--out", "out"]) == 0
    assert "long-sentences: skipped: study long-sentences: no trained run at" in capsys.readouterr().out
    index = (tmp_path / "out" / "index.md").read_text()
    assert "| long-sentences | skipped |" in index and "0 of 1 studies" in index
