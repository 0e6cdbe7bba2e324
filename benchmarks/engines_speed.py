"""Decoding speed of seqlab's engines in one run: native fp32 / int8 / bf16, CTranslate2, ONNX Runtime, Marian.

The setting of ``translation_speed.py`` (the standard 3 + 3 layer, d_model 256 Transformer with
random weights, batches of 32 random sources of 12-16 tokens, exactly 20 new tokens per sentence,
greedy and beam 5 with length penalty 0.6), with every engine seqlab decodes through:

* ``native fp32`` / ``native bf16`` (autocast; only where the CPU has native bf16) /
  ``native int8`` (:func:`seqlab.export.int8.quantize_int8`): seqlab's greedy_search/beam_search;
* ``onnx fp32``: the same search functions over ONNX Runtime sessions
  (:class:`seqlab.export.onnx.OnnxSeq2Seq`);
* ``seqlab>ct2 fp32`` / ``seqlab>ct2 int8``: ``CTranslate2Engine.search``
  (:class:`seqlab.export.ctranslate2.CTranslate2Engine`; seqlab ids in and out, GNMT ranking), the
  call ``--engine ctranslate2`` makes once it has the length limits;
* ``ct2 int8 direct``: the same exported int8 model called through CTranslate2's own API on token
  strings with its own length penalty, as a CTranslate2 user would;
* ``marian fp32``: HuggingFace ``MarianMTModel.generate`` (as in ``translation_speed.py``).

<eos> is kept out of the first 20 tokens: seqlab's models through the ``NoEos`` view of
``translation_speed.py``, CTranslate2 with ``min_decoding_length = max_decoding_length = 20``,
Marian with ``min_new_tokens = max_new_tokens = 20``. Ratios are against ``marian fp32`` and
against ``ct2 int8 direct`` of the same task.

Two phases, each round-robin: first the PyTorch, ONNX Runtime and Marian systems, then the
CTranslate2 ones (:func:`build_ct2_systems` says why). Ratios between a system of one phase and
a baseline of the other are taken minutes apart in the same run.

    python benchmarks/engines_speed.py --quick
    python benchmarks/engines_speed.py --out results/engines.json
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import (
    FIRST_REAL_ID,
    add_common_options,
    apply_threads,
    make_batches,
    print_table,
    report,
    run_rounds,
    schedule,
)
from translation_speed import (
    BEAM,
    DECODE_BATCH,
    LENGTH_PENALTY,
    MAX_LEN,
    MIN_LEN,
    N_BATCHES,
    NEW_TOKENS,
    VOCAB,
    build_marian,
    build_seqlab,
    marian_decode,
    seqlab_decode,
)

__all__ = ["main"]

DEFAULTS = ((2, 7, 3), (1, 2, 1))  # (warmup, repeats, iters): full run, --quick
BASELINES = ("marian fp32", "ct2 int8 direct")


def bf16_supported() -> bool:
    from seqlab.precision import native_bf16

    return native_bf16("cpu")


def synthetic_tokenizers():
    """A joint word vocabulary ``<pad> <sos> <eos> <unk> w4 ... w7999`` for the random ids."""
    from seqlab.text.pair import TokenizerPair
    from seqlab.text.specials import SPECIALS
    from seqlab.text.tokenizer import WordTokenizer

    return TokenizerPair(WordTokenizer(SPECIALS + [f"w{i}" for i in range(FIRST_REAL_ID, VOCAB)]))


def ct2_seqlab_decode(engine, batches, beam: int):
    """``--engine ctranslate2``'s path: seqlab ids in, DecodeOutput out."""
    def call(i: int) -> int:
        src = batches[i % len(batches)].src
        ids = [row[row.ne(0)].tolist() for row in src]
        out = engine.search(ids, [NEW_TOKENS] * len(ids), beam=beam, length_penalty=LENGTH_PENALTY,
                            min_length=NEW_TOKENS, batch_size=DECODE_BATCH)
        if i == 0:
            lengths = {len(t) for t in out.tokens}
            assert lengths == {NEW_TOKENS}, f"seqlab>ct2 produced lengths {lengths}"
        return src.size(0)

    return call


def ct2_direct_decode(translator, tokens: list[str], batches, beam: int):
    """CTranslate2's own API on token strings, its own length penalty."""
    def call(i: int) -> int:
        src = batches[i % len(batches)].src
        source = [[tokens[t] for t in row[row.ne(0)].tolist()] for row in src]
        out = translator.translate_batch(source, beam_size=beam, length_penalty=LENGTH_PENALTY,
                                         max_decoding_length=NEW_TOKENS, min_decoding_length=NEW_TOKENS,
                                         max_batch_size=DECODE_BATCH)
        if i == 0:
            lengths = {len(r.hypotheses[0]) for r in out}
            assert lengths == {NEW_TOKENS}, f"ct2 direct produced lengths {lengths}"
        return src.size(0)

    return call


def build_torch_systems(args, folder: Path, model, batches) -> dict:
    """name -> (beam -> call) for the engines that run on PyTorch or ONNX Runtime, and Marian.

    Packed weights belong to a module, for one precision (``pack_for_decoding``, which each
    native system's call runs, as a ``Translator`` does), so bf16 decodes a copy of the model:
    sharing one would leave the fp32 rows running the bf16 packs' plain fallback.
    """
    from seqlab.export.engines import export_model
    from seqlab.export.int8 import quantize_int8
    from seqlab.export.onnx import OnnxSeq2Seq

    int8 = quantize_int8(model)
    export_model(model, synthetic_tokenizers(), "onnx", folder / "onnx-fp32", quantization="fp32")
    onnx_model = OnnxSeq2Seq(folder / "onnx-fp32", threads=args.threads)
    marian = build_marian(args.seed, "relu").eval()
    systems = {
        "native fp32": lambda beam: seqlab_decode(model, batches, "fp32", beam),
        "native int8": lambda beam: seqlab_decode(int8, batches, "fp32", beam),
    }
    if bf16_supported():
        bf16_model = copy.deepcopy(model)
        systems["native bf16"] = lambda beam: seqlab_decode(bf16_model, batches, "bf16", beam)
    systems["onnx fp32"] = lambda beam: seqlab_decode(onnx_model, batches, "fp32", beam)
    systems["marian fp32"] = lambda beam: marian_decode(marian, batches, "fp32", beam)
    return systems


def build_ct2_systems(args, folder: Path, model, batches) -> dict:
    """name -> (beam -> call) for CTranslate2, through seqlab and through its own API.

    Built only after the PyTorch systems are measured: CTranslate2 brings its own OpenMP runtime,
    whose threads kept PyTorch's decoding at about half speed in the same process once it had
    run (2 threads, this machine: 260 sentences/s greedy before, 106-132 after).
    """
    import ctranslate2

    from seqlab.export.ctranslate2 import CTranslate2Engine
    from seqlab.export.engines import export_model

    tokenizers = synthetic_tokenizers()
    for quantization in ("fp32", "int8"):
        export_model(model, tokenizers, "ctranslate2", folder / f"ctranslate2-{quantization}",
                     quantization=quantization)
    ct2 = {q: CTranslate2Engine(folder / f"ctranslate2-{q}", tokenizers, precision=q, threads=args.threads)
           for q in ("fp32", "int8")}
    direct = ctranslate2.Translator(str(folder / "ctranslate2-int8"), device="cpu", compute_type="int8_float32",
                                    intra_threads=args.threads)
    tokens = [tokenizers.src.id_to_token(i) for i in range(VOCAB)]
    return {
        "seqlab>ct2 fp32": lambda beam: ct2_seqlab_decode(ct2["fp32"], batches, beam),
        "seqlab>ct2 int8": lambda beam: ct2_seqlab_decode(ct2["int8"], batches, beam),
        "ct2 int8 direct": lambda beam: ct2_direct_decode(direct, tokens, batches, beam),
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    apply_threads(args.threads)
    warnings.filterwarnings("ignore")
    try:
        import ctranslate2  # noqa: F401
        import onnxruntime  # noqa: F401
        from transformers.utils import logging as hf_logging
    except ImportError as e:
        raise SystemExit(f"this benchmark needs {e.name}: pip install -e '.[bench]'") from e
    hf_logging.set_verbosity_error()
    plan = schedule(args, *DEFAULTS)
    rows = []
    results: dict[str, dict] = {}  # task -> name -> Measurement, over both phases
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        print(f"threads {args.threads}; bf16 native: {bf16_supported()}; "
              f"cpu capability {torch.backends.cpu.get_cpu_capability()}")
        model = build_seqlab(args.seed).eval()
        batches = make_batches(args.seed + 1, N_BATCHES, size=DECODE_BATCH, min_len=MIN_LEN, max_len=MAX_LEN,
                               vocab=VOCAB)
        for phase, build in (("PyTorch, ONNX Runtime, Marian", build_torch_systems),
                             ("CTranslate2", build_ct2_systems)):
            systems = build(args, Path(tmp), model, batches)
            for beam in (1, BEAM):
                task = "greedy" if beam == 1 else f"beam{beam}"
                print(f"{phase}, {task}: warmup {plan[0]}, {plan[1]} rounds x {plan[2]} batches of "
                      f"{DECODE_BATCH} ...", flush=True)
                results.setdefault(task, {}).update(run_rounds(
                    {name: make(beam) for name, make in systems.items()},
                    warmup=plan[0], repeats=plan[1], iters=plan[2]))
        for task, measured in results.items():
            for name, m in measured.items():
                rows.append({"task": task, "system": name, "median": m.median, "unit": "sentences/s",
                             "rates": m.rates, "seconds": m.seconds, "spread": m.spread,
                             **{f"x {b}": m.median / measured[b].median for b in BASELINES}})
    print()
    print_table(rows, [("task", "task"), ("system", "system"), ("median", "sentences/s"),
                       *((f"x {b}", f"x {b}") for b in BASELINES), ("spread", "spread")])
    print("spread = (max - min) / median over rounds; large values mean a noisy machine.")
    settings = {"model": "translation_speed.py standard (3+3, d 256, 4 heads, FFN 1024, V 8000, shared, tied)",
                "batch_sentences": DECODE_BATCH, "lengths": [MIN_LEN, MAX_LEN], "new_tokens": NEW_TOKENS,
                "beam": BEAM, "length_penalty": LENGTH_PENALTY, "threads": args.threads, "seed": args.seed,
                "bf16_native": bf16_supported(), "warmup_repeats_iters": plan,
                "phases": ["native, onnx, marian (round-robin)", "ctranslate2 (round-robin), after"],
                "ctranslate2": __import__("ctranslate2").__version__,
                "onnxruntime": __import__("onnxruntime").__version__}
    return report("engines_speed", args.out, settings, rows)


if __name__ == "__main__":
    main()
