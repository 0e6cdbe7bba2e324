"""The ``seqlab`` command line end to end, in-process via ``seqlab.cli.main`` (one subprocess test
proves the installed console script), and the matrix of bad inputs: exit status 2 and a message
that names the file and line, the key or the run folder at fault.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import seqlab
from seqlab.cli import main
from seqlab.data.readers import read_parallel
from seqlab.data.synthetic import generate_pairs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
INPUT_LINES = ["Is my brother tall?", "", "Maria is tired.", " \t "]


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------------------------
# train


def test_train_writes_the_run_folder_and_prints_final_dev_metrics(tiny_run):
    result = tiny_run.result
    assert result.code == 0
    for name in ("config.yaml", "tokenizer.json", "metrics.jsonl", "checkpoints/best/meta.json",
                 "checkpoints/last/model.safetensors"):
        assert (tiny_run.path / name).is_file(), name
    final = json.loads(result.out.strip().splitlines()[-1])
    assert final["step"] == 10
    assert 0.0 <= final["dev_bleu"] <= 100.0 and 0.0 <= final["dev_chrf"] <= 100.0
    assert final["dev_ppl"] == pytest.approx(math.exp(final["dev_loss"]), rel=1e-3)
    assert "stopped at step 10 (max_steps)" in result.out
    evals = [json.loads(ln) for ln in (tiny_run.path / "metrics.jsonl").read_text().splitlines() if "dev_bleu" in ln]
    assert [r["step"] for r in evals] == [5, 10]


def test_train_refuses_an_existing_run_folder_and_leaves_it_unchanged(capsys, tiny_run, copy_run):
    run = copy_run(tiny_run)
    before = _digest(run)
    code, _, err = _run(capsys, "train", tiny_run.config, "--out", run, "--quiet")
    assert code == 2
    assert f"error: {run} already holds a trained run; use --resume" in err
    assert _digest(run) == before


def test_resume_continues_from_the_last_checkpoint(capsys, tiny_run, copy_run):
    run = copy_run(tiny_run)
    code, out, _ = _run(capsys, "train", "--resume", run, "train.max_steps=12", "--quiet")
    assert code == 0, out
    assert f"resumed {run} at step 10" in out
    assert json.loads(out.strip().splitlines()[-1])["step"] == 12


def test_resume_needs_a_checkpoint(capsys, tmp_path, tiny_run):
    run = tmp_path / "fresh"
    run.mkdir()
    shutil.copy(tiny_run.path / "config.yaml", run / "config.yaml")
    code, _, err = _run(capsys, "train", "--resume", run)
    assert code == 2
    assert f"error: {run}: nothing to resume, no checkpoints/last" in err
    code, _, err = _run(capsys, "train", "--resume", tmp_path / "absent")
    assert code == 2 and "absent: no such run folder to resume" in err


def test_train_skips_malformed_lines_with_a_warning_that_counts_them(capsys, tmp_path, tiny_corpus,
                                                                    tiny_transformer_config):
    lines = [f"{s}\t{t}" for s, t in tiny_corpus.train_pairs]
    lines[2] = "no tab on this line"
    lines[4] = "\tan empty source"
    train = tmp_path / "noisy.tsv"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = tiny_transformer_config(train, tiny_corpus.dev, on_error="skip")
    code, out, err = _run(capsys, "train", config, "--out", tmp_path / "run", "--quiet",
                          "train.max_steps=3", "train.eval_every=3")
    assert code == 0, err
    assert f"warning: {train}: skipped 2 malformed line(s) (lines 3, 5)" in err
    assert "68 training pairs" in out


def test_train_stops_at_a_malformed_line_and_writes_no_checkpoint(capsys, tmp_path, tiny_corpus,
                                                                  tiny_transformer_config):
    lines = [f"{s}\t{t}" for s, t in tiny_corpus.train_pairs]
    lines[2] = "no tab on this line"
    train = tmp_path / "bad.tsv"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = tiny_transformer_config(train, tiny_corpus.dev)
    code, _, err = _run(capsys, "train", config, "--out", tmp_path / "run", "--quiet")
    assert code == 2
    assert f"error: {train}:3: no tab found; expected 'source<TAB>target'" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("extra, phrase", [
    (["model.layer=2"], "key 'model.layer': unknown key; valid keys here are: attention_dropout, d_model"),
    (["model.type=lstmm"], "key 'model.type': unknown model type 'lstmm'; valid: transformer, rnn, lstm, gru"),
    (["train.warmup_steps=many"], "key 'train.warmup_steps': expected an integer, got 'many'"),
])
def test_train_rejects_a_bad_config_naming_the_key(capsys, tmp_path, tiny_run, extra, phrase):
    code, _, err = _run(capsys, "train", tiny_run.config, "--out", tmp_path / "run", *extra)
    assert code == 2
    assert err.startswith(f"error: {tiny_run.config}: ") and phrase in err
    assert not (tmp_path / "run").exists()


def test_train_rejects_schedule_errors_before_writing_the_run_folder(capsys, tmp_path, tiny_run):
    code, _, err = _run(capsys, "train", tiny_run.config, "--out", tmp_path / "run", "train.warmup_steps=20")
    assert code == 2 and "key 'train.warmup_steps'" in err
    assert not (tmp_path / "run").exists()


def test_train_names_the_line_of_invalid_yaml(capsys, tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("name: x\nmodel: {layers: 1\ntrain: {}\n", encoding="utf-8")
    code, _, err = _run(capsys, "train", config, "--out", tmp_path / "run")
    assert code == 2 and f"error: {config}:3: invalid YAML" in err


# --------------------------------------------------------------------------------------------
# translate


@pytest.fixture
def input_file(tmp_path) -> Path:
    path = tmp_path / "input.txt"
    path.write_text("\n".join(INPUT_LINES) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("run_name", ["tiny_run", "tiny_gru_run"])
def test_translate_input_file_gives_one_line_per_input_line(capsys, request, input_file, run_name):
    run = request.getfixturevalue(run_name).path
    code, out, _ = _run(capsys, "translate", run, "--input", input_file)
    assert code == 0
    lines = out.split("\n")
    assert lines[-1] == "" and len(lines) == len(INPUT_LINES) + 1
    # a blank or whitespace-only input line stays a blank output line; the others match the Python
    # API (beam 2 from config)
    assert lines[:-1] == seqlab.load(run).translate(INPUT_LINES, beam=2)
    assert lines[1] == lines[3] == ""


def test_translate_bf16_without_native_bf16_runs_after_one_warning(capsys, cpu_bf16, tiny_run, input_file):
    cpu_bf16(False)  # an AVX2-only CPU
    code, out, err = _run(capsys, "translate", tiny_run.path, "--input", input_file, "--precision", "bf16")
    assert code == 0 and len(out.splitlines()) == len(INPUT_LINES)
    assert err.count("warning:") == 1 and "no native bf16" in err and "much slower than fp32" in err
    code, _, err = _run(capsys, "translate", tiny_run.path, "--input", input_file, "--precision", "auto")
    assert code == 0 and err == ""


def test_translate_reads_stdin_when_it_is_not_a_terminal(capsys, monkeypatch, tiny_run, input_file):
    code, from_file, _ = _run(capsys, "translate", tiny_run.path, "--input", input_file)
    assert code == 0
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(input_file.read_bytes()), encoding="utf-8"))
    code, from_stdin, _ = _run(capsys, "translate", tiny_run.path)
    assert code == 0 and from_stdin == from_file


def test_translate_reports_non_utf8_stdin_with_its_line(capsys, monkeypatch, tiny_run):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Maria is tired.\nbad \xff byte\n")))
    code, out, err = _run(capsys, "translate", tiny_run.path)
    assert code == 2 and out == ""
    assert "error: <stdin>: line 2: not UTF-8 text" in err


def test_translate_names_the_line_of_a_too_long_sentence(capsys, tmp_path, tiny_run):
    path = tmp_path / "long.txt"
    path.write_text("Maria is tired.\n" + " ".join(["Maria"] * 70) + "\nIs my brother tall?\n", encoding="utf-8")
    code, _, err = _run(capsys, "translate", tiny_run.path, "--input", path)
    assert code == 2
    assert f"error: {path}: line 2: 70 tokens, more than the model's limit of 63" in err
    code, out, _ = _run(capsys, "translate", tiny_run.path, "--input", path, "--truncate")
    assert code == 0 and len(out.splitlines()) == 3


def test_translate_names_the_line_of_non_utf8_input(capsys, tmp_path, tiny_run):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Maria is tired.\nJoão".encode("latin-1") + b"\n")
    code, _, err = _run(capsys, "translate", tiny_run.path, "--input", path)
    assert code == 2 and f"error: {path}:2: invalid UTF-8 byte 0xe3" in err


def test_translate_n_best_prints_n_scored_candidates(capsys, tiny_run, input_file):
    code, out, _ = _run(capsys, "translate", tiny_run.path, "--input", input_file, "--beam", "3", "--n-best", "3")
    assert code == 0
    rows = out.splitlines()
    assert len(rows) == len(INPUT_LINES)
    best = seqlab.load(tiny_run.path).translate(INPUT_LINES[0], beam=3)
    fields = rows[0].split("\t")
    assert len(fields) == 6 and fields[0] == best
    scores = [float(s) for s in fields[1::2]]
    assert scores == sorted(scores, reverse=True)


def test_translate_n_best_needs_a_large_enough_beam(capsys, tiny_run, input_file):
    code, _, err = _run(capsys, "translate", tiny_run.path, "--input", input_file, "--beam", "2", "--n-best", "3")
    assert code == 2 and "n_best=3 needs decode.strategy: beam with a beam of at least 3" in err


# --------------------------------------------------------------------------------------------
# evaluate


@pytest.mark.parametrize("run_name", ["tiny_run", "tiny_gru_run"])
def test_evaluate_prints_json_scores(capsys, request, tmp_path, tiny_corpus, run_name):
    run = request.getfixturevalue(run_name).path
    hyps = tmp_path / "hyps.txt"
    code, out, _ = _run(capsys, "evaluate", run, "--data", tiny_corpus.dev, "--beam", "2", "--hypotheses", hyps)
    assert code == 0
    report = json.loads(out)
    assert report["data"] == str(tiny_corpus.dev) and report["beam"] == 2
    assert report["sentences"] == len(tiny_corpus.dev_pairs)
    assert 0.0 <= report["bleu"] <= 100.0 and 0.0 <= report["chrf"] <= 100.0
    assert 1.0 < report["perplexity"] < math.inf
    expected = seqlab.load(run).evaluate(tiny_corpus.dev_pairs, beam=2)
    assert report["bleu"] == pytest.approx(expected.bleu, abs=1e-4)
    assert hyps.read_text(encoding="utf-8").splitlines() == expected.hypotheses


def test_evaluate_reads_two_aligned_text_files(capsys, tmp_path, tiny_run, tiny_corpus):
    src, tgt = tmp_path / "dev.en", tmp_path / "dev.pt"
    src.write_text("".join(s + "\n" for s, _ in tiny_corpus.dev_pairs), encoding="utf-8")
    tgt.write_text("".join(t + "\n" for _, t in tiny_corpus.dev_pairs), encoding="utf-8")
    code, out, _ = _run(capsys, "evaluate", tiny_run.path, "--data", src, tgt, "--beam", "1")
    _, tsv_out, _ = _run(capsys, "evaluate", tiny_run.path, "--data", tiny_corpus.dev, "--beam", "1")
    assert code == 0
    assert json.loads(out)["bleu"] == json.loads(tsv_out)["bleu"]


GOOD = "Maria is tired.\tMaria está cansada.\n"


@pytest.mark.parametrize("content, where, phrase", [
    ((GOOD * 2 + "Maria is tired.\n").encode(), ":3", "no tab found; expected 'source<TAB>target'"),
    ((GOOD + "Maria is tired.\t  \n").encode(), ":2", "empty target (column 2)"),
    (GOOD.encode() + b"Jo\xe3o\tJo\xe3o\n", ":2", "invalid UTF-8 byte 0xe3"),
    (b"", "", "no sentence pairs found"),
])
def test_evaluate_names_the_file_and_line_of_bad_data(capsys, tmp_path, tiny_run, content, where, phrase):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    code, out, err = _run(capsys, "evaluate", tiny_run.path, "--data", path)
    assert code == 2 and out == ""
    assert f"error: {path}{where}: {phrase}" in err


def test_evaluate_rejects_text_files_of_different_lengths(capsys, tmp_path, tiny_run):
    src, tgt = tmp_path / "a.en", tmp_path / "a.pt"
    src.write_text("one\ntwo\nthree\n", encoding="utf-8")
    tgt.write_text("um\ndois\n", encoding="utf-8")
    code, _, err = _run(capsys, "evaluate", tiny_run.path, "--data", src, tgt)
    assert code == 2 and f"error: {src}: has 3 lines but {tgt} has 2" in err


# --------------------------------------------------------------------------------------------
# run folders that cannot be loaded


def test_missing_run_folder(capsys, tmp_path):
    code, _, err = _run(capsys, "translate", tmp_path / "nope", "--input", "x.txt")
    assert code == 2 and f"error: {tmp_path / 'nope'}: no such run folder" in err


@pytest.mark.parametrize("key, value, phrase", [
    ("run_format", "seqlab-run/0", "run folder format 'seqlab-run/0', this seqlab reads 'seqlab-run/1'"),
    ("format", "seqlab-checkpoint/0", "found format 'seqlab-checkpoint/0', expected format"),
])
def test_run_folder_of_another_format_version(capsys, tiny_run, copy_run, input_file, key, value, phrase):
    run = copy_run(tiny_run)
    meta_path = run / "checkpoints" / "best" / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta[key] = value
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    code, _, err = _run(capsys, "translate", run, "--input", input_file)
    assert code == 2 and f"error: {meta_path}: {phrase}" in err


def test_run_folder_without_tokenizer(capsys, tiny_run, copy_run, input_file):
    run = copy_run(tiny_run)
    (run / "tokenizer.json").unlink()
    code, _, err = _run(capsys, "translate", run, "--input", input_file)
    assert code == 2 and f"error: {run / 'tokenizer.json'}: file not found" in err


# --------------------------------------------------------------------------------------------
# attention, plot, data


@pytest.mark.parametrize("run_name", ["tiny_run", "tiny_gru_run"])
def test_attention_writes_a_png(capsys, request, tmp_path, run_name):
    run = request.getfixturevalue(run_name).path
    out_path = tmp_path / "attn.png"
    code, out, _ = _run(capsys, "attention", run, "Is my brother tall?", "--out", out_path)
    assert code == 0
    assert out_path.read_bytes().startswith(PNG_MAGIC) and out_path.stat().st_size > 1000
    assert out.splitlines() == [seqlab.load(run).translate("Is my brother tall?", beam=1), f"wrote {out_path}"]


def test_plot_writes_a_png(capsys, tmp_path, tiny_run):
    out_path = tmp_path / "curves.png"
    code, _, _ = _run(capsys, "plot", tiny_run.path, "--out", out_path)
    assert code == 0 and out_path.read_bytes().startswith(PNG_MAGIC)
    code, _, err = _run(capsys, "plot", tmp_path, "--out", tmp_path / "x.png")
    assert code == 2 and "metrics.jsonl: no metrics log in this run folder" in err


def test_data_synthetic_writes_the_generated_pairs(capsys, tmp_path):
    path = tmp_path / "synthetic.tsv"
    code, out, _ = _run(capsys, "data", "synthetic", "--out", path, "--n", "20", "--seed", "3")
    assert code == 0 and out == f"wrote 20 pairs to {path}\n"
    assert read_parallel(path) == generate_pairs(20, seed=3)


def test_data_download_passes_its_arguments(capsys, monkeypatch, tmp_path):
    calls = []

    def fake_download(pair, out):
        calls.append((pair, out))
        return Path(out) / f"tatoeba.{pair}.tsv"

    monkeypatch.setattr("seqlab.data.download.download_tatoeba", fake_download)
    code, out, _ = _run(capsys, "data", "download", "tatoeba", "--pair", "en-es", "--out", tmp_path)
    assert code == 0
    assert calls == [("en-es", str(tmp_path))]
    assert out == f"wrote {tmp_path / 'tatoeba.en-es.tsv'}\n"


def test_the_installed_console_script(tmp_path):
    (script,) = entry_points(group="console_scripts", name="seqlab")
    assert script.value == "seqlab.cli:main"
    exe = shutil.which("seqlab")
    command = [exe] if exe else [sys.executable, "-m", "seqlab.cli"]
    done = subprocess.run(command + ["--version"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == f"seqlab {seqlab.__version__}"
    done = subprocess.run(command + ["translate"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "the following arguments are required: run" in done.stderr


def test_translate_keeps_blank_lines_at_the_end_from_a_file_as_from_stdin(capsys, monkeypatch, tiny_run, tmp_path):
    path = tmp_path / "tail.txt"
    path.write_text("Maria is tired.\n\n\n", encoding="utf-8")  # three lines, the last two blank
    code, from_file, _ = _run(capsys, "translate", tiny_run.path, "--input", path)
    assert code == 0 and from_file.split("\n")[1:] == ["", "", ""]  # 3 output lines, then the final newline
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes()), encoding="utf-8"))
    code, from_stdin, _ = _run(capsys, "translate", tiny_run.path)
    assert code == 0 and from_stdin == from_file


@pytest.mark.parametrize("argv", [["train", "cfg.yaml", "--nproc", "0"], ["serve", "runs/x", "--threads", "0"],
                                  ["study", "heads", "--out", "o", "--threads", "-2"],
                                  ["study", "heads", "--out", "o", "--threads", "two"]])
def test_process_and_thread_counts_must_be_whole_numbers_of_at_least_one(argv, capsys):
    with pytest.raises(SystemExit) as refused:
        main(argv)
    err = capsys.readouterr().err
    assert refused.value.code == 2 and f"argument {argv[-2]}:" in err
    assert "must be at least 1" in err or "expected a whole number, got 'two'" in err
    from seqlab.cli import build_parser

    assert build_parser().parse_args(argv[:-1] + ["3"]).__dict__[argv[-2].lstrip("-")] == 3
