"""The ``seqlab`` command line: each command parses its arguments and calls one library function.

    seqlab train CONFIG [key.sub=value ...] [--out RUN] [--max-minutes M]
    seqlab train --resume RUN [key.sub=value ...]
    seqlab evaluate RUN --data FILE [--beam 5] [--confusion PNG]
    seqlab translate RUN [--input FILE] [--beam 5] [--n-best 3] [--strategy sample --top-p 0.9 ...]
    seqlab chat RUN [--temperature 0.8 --top-k 20 --seed 1 ...]
    seqlab classify RUN [--input FILE]
    seqlab attention RUN "sentence" --out attn.png
    seqlab generate RUN --prompt "text" [--max-tokens 200] [--temperature 1] [--top-k K] [--top-p P] [--seed S]
    seqlab data download tatoeba --pair en-pt [--out data]
    seqlab data synthetic --out corpus.tsv [--n 1000]
    seqlab plot RUN --out curves.png
    seqlab export RUN --format ctranslate2|onnx [--quantization int8] [--out DIR]
    seqlab serve RUN [RUN ...] [--host 127.0.0.1] [--port 8000] [--engine ctranslate2] [--precision int8]
    seqlab study list | NAME | all [--quick] --out DIR [--runs RUN ...] [--data FILE]
    seqlab embed train CONFIG [key.sub=value ...] [--out RUN]     (and --resume RUN)
    seqlab embed similar RUN word [-k 10]
    seqlab embed analogy RUN a b c [-k 10]                        (b - a + c)
    seqlab embed export RUN --out vectors.txt
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import warnings
from pathlib import Path

from seqlab import __version__
from seqlab.errors import SeqlabError

__all__ = ["build_parser", "main"]


def _cmd_train(args) -> int:
    from seqlab.config import load_config
    from seqlab.training.trainer import train

    if args.nproc is not None:
        return _launch_processes(args.nproc, args.argv)
    if args.device:
        args.overrides.append(f"train.device={args.device}")
    if args.resume:
        if args.config:
            args.overrides.insert(0, args.config)  # `train --resume RUN key=value`: no config file
        result = train(None, args.resume, resume=True, overrides=args.overrides,
                       max_minutes=args.max_minutes, progress=not args.quiet)
    else:
        if not args.config:
            raise SeqlabError("seqlab train needs a config file (or --resume RUN)")
        cfg = load_config(args.config, args.overrides)
        if args.task is not None and cfg.task != args.task:
            raise SeqlabError(f"{args.config}: a {cfg.task!r} config; this command trains task: {args.task}")
        run_dir = Path(args.out) if args.out else Path("runs") / cfg.name
        result = train(cfg, run_dir, max_minutes=args.max_minutes, progress=not args.quiet)
    if result.last_eval:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.last_eval.items()}))
    return 0


def _launch_processes(nproc: int, argv: list[str]) -> int:
    """``seqlab train --nproc N ...``: the same command in N processes, through ``torchrun --standalone``."""
    import os
    import subprocess

    rest, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            rest.append(arg)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "seqlab", *rest]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.call(command, env=env)


def _print_ranked(ranked: list[tuple[str, float]]) -> None:
    for word, cos in ranked:
        print(f"{word}\t{cos:.4f}")


def _cmd_embed_similar(args) -> int:
    from seqlab.tasks.word2vec import load_word_vectors

    _print_ranked(load_word_vectors(args.run, checkpoint=args.checkpoint).similar(args.word, args.k))
    return 0


def _cmd_embed_analogy(args) -> int:
    from seqlab.tasks.word2vec import load_word_vectors

    _print_ranked(load_word_vectors(args.run, checkpoint=args.checkpoint).analogy(args.a, args.b, args.c, args.k))
    return 0


def _cmd_embed_export(args) -> int:
    from seqlab.tasks.word2vec import load_word_vectors

    vectors = load_word_vectors(args.run, checkpoint=args.checkpoint)
    vectors.save(args.out)
    print(f"wrote {len(vectors)} vectors of dimension {vectors.vectors.shape[1]} to {args.out}")
    return 0


def _cmd_evaluate(args) -> int:
    from seqlab.api import run_task

    evaluators = {"translation": _evaluate_translation, "classification": _evaluate_classification,
                  "lm": _evaluate_lm}
    task = run_task(args.run)
    if task not in evaluators:
        raise SeqlabError(f"{args.run}: seqlab evaluate does not know {task!r} runs")
    return evaluators[task](args)


def _evaluate_translation(args) -> int:
    from seqlab.api import Translator
    from seqlab.data.readers import read_parallel

    translator = Translator.load(args.run, checkpoint=args.checkpoint, device=args.device,
                                 precision=args.precision, engine=args.engine)
    data = args.data if len(args.data) > 1 else args.data[0]
    pairs = read_parallel(data, on_error=args.on_error, reverse=args.reverse)
    result = translator.evaluate(pairs, beam=args.beam, length_penalty=args.length_penalty)
    report = {"data": data, "checkpoint": args.checkpoint, "beam": args.beam or translator.config.decode.beam,
              "engine": args.engine, "precision": translator.precision,
              **{k: (None if math.isnan(v) else round(v, 4)) if isinstance(v, float) else v  # NaN: not computed
                 for k, v in result.as_dict().items()}}
    print(json.dumps(report))
    if args.hypotheses:
        Path(args.hypotheses).write_text("".join(h + "\n" for h in result.hypotheses), encoding="utf-8")
    return 0


def _evaluate_classification(args) -> int:
    from seqlab.api import Classifier
    from seqlab.evaluation.plots import plot_confusion

    if len(args.data) != 1:
        raise SeqlabError("a classification run is evaluated on one CSV/TSV file (--data FILE)")
    classifier = Classifier.load(args.run, checkpoint=args.checkpoint, device=args.device)
    result = classifier.evaluate(args.data[0])
    name = re.sub(r"[^\w.-]+", "-", Path(args.data[0]).stem)  # builtin:x -> builtin-x
    out = Path(args.confusion) if args.confusion else Path(args.run) / f"confusion-{name}.png"
    plot_confusion(result.confusion, result.labels, out,
                   title=f"{Path(args.data[0]).name}: accuracy {result.accuracy:.3f}, macro-F1 {result.macro_f1:.3f}")
    report = {"data": args.data[0], "checkpoint": args.checkpoint,
              **{k: round(v, 4) if isinstance(v, float) else v for k, v in result.as_dict().items()},
              "confusion_png": str(out)}
    print(json.dumps(report))
    return 0


def _evaluate_lm(args) -> int:
    from seqlab.devices import resolve_device
    from seqlab.tasks.lm import evaluate_text
    from seqlab.tasks.run import load_run

    if len(args.data) != 1:
        raise SeqlabError("a language-model run is evaluated on one plain text file (--data FILE)")
    run = load_run(args.run, checkpoint=args.checkpoint, task="lm")
    run.model.to(resolve_device(args.device, key="device"))
    metrics = evaluate_text(run, args.data[0])
    print(json.dumps({"data": args.data[0], "checkpoint": args.checkpoint,
                      **{k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}}))
    return 0


def _input_lines(args, handle) -> None:
    """Call ``handle(lines)`` on the lines of ``--input``, of piped stdin, or on each line typed."""
    from seqlab.data.readers import read_lines

    if args.input:
        handle(read_lines(args.input, keep_blank_tail=True))
    elif sys.stdin.isatty():
        print(f"seqlab {args.command}: type a sentence and press Enter (Ctrl-D to quit)", file=sys.stderr)
        for line in sys.stdin:
            if line.strip():
                try:
                    handle([line.rstrip("\n")])
                except SeqlabError as err:
                    print(f"error: {err}", file=sys.stderr)
    else:
        data = sys.stdin.buffer.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            raise SeqlabError(f"<stdin>: line {line}: not UTF-8 text (byte {err.start})") from None
        handle(text.splitlines())


_GENERATION_OPTIONS = ("strategy", "beam", "temperature", "top_k", "top_p", "repetition_penalty", "no_repeat_ngram",
                       "min_length", "max_new_tokens", "seed")


def _generation(args) -> dict:
    """The generation options given on the command line (the others keep the run's values; the
    precision is given once, when the run is loaded)."""
    return {key: getattr(args, key) for key in _GENERATION_OPTIONS if getattr(args, key, None) is not None}


def _translate_lines(translator, lines: list[str], args, out) -> None:
    from seqlab.api import SentenceTooLong

    for start in range(0, len(lines), 64):
        chunk = lines[start:start + 64]
        try:
            results = translator.translate(chunk, n_best=args.n_best, truncate=args.truncate, **_generation(args))
        except SentenceTooLong as err:
            line = start + err.index + 1
            raise SeqlabError(f"{args.input or '<stdin>'}: line {line}: {err.n_tokens} tokens, more than the "
                              f"model's limit of {err.limit}; split it or pass --truncate") from None
        for res in results:
            if args.n_best > 1:
                out.write("\t".join(f"{t}\t{s:.4f}" for t, s in res) + "\n")
            else:
                out.write(res + "\n")
        out.flush()


def _cmd_translate(args) -> int:
    from seqlab.api import Translator

    translator = Translator.load(args.run, checkpoint=args.checkpoint, device=args.device,
                                 precision=args.precision, engine=args.engine)
    _input_lines(args, lambda lines: _translate_lines(translator, lines, args, sys.stdout))
    return 0


def _cmd_classify(args) -> int:
    from seqlab.api import Classifier

    classifier = Classifier.load(args.run, checkpoint=args.checkpoint, device=args.device)

    def classify(lines: list[str]) -> None:
        for start in range(0, len(lines), 256):
            chunk = lines[start:start + 256]
            kept = [line for line in chunk if line.strip()]
            results = iter(classifier.classify(kept))
            for line in chunk:  # a blank line stays blank, so outputs stay aligned with inputs
                sys.stdout.write("%s\t%.4f\n" % next(results) if line.strip() else "\n")
            sys.stdout.flush()

    _input_lines(args, classify)
    return 0


def _cmd_chat(args) -> int:
    from seqlab.api import Chatbot, load
    from seqlab.repl import chat_loop

    bot = load(args.run, checkpoint=args.checkpoint, device=args.device, precision=args.precision, engine=args.engine)
    if not isinstance(bot, Chatbot):
        raise SeqlabError(f"{args.run}: a {bot.run_task} run, not a chat run (task: chat); use seqlab translate")
    chat_loop(bot, sys.stdin, sys.stdout, interactive=sys.stdin.isatty(), stderr=sys.stderr, **_generation(args))
    return 0


def _cmd_attention(args) -> int:
    from seqlab.api import Translator
    from seqlab.evaluation.plots import plot_attention

    translator = Translator.load(args.run, checkpoint=args.checkpoint, device=args.device)
    amap = translator.attention(args.sentence)
    plot_attention(amap.weights, amap.src_tokens, amap.tgt_tokens, args.out, title=amap.translation)
    print(f"{amap.translation}\nwrote {args.out}")
    return 0


def _cmd_export(args) -> int:
    from seqlab.api import Translator

    translator = Translator.load(args.run, checkpoint=args.checkpoint)
    out = translator.export(args.format, out=args.out, quantization=args.quantization)
    print(f"wrote {out}")
    return 0


def _cmd_generate(args) -> int:
    from seqlab.tasks.lm import generate
    from seqlab.tasks.run import load_run

    run = load_run(args.run, checkpoint=args.checkpoint, task="lm")
    print(generate(run.model, run.data.text, args.prompt, max_tokens=args.max_tokens, temperature=args.temperature,
                   top_k=args.top_k, top_p=args.top_p, seed=args.seed))
    return 0


def _default_curves(run: Path) -> list[str]:
    """Training loss, dev loss and the dev metric that picks ``best`` (e.g. dev_bleu)."""
    from seqlab.config import load_config

    best = load_config(run / "config.yaml").train.best_metric
    return ["loss", "dev_loss"] + ([f"dev_{best}"] if best != "loss" else [])


def _cmd_plot(args) -> int:
    from seqlab.evaluation.plots import plot_curves

    path = Path(args.run) / "metrics.jsonl"
    if not path.is_file():
        raise SeqlabError(f"{path}: no metrics log in this run folder")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    keys = args.keys.split(",") if args.keys else _default_curves(Path(args.run))
    plot_curves(records, keys, args.out)
    print(f"wrote {args.out}")
    return 0


def _cmd_serve(args) -> int:
    from seqlab.serve import serve
    from seqlab.serve.limits import ServeLimits

    limits = ServeLimits(max_body_bytes=args.max_body_bytes, max_input_tokens=args.max_input_tokens,
                         max_new_tokens=args.max_new_tokens, max_texts=args.max_texts,
                         max_in_flight=args.max_in_flight)
    serve(args.runs, host=args.host, port=args.port, checkpoint=args.checkpoint, limits=limits,
          max_batch=1 if args.no_batching else args.max_batch, batch_wait=args.batch_wait_ms / 1000,
          threads=args.threads, log_level=args.log_level, engine=args.engine, precision=args.precision)
    return 0


def _cmd_data_download(args) -> int:
    from seqlab.data.download import download_tatoeba

    path = download_tatoeba(args.pair, args.out)
    print(f"wrote {path}")
    return 0


def _cmd_data_synthetic(args) -> int:
    from seqlab.data.synthetic import generate_pairs
    from seqlab.io import atomic_write_text

    pairs = generate_pairs(args.n, seed=args.seed)
    atomic_write_text(Path(args.out), "".join(f"{s}\t{t}\n" for s, t in pairs))
    print(f"wrote {len(pairs)} pairs to {args.out}")
    return 0


def _cmd_study(args) -> int:
    from seqlab.studies import describe, run_all, run_study

    if args.name == "list":
        for name, claim, cost in describe():
            print(f"{name:<17} {cost}\n    {claim}")
        return 0
    if not args.out:
        raise SeqlabError(f"seqlab study {args.name} needs --out DIR (where the report and figures go)")
    options = {"runs": args.runs, "data": args.data}
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)  # the studies that time the machine use them all
    if args.name == "all":
        run_all(args.out, quick=args.quick, **options)
    else:
        report = run_study(args.name, args.out, quick=args.quick, **options)
        print(f"{args.name}: {report.verdict}. {report.reason}\nwrote {Path(args.out) / 'report.md'}")
    return 0


def _count(text: str) -> int:
    """An argparse type: a whole number of at least 1 (processes, threads)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="seqlab", description="Neural sequence models from the equations up.")
    p.add_argument("--version", action="version", version=f"seqlab {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def train_args(q, example: str, task: str | None):
        q.add_argument("config", nargs="?", help=f"experiment YAML, e.g. {example}")
        q.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. train.max_steps=100")
        q.add_argument("--resume", metavar="RUN", help="continue the run in this folder from checkpoints/last")
        q.add_argument("--out", metavar="RUN", help="run folder (default runs/<name>)")
        q.add_argument("--max-minutes", type=float, help="wall-clock budget for this invocation")
        q.add_argument("--quiet", action="store_true", help="no progress bar")
        q.add_argument("--device", help="auto (default: CUDA when available), cpu, cuda or cuda:N (= train.device)")
        q.add_argument("--nproc", type=_count, metavar="N",
                       help="train in N processes on torch.distributed (torchrun --standalone on this machine)")
        q.set_defaults(func=_cmd_train, task=task)

    t = sub.add_parser("train", help="train a model from a YAML config (or resume a run)")
    train_args(t, "configs/translation/en-pt-transformer.yaml", None)

    def run_args(q):
        q.add_argument("run", help="run folder written by seqlab train")
        q.add_argument("--checkpoint", default="best", help="best (default) or last")
        q.add_argument("--device", default="auto", help="auto (default: CUDA when available), cpu, cuda or cuda:N")

    def precision_arg(q):
        q.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16", "int8"],
                       help="decode in float32, under bf16/fp16 autocast, auto (bf16 where the CPU computes it "
                            "natively), or with int8 linear layers (default: the run's decode.precision)")
        q.add_argument("--engine", choices=["native", "ctranslate2", "onnx"], default="native",
                       help="decode with PyTorch (native) or through a model exported into RUN/export/ "
                            "(Transformer runs; exported on first use)")

    e = sub.add_parser("evaluate", help="BLEU, chrF and perplexity on parallel data (translation runs); "
                                        "accuracy, macro-F1 and a confusion matrix PNG (classification runs); "
                                        "loss in nats/token, perplexity and bits/char on plain text (lm runs)")
    run_args(e)
    e.add_argument("--data", required=True, nargs="+", help="TSV/JSONL file, or two aligned text files; "
                                                                "a CSV/TSV file (classification); a text file (lm)")
    e.add_argument("--beam", type=int)
    precision_arg(e)
    e.add_argument("--length-penalty", type=float)
    e.add_argument("--reverse", action="store_true", help="swap the columns of the data")
    e.add_argument("--on-error", choices=["raise", "skip"], default="raise")
    e.add_argument("--hypotheses", metavar="FILE", help="also write the translations here")
    e.add_argument("--confusion", metavar="PNG", help="classification: where the confusion matrix goes "
                                                      "(default RUN/confusion-<data name>.png)")
    e.set_defaults(func=_cmd_evaluate)

    def generation_args(q):
        g = q.add_argument_group("generation (default: the run's decode section)")
        g.add_argument("--strategy", choices=["greedy", "beam", "sample"],
                       help="greedy, beam search, or sampling (implied by --temperature/--top-k/--top-p)")
        g.add_argument("--beam", type=int, help="beam size (1 = greedy)")
        g.add_argument("--temperature", type=float, help="sampling temperature (0 = argmax)")
        g.add_argument("--top-k", type=int, help="sample among the k most probable tokens")
        g.add_argument("--top-p", type=float, help="sample from the nucleus of probability mass p")
        g.add_argument("--repetition-penalty", type=float, help="CTRL penalty for tokens already generated (1 = off)")
        g.add_argument("--no-repeat-ngram", type=int, help="no n-gram of this size twice in an output (0 = off)")
        g.add_argument("--min-length", type=int, help="block <eos> until this many tokens are out")
        g.add_argument("--max-new-tokens", type=int, help="most output tokens (instead of the source-length rule)")
        g.add_argument("--seed", type=int, help="seed of the sampler, for reproducible samples")
        precision_arg(g)

    tr = sub.add_parser("translate", help="translate lines from --input, stdin, or interactively")
    run_args(tr)
    tr.add_argument("--input", help="a text file, one sentence per line")
    tr.add_argument("--n-best", type=int, default=1)
    tr.add_argument("--truncate", action="store_true", help="cut sentences longer than the model's limit")
    generation_args(tr)
    tr.set_defaults(func=_cmd_translate)

    c = sub.add_parser("classify", help="classify lines from --input, stdin, or interactively: label<TAB>probability")
    run_args(c)
    c.add_argument("--input", help="a text file, one text per line")
    c.set_defaults(func=_cmd_classify)

    ch = sub.add_parser("chat", help="talk to a chat run (a REPL; one reply per line when piped)")
    run_args(ch)
    generation_args(ch)
    ch.set_defaults(func=_cmd_chat)

    a = sub.add_parser("attention", help="plot the source attention of one translation")
    run_args(a)
    a.add_argument("sentence")
    a.add_argument("--out", default="attention.png", help="PNG, SVG or PDF")
    a.set_defaults(func=_cmd_attention)

    x = sub.add_parser("export", help="export a Transformer run to CTranslate2 or ONNX")
    run_args(x)
    x.add_argument("--format", required=True, choices=["ctranslate2", "onnx"])
    x.add_argument("--quantization", choices=["fp32", "int8"], default="fp32",
                   help="weight precision (int8: ctranslate2 only)")
    x.add_argument("--out", metavar="DIR", help="output folder (default RUN/export/<format>-<quantization>, "
                                                "where --engine finds it)")
    x.set_defaults(func=_cmd_export)

    g = sub.add_parser("generate", help="continue a prompt with a trained language model (task: lm)")
    run_args(g)
    g.add_argument("--prompt", default="", help="the text to continue (default: start a new document)")
    g.add_argument("--max-tokens", type=int, default=200, help="most tokens to generate")
    g.add_argument("--temperature", type=float, default=1.0, help="0 = greedy, < 1 sharper, > 1 flatter")
    g.add_argument("--top-k", type=int, help="sample among the k most probable tokens only")
    g.add_argument("--top-p", type=float, help="sample from the smallest set of tokens with this probability mass")
    g.add_argument("--seed", type=int, help="seed the sampling (same seed, same text)")
    g.set_defaults(func=_cmd_generate)

    pl = sub.add_parser("plot", help="plot training curves from a run's metrics.jsonl")
    pl.add_argument("run")
    pl.add_argument("--keys", help="comma-separated metrics (default: loss, dev_loss and the run's best metric)")
    pl.add_argument("--out", default="curves.png")
    pl.set_defaults(func=_cmd_plot)

    sv = sub.add_parser("serve", help="serve runs over HTTP: JSON API, OpenAI chat completions, web page")
    sv.add_argument("runs", nargs="+", metavar="RUN", help="run folders, served under their folder names")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback; others warn)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--checkpoint", default="best", help="best (default) or last")
    precision_arg(sv)
    sv.add_argument("--max-batch", type=int, default=32, help="most texts decoded together (dynamic batching)")
    sv.add_argument("--batch-wait-ms", type=float, default=5.0, help="wait for more requests to batch with")
    sv.add_argument("--no-batching", action="store_true", help="decode each request alone")
    sv.add_argument("--threads", type=_count, help="torch threads (default: torch's choice)")
    sv.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                    help="uvicorn's log level (info logs every request)")
    from seqlab.serve.limits import ServeLimits

    defaults = ServeLimits()
    for flag, help_text in (("--max-body-bytes", "largest request body"),
                            ("--max-input-tokens", "longest text, in tokens"),
                            ("--max-new-tokens", "most tokens a request may ask to generate"),
                            ("--max-texts", "texts per translate request"),
                            ("--max-in-flight", "requests at once; past it 503 with Retry-After")):
        sv.add_argument(flag, type=int, default=getattr(defaults, flag[2:].replace("-", "_")),
                        help=f"{help_text} (default %(default)s)")
    sv.set_defaults(func=_cmd_serve)
    em = sub.add_parser("embed", help="word vectors: train Word2Vec, query and export them")
    esub = em.add_subparsers(dest="embed_command", required=True)
    et = esub.add_parser("train", help="train Word2Vec skip-gram from a YAML config (task: word2vec)")
    train_args(et, "configs/embeddings/deixa-demo.yaml", "word2vec")
    es = esub.add_parser("similar", help="nearest words by cosine similarity")
    run_args(es)
    es.add_argument("word")
    es.add_argument("-k", type=int, default=10, help="how many (default 10)")
    es.set_defaults(func=_cmd_embed_similar)
    ea = esub.add_parser("analogy", help="a is to b as c is to ?: the words nearest b - a + c")
    run_args(ea)
    for name in ("a", "b", "c"):
        ea.add_argument(name)
    ea.add_argument("-k", type=int, default=10, help="how many (default 10)")
    ea.set_defaults(func=_cmd_embed_analogy)
    ex = esub.add_parser("export", help="write the vectors in word2vec text format (gensim reads it)")
    run_args(ex)
    ex.add_argument("--out", required=True, help="the text file to write")
    ex.set_defaults(func=_cmd_embed_export)

    st = sub.add_parser("study", help="measure a claim of the courses: report, table and plots")
    st.add_argument("name", help="a study from `seqlab study list`, `all`, or `list`")
    st.add_argument("--out", metavar="DIR", help="folder for report.md, results.json and the figures")
    st.add_argument("--quick", action="store_true", help="toy size: seconds per study instead of minutes")
    st.add_argument("--runs", nargs="+", metavar="RUN", help="trained run folders to measure (long-sentences)")
    st.add_argument("--data", metavar="FILE", help="source<TAB>target pairs to measure them on (long-sentences)")
    st.add_argument("--threads", type=_count, metavar="N",
                    help="CPU threads for the studies that measure speed with every thread (parallelism; "
                         "default: all the process may use); the training studies run on one")
    st.set_defaults(func=_cmd_study)

    d = sub.add_parser("data", help="get or make data sets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    dl = dsub.add_parser("download", help="download a public corpus")
    dl.add_argument("corpus", choices=["tatoeba"])
    dl.add_argument("--pair", default="en-pt")
    dl.add_argument("--out", default="data")
    dl.set_defaults(func=_cmd_data_download)
    sy = dsub.add_parser("synthetic", help="write pairs of the embedded English-Portuguese grammar as TSV")
    sy.add_argument("--out", required=True)
    sy.add_argument("--n", type=int, default=1000)
    sy.add_argument("--seed", type=int, default=0)
    sy.set_defaults(func=_cmd_data_synthetic)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if getattr(args, "func", None) is _cmd_train:  # key=value overrides may stand after options: --out RUN k=v
        args.overrides += [e for e in extra if "=" in e and not e.startswith("-")]
        extra = [e for e in extra if e not in args.overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    with warnings.catch_warnings():  # restores the caller's warning settings (main may run in-process)
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        try:
            return args.func(args)
        except SeqlabError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a warning as one ``warning: ...`` line on stderr, without the source location."""
    print(f"warning: {message}", file=sys.stderr if file is None else file)


if __name__ == "__main__":
    sys.exit(main())
