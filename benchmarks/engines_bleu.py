"""BLEU and chrF of every decoding engine on one trained run, beside fp32's (a quality run, not a speed run).

For a trained Transformer run folder and a parallel data set (e.g. the Tatoeba dev set), evaluate
with each engine and precision seqlab offers: native fp32, native int8, native bf16 (where the CPU
has native bf16), CTranslate2 fp32 and int8, ONNX Runtime fp32; greedy and beam 5 (or ``--beams``).
Exported models are written into ``RUN/export/`` on first use (as ``--engine`` does).

    python benchmarks/engines_bleu.py runs/tatoeba-transformer \\
        --data ../shared/data/tatoeba-en-pt/dev.tsv --out results/engines-bleu.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import machine_info, print_table

__all__ = ["main"]


def engines() -> list[tuple[str, str]]:
    """(engine, precision) pairs to evaluate here."""
    from seqlab.precision import native_bf16

    pairs = [("native", "fp32"), ("native", "int8")]
    if native_bf16("cpu"):
        pairs.append(("native", "bf16"))
    return pairs + [("ctranslate2", "fp32"), ("ctranslate2", "int8"), ("onnx", "fp32")]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a trained Transformer run folder")
    parser.add_argument("--data", required=True, help="TSV (source<TAB>target) to score on")
    parser.add_argument("--beams", default="1,5", help="comma-separated beam sizes")
    parser.add_argument("--checkpoint", default="best")
    parser.add_argument("--threads", type=int, default=None, help="torch / engine threads")
    parser.add_argument("--out", type=Path, help="write the JSON report")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    import seqlab
    from seqlab.data.readers import read_parallel

    pairs = read_parallel(args.data)
    rows = []
    for engine, precision in engines():
        translator = seqlab.load(args.run, checkpoint=args.checkpoint, engine=engine, precision=precision)
        for beam in (int(b) for b in args.beams.split(",")):
            start = time.perf_counter()
            result = translator.evaluate(pairs, beam=beam)
            seconds = time.perf_counter() - start
            rows.append({"engine": engine, "precision": precision, "beam": beam, "bleu": result.bleu,
                         "chrf": result.chrf,
                         "perplexity": None if math.isnan(result.perplexity) else result.perplexity, "sentences": result.sentences, "seconds": seconds})
            print(json.dumps(rows[-1]), flush=True)
    for row in rows:
        fp32 = next(r for r in rows if (r["engine"], r["precision"], r["beam"]) == ("native", "fp32", row["beam"]))
        row["bleu_minus_fp32"] = row["bleu"] - fp32["bleu"]
    print()
    print_table(rows, [("engine", "engine"), ("precision", "precision"), ("beam", "beam"), ("bleu", "BLEU"),
                       ("bleu_minus_fp32", "- fp32"), ("chrf", "chrF"), ("perplexity", "ppl"),
                       ("seconds", "seconds")])
    payload = {"benchmark": "engines_bleu", "machine": machine_info(), "run": args.run, "data": args.data,
               "checkpoint": args.checkpoint, "rows": rows}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return payload


if __name__ == "__main__":
    main()
