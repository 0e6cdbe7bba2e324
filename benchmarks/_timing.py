"""Shared helpers for the benchmark scripts: options, random batches, timing, tables, JSON.

Timing protocol (both scripts): every system is built and warmed up first; then, for each of
``repeats`` rounds, every system in turn runs ``iters`` timed calls, so slow drifts of the machine
(other processes, frequency changes) spread over all systems alike. The figure reported is the
median over rounds of (work done in the round) / (seconds the round took).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from seqlab.precision import cpu_capability, native_bf16
from seqlab.text.specials import EOS, PAD, SOS, UNK

__all__ = [
    "CLIP_NORM",
    "EOS",
    "FIRST_REAL_ID",
    "LABEL_SMOOTHING",
    "PAD",
    "SOS",
    "Batch",
    "Measurement",
    "add_common_options",
    "apply_threads",
    "available_cores",
    "machine_info",
    "machine_line",
    "make_batch",
    "make_batches",
    "optimizer_step",
    "precision_context",
    "print_table",
    "report",
    "run_rounds",
    "schedule",
    "seqlab_train",
    "training_optimizer",
    "write_json",
]

FIRST_REAL_ID = UNK + 1
"""Random sentences draw real tokens from [FIRST_REAL_ID, V); 0-3 are seqlab's special ids."""


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--quick``, ``--threads``, ``--out``, ``--repeats``, ``--warmup``, ``--iters``, ``--seed``."""
    parser.add_argument("--quick", action="store_true", help="few iterations (a smoke run, < 1 minute)")
    parser.add_argument("--threads", type=int, default=available_cores(),
                        help="torch.set_num_threads (default: all cores, %(default)s here)")
    parser.add_argument("--out", type=Path, default=None, help="write every setting and result as JSON")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per system (median reported)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls per system before timing")
    parser.add_argument("--iters", type=int, default=None, help="timed calls per system per round")
    parser.add_argument("--seed", type=int, default=1)


def apply_threads(threads: int) -> None:
    """Set intra-op threads; refuse nonsense early."""
    if threads < 1:
        raise SystemExit(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


def _lscpu_model() -> str | None:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        if line.strip().startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return None


_BF16_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_bf16", "amx_bf16", "avx_ne_convert")


def _cpuinfo() -> dict:
    """Vendor, family/model numbers and the SIMD flags that decide bf16 speed, from /proc/cpuinfo (Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor is enough
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    flags = set(fields.get("flags", "").split())
    return {"vendor": fields.get("vendor_id"), "family": fields.get("cpu family"), "model": fields.get("model"),
            "flags": [f for f in _BF16_FLAGS if f in flags]}


ISA_LIMITS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS",
              "CT2_FORCE_CPU_ISA")
"""Environment variables that make the libraries use fewer instructions than the CPU has
(``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2`` computes as an
AVX2-only CPU; ``tests/test_portability.py``): recorded with every result, and named in its table."""


def isa_limits() -> dict:
    """The :data:`ISA_LIMITS` set in this process's environment."""
    return {key: os.environ[key] for key in ISA_LIMITS if os.environ.get(key)}


def machine_info() -> dict:
    """The machine and software versions, for the JSON report."""
    info = {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_model": _lscpu_model(),
        "cpuinfo": _cpuinfo(),
        "cores_available": available_cores(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cpu_capability": cpu_capability(),
        "native_bf16": native_bf16("cpu"),
        "isa_limits": isa_limits(),
    }
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        info["transformers"] = None
    try:
        import seqlab

        info["seqlab"] = getattr(seqlab, "__version__", None)
    except ImportError:
        info["seqlab"] = None
    return info


def machine_line(info: dict | None = None) -> str:
    """One line naming the CPU, its capability and native bf16, printed above every result table."""
    info = info or machine_info()
    cpu = info["cpuinfo"]
    numbers = f" (family {cpu['family']}, model {cpu['model']}; {' '.join(cpu['flags'])})" if cpu else ""
    return (f"machine: {info['cpu_model'] or info['processor'] or 'unknown CPU'}{numbers}; CPU capability "
            f"{info['cpu_capability']}; native bf16: {'yes' if info['native_bf16'] else 'no'}; "
            f"{info['cores_available']} cores, {info['torch_threads']} threads; torch {info['torch']}"
            + _limits_text(info.get("isa_limits")))


def _limits_text(limits: dict | None) -> str:
    if not limits:
        return ""
    return "; instruction sets limited by " + " ".join(f"{k}={v}" for k, v in sorted(limits.items()))


# --------------------------------------------------------------------------------------------
# data


@dataclass
class Batch:
    """One padded batch of random sentence pairs (seqlab conventions: PAD = 0, SOS = 1, EOS = 2).

    Attributes:
        src: (B, S) source ids, right-padded.
        tgt_in: (B, T) ``<sos> y_1 ... y_n``, right-padded.
        tgt_out: (B, T) ``y_1 ... y_n <eos>``, right-padded.
        n_tgt_tokens: non-pad positions of ``tgt_out`` (what a training step learns from).
    """

    src: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    n_tgt_tokens: int


def _pad(rows: list[Tensor]) -> Tensor:
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=PAD)


def make_batch(generator: torch.Generator, *, size: int, min_len: int, max_len: int, vocab: int) -> Batch:
    """``size`` random sentence pairs, source and target lengths uniform in [min_len, max_len]."""
    def sentence() -> Tensor:
        n = int(torch.randint(min_len, max_len + 1, (1,), generator=generator))
        return torch.randint(FIRST_REAL_ID, vocab, (n,), generator=generator)

    src, tgt_in, tgt_out = [], [], []
    for _ in range(size):
        src.append(sentence())
        y = sentence()
        tgt_in.append(torch.cat([torch.tensor([SOS]), y]))
        tgt_out.append(torch.cat([y, torch.tensor([EOS])]))
    out = _pad(tgt_out)
    return Batch(src=_pad(src), tgt_in=_pad(tgt_in), tgt_out=out, n_tgt_tokens=int(out.ne(PAD).sum()))


def make_batches(seed: int, count: int, **kwargs) -> list[Batch]:
    """``count`` batches from one seeded generator (the same for every system)."""
    generator = torch.Generator().manual_seed(seed)
    return [make_batch(generator, **kwargs) for _ in range(count)]


CLIP_NORM = 1.0
"""Every training row clips the global gradient norm at this value."""

LABEL_SMOOTHING = 0.1
"""Every training row's loss smooths the labels with this epsilon."""


def training_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimiser of every training row: PyTorch's fused Adam, as seqlab's trainer uses."""
    return torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9, fused=True)


def optimizer_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    """The rest of every training step: backward, clip at ``CLIP_NORM``, optimizer step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
    optimizer.step()


def seqlab_train(model: torch.nn.Module, batches: list[Batch], precision: str):
    """The step of seqlab's trainer: decoder features, then the fused output layer + loss."""
    from seqlab.training.loss import output_layer_nll

    optimizer = training_optimizer(model)
    out = model.output_layer

    def call(i: int) -> int:
        b = batches[i % len(batches)]
        with precision_context(precision):
            h = model.features(b.src, b.tgt_in)  # (B, T, d)
            loss_sum, _, n = output_layer_nll(h, out.weight, out.bias, b.tgt_out, epsilon=LABEL_SMOOTHING)
        optimizer_step(model, optimizer, loss_sum / n)
        return b.n_tgt_tokens

    return call


def precision_context(precision: str):
    """``fp32``: nothing; ``bf16``: ``torch.autocast("cpu", dtype=torch.bfloat16)``."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if precision == "fp32":
        return contextlib.nullcontext()
    raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")


# --------------------------------------------------------------------------------------------
# timing


@dataclass
class Measurement:
    """Rates of one system over the timed rounds (work units per second)."""

    name: str
    rates: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else float("nan")

    @property
    def spread(self) -> float:
        """(max - min) / median over rounds: a rough noise indicator."""
        if len(self.rates) < 2:
            return 0.0
        return (max(self.rates) - min(self.rates)) / self.median


def run_rounds(
    systems: dict[str, Callable[[int], float]], *, warmup: int, repeats: int, iters: int
) -> dict[str, Measurement]:
    """Time systems round-robin.

    Args:
        systems: name -> ``call(i)`` that does the i-th unit of work and returns how much work it
            did (tokens, sentences); i counts from 0 across warm-up and timed calls.
        warmup: untimed calls per system before any timing.
        repeats: timed rounds; in each, every system runs ``iters`` calls.
        iters: calls per system per round.

    Returns:
        name -> :class:`Measurement` with one rate per round.
    """
    counters = {name: 0 for name in systems}
    for name, call in systems.items():
        for _ in range(warmup):
            call(counters[name])
            counters[name] += 1
    results = {name: Measurement(name) for name in systems}
    for _ in range(repeats):
        for name, call in systems.items():
            work = 0.0
            start = time.perf_counter()
            for _ in range(iters):
                work += call(counters[name])
                counters[name] += 1
            elapsed = time.perf_counter() - start
            results[name].rates.append(work / elapsed)
            results[name].seconds.append(elapsed)
    return results


def schedule(args: argparse.Namespace, full: tuple[int, int, int], quick: tuple[int, int, int]) -> tuple[int, int, int]:
    """(warmup, repeats, iters): ``quick`` with ``--quick``, else ``full``; each overridden by its option."""
    warmup, repeats, iters = quick if args.quick else full
    return (args.warmup if args.warmup is not None else warmup,
            args.repeats if args.repeats is not None else repeats,
            args.iters if args.iters is not None else iters)


# --------------------------------------------------------------------------------------------
# output


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}"
    return str(value)


def print_table(rows: list[dict], columns: list[tuple[str, str]], *, file=None, title: str | None = None) -> None:
    """Print ``rows`` as a fixed-width table; ``columns`` is [(key, header), ...]; ``title`` above it."""
    file = file or sys.stdout
    if title is not None:
        print(title, file=file)
    cells = [[_fmt(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max([len(header)] + [len(c[i]) for c in cells]) for i, (_, header) in enumerate(columns)]
    line = "  ".join(header.ljust(w) for (_, header), w in zip(columns, widths))
    print(line, file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for c in cells:
        print("  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(c, widths))), file=file)


def report(benchmark: str, out: Path | None, settings: dict, rows: list[dict], **extra) -> dict:
    """The JSON report of a run (machine, settings, rows, ``extra``); written to ``out`` when given."""
    payload = {"benchmark": benchmark, "machine": machine_info(), "settings": settings, "rows": rows, **extra}
    if out is not None:
        write_json(out, payload)
        print(f"wrote {out}")
    return payload


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` (indented) to ``path``, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
