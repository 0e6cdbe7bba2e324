"""The ``seqlab`` command line: each command parses its arguments and calls one library function.

    seqlab train CONFIG [key.sub=value ...] [--out RUN] [--max-minutes M]
    seqlab train --resume RUN [key.sub=value ...]
    seqlab evaluate RUN --data FILE [--beam 5]
    seqlab translate RUN [--input FILE] [--beam 5] [--n-best 3]
    seqlab attention RUN "sentence" --out attn.png
    seqlab generate RUN --prompt "text" [--max-tokens 200] [--temperature 1] [--top-k K] [--top-p P] [--seed S]
    seqlab data download tatoeba --pair en-pt [--out data]
    seqlab data synthetic --out corpus.tsv [--n 1000]
    seqlab plot RUN --out curves.png
    seqlab export RUN --format ctranslate2|onnx [--quantization int8] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
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
        run_dir = Path(args.out) if args.out else Path("runs") / cfg.name
        result = train(cfg, run_dir, max_minutes=args.max_minutes, progress=not args.quiet)
    if result.last_eval:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.last_eval.items()}))
    return 0


def _launch_processes(nproc: int, argv: list[str]) -> int:
    """``seqlab train --nproc N ...``: the same command in N processes, through ``torchrun --standalone``."""
    import os
    import subprocess

    if nproc < 1:
        raise SeqlabError(f"--nproc must be at least 1, got {nproc}")
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


def _cmd_evaluate(args) -> int:
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


def _translate_lines(translator, lines: list[str], args, out) -> None:
    from seqlab.api import SentenceTooLong

    for start in range(0, len(lines), 64):
        chunk = lines[start:start + 64]
        try:
            results = translator.translate(chunk, beam=args.beam, n_best=args.n_best, truncate=args.truncate)
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
    from seqlab.data.readers import read_lines

    translator = Translator.load(args.run, checkpoint=args.checkpoint, device=args.device,
                                 precision=args.precision, engine=args.engine)
    if args.input:
        _translate_lines(translator, read_lines(args.input, keep_blank_tail=True), args, sys.stdout)
    elif sys.stdin.isatty():
        print("seqlab translate: type a sentence and press Enter (Ctrl-D to quit)", file=sys.stderr)
        for line in sys.stdin:
            if line.strip():
                try:
                    _translate_lines(translator, [line.rstrip("\n")], args, sys.stdout)
                except SeqlabError as err:
                    print(f"error: {err}", file=sys.stderr)
    else:
        data = sys.stdin.buffer.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            raise SeqlabError(f"<stdin>: line {line}: not UTF-8 text (byte {err.start})") from None
        _translate_lines(translator, text.splitlines(), args, sys.stdout)
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="seqlab", description="Neural sequence models from the equations up.")
    p.add_argument("--version", action="version", version=f"seqlab {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model from a YAML config (or resume a run)")
    t.add_argument("config", nargs="?", help="experiment YAML, e.g. configs/translation/en-pt-transformer.yaml")
    t.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. model.layers=4")
    t.add_argument("--resume", metavar="RUN", help="continue the run in this folder from checkpoints/last")
    t.add_argument("--out", metavar="RUN", help="run folder (default runs/<name>)")
    t.add_argument("--max-minutes", type=float, help="wall-clock budget for this invocation")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--device", help="auto (default: CUDA when available), cpu, cuda or cuda:N (= train.device)")
    t.add_argument("--nproc", type=int, metavar="N",
                   help="train in N processes on torch.distributed (torchrun --standalone on this machine)")
    t.set_defaults(func=_cmd_train)

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

    e = sub.add_parser("evaluate", help="BLEU, chrF and perplexity on parallel data")
    run_args(e)
    e.add_argument("--data", required=True, nargs="+", help="TSV/JSONL file, or two aligned text files")
    e.add_argument("--beam", type=int)
    precision_arg(e)
    e.add_argument("--length-penalty", type=float)
    e.add_argument("--reverse", action="store_true", help="swap the columns of the data")
    e.add_argument("--on-error", choices=["raise", "skip"], default="raise")
    e.add_argument("--hypotheses", metavar="FILE", help="also write the translations here")
    e.set_defaults(func=_cmd_evaluate)

    tr = sub.add_parser("translate", help="translate lines from --input, stdin, or interactively")
    run_args(tr)
    tr.add_argument("--input", help="a text file, one sentence per line")
    tr.add_argument("--beam", type=int)
    precision_arg(tr)
    tr.add_argument("--n-best", type=int, default=1)
    tr.add_argument("--truncate", action="store_true", help="cut sentences longer than the model's limit")
    tr.set_defaults(func=_cmd_translate)

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
    if args.command == "train":  # key=value overrides may stand after options, e.g. --out RUN k=v
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
