"""Choose how a run decodes: seqlab's own PyTorch path (fp32, bf16, int8), CTranslate2 or ONNX Runtime.

An engine turns source ids into a :class:`~seqlab.decoding.greedy.DecodeOutput` under the
generation settings (:class:`~seqlab.config.DecodeConfig`), so the API, ``translate``, ``evaluate``
and ``serve`` use every engine alike with seqlab's tokenizers and output format:

* ``native``: :func:`seqlab.decoding.generate.translate_batch` on the PyTorch model, in float32,
  under bf16 autocast, or on its int8 copy (:mod:`seqlab.export.int8`): every strategy;
* ``onnx``: the same :func:`~seqlab.decoding.generate.translate_batch` on
  :class:`~seqlab.export.onnx.OnnxSeq2Seq`: every strategy too (sampling and the logits
  processors act on the logits the graphs return);
* ``ctranslate2``: CTranslate2's own search (:class:`~seqlab.export.ctranslate2.CTranslate2Engine`):
  greedy and beam search with ``min_length``; :func:`check_settings` refuses the rest.

Exported models live in the run folder, ``RUN/export/<format>-<precision>/`` (with
``-<checkpoint>`` for a checkpoint other than ``best``): the first use exports, later uses reuse
the folder unless the checkpoint has changed since (its step is recorded in ``seqlab.json``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from seqlab.config import DecodeConfig
from seqlab.decoding.generate import translate_batch
from seqlab.decoding.greedy import DecodeOutput
from seqlab.errors import SeqlabError
from seqlab.precision import autocast_context
from seqlab.text.pair import TokenizerPair

__all__ = ["ENGINES", "PRECISIONS", "Engine", "check_precision", "check_settings", "export_folder", "export_model",
           "open_engine"]

PRECISIONS = {"native": ("fp32", "bf16", "fp16", "int8"), "ctranslate2": ("fp32", "int8"), "onnx": ("fp32",)}
"""The precisions each engine decodes in."""

ENGINES = tuple(PRECISIONS)

Search = Callable[..., DecodeOutput]
"""``search(src_ids, settings, *, batch_size)`` -> DecodeOutput: an engine's own search (ctranslate2)."""


def check_precision(engine: str, precision: str) -> None:
    """Raise a clear error for an unknown engine or a precision the engine does not run."""
    if engine not in PRECISIONS:
        raise SeqlabError(f"the engine or export format must be one of {', '.join(ENGINES)}, got {engine!r}")
    if precision not in PRECISIONS[engine]:
        raise SeqlabError(f"the {engine} engine decodes in {', '.join(PRECISIONS[engine])}, not {precision!r}")


def check_settings(engine: str, settings: DecodeConfig) -> None:
    """Raise a clear error naming the ``decode.<key>`` that ``engine`` cannot decode with.

    ``native`` and ``onnx`` run seqlab's own decoding and take every setting; ``ctranslate2``
    runs greedy and beam search, with ``min_length``, and no sampling or other logits processor.
    """
    if engine != "ctranslate2":
        return
    if settings.strategy == "sample":
        raise SeqlabError("the ctranslate2 engine decodes with decode.strategy greedy or beam, not 'sample': "
                          "use --engine native or onnx to sample")
    for key, off in (("repetition_penalty", 1.0), ("no_repeat_ngram", 0)):
        if getattr(settings, key) != off:
            raise SeqlabError(f"the ctranslate2 engine does not apply decode.{key} "
                              f"(got {getattr(settings, key)}): use --engine native or onnx")


def export_model(model: nn.Module, tokenizers: TokenizerPair, fmt: str, out: str | Path, *,
                 quantization: str = "fp32", step: int | None = None) -> Path:
    """Export ``model`` as ``fmt`` (``ctranslate2`` or ``onnx``) into the folder ``out``.

    Args:
        quantization: weight precision (``fp32``; ``int8`` for ctranslate2).
        step: the checkpoint's training step, recorded so a later use can tell a stale export.
    """
    if fmt not in ("ctranslate2", "onnx"):
        raise SeqlabError(f"--format must be ctranslate2 or onnx, got {fmt!r}")
    check_precision(fmt, quantization)
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    if fmt == "ctranslate2":
        from seqlab.export.ctranslate2 import export_ctranslate2

        export_ctranslate2(model, tokenizers, out, quantization=quantization)
    else:
        from seqlab.export.onnx import export_onnx

        export_onnx(model, out)
    info_path = out / "seqlab.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info.update({"quantization": quantization, "step": step})
    info_path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out


def export_folder(run_dir: str | Path, fmt: str, precision: str, checkpoint: str = "best") -> Path:
    """``RUN/export/<fmt>-<precision>[-<checkpoint>]``, where an engine keeps its exported model."""
    suffix = "" if checkpoint == "best" else f"-{checkpoint}"
    return Path(run_dir) / "export" / f"{fmt}-{precision}{suffix}"


def _is_current(folder: Path, engine: str, precision: str, step: int | None) -> bool:
    """Whether ``folder`` holds an export of the checkpoint at ``step`` in today's format.

    A CTranslate2 int8 export written before int8 weights were limited to 7 bits (no
    ``int8_weight_max`` in its ``seqlab.json``; see :mod:`seqlab.export.ctranslate2`) is stale too.
    """
    info_path = folder / "seqlab.json"
    if step is None or not info_path.is_file():
        return False
    info = json.loads(info_path.read_text(encoding="utf-8"))
    if engine == "ctranslate2" and precision == "int8":
        from seqlab.export.ctranslate2 import INT8_WEIGHT_MAX

        if info.get("int8_weight_max") != INT8_WEIGHT_MAX:
            return False
    return info.get("step", -1) == step


@dataclass
class Engine:
    """How a translator decodes at one precision.

    Attributes:
        name: ``native``, ``ctranslate2`` or ``onnx``.
        precision: fp32, bf16, fp16 or int8.
        model: the model seqlab's decoding steps through: the PyTorch model or its int8 copy
            (native), :class:`~seqlab.export.onnx.OnnxSeq2Seq` (onnx); None for ctranslate2.
        search: the engine's own search when it has one (ctranslate2), else None.
    """

    name: str
    precision: str
    model: nn.Module | None = None
    search: Search | None = None

    @property
    def scores(self) -> bool:
        """Whether :attr:`model` is a PyTorch model that scores perplexity (the native engine)."""
        return self.name == "native"

    def context(self):
        """The autocast context :attr:`model` runs in (bf16/fp16 autocast for ``bf16``/``fp16``)."""
        if self.name != "native":
            return contextlib.nullcontext()
        device = next(self.model.parameters()).device
        return autocast_context("fp32" if self.precision == "int8" else self.precision, device)

    def decode(self, src_ids: list[list[int]], settings: DecodeConfig, *, batch_size: int = 64,
               return_attention: bool = False) -> DecodeOutput:
        """Decode ``src_ids`` under ``settings``: one entry per input, in input order
        (:func:`~seqlab.decoding.generate.translate_batch`'s contract)."""
        check_settings(self.name, settings)
        if self.search is not None:
            return self.search(src_ids, settings, batch_size=batch_size)
        with self.context():
            return translate_batch(self.model, src_ids, settings, batch_size=batch_size,
                                   return_attention=return_attention)


def open_engine(engine: str, precision: str, *, model: nn.Module, tokenizers: TokenizerPair,
                run_dir: Path | None, checkpoint: str = "best", step: int | None = None) -> Engine:
    """The :class:`Engine` ``engine`` at ``precision`` for ``model`` (a trained PyTorch model).

    For ``ctranslate2``/``onnx`` the model is exported into :func:`export_folder` on first use
    (again when the checkpoint's step differs from the exported one).
    """
    check_precision(engine, precision)
    if engine == "native":
        if precision == "int8":
            from seqlab.export.int8 import quantize_int8

            model = quantize_int8(model)
        return Engine(engine, precision, model=model)
    if run_dir is None:
        raise SeqlabError(f"the {engine} engine needs a run folder to keep its exported model in")
    folder = export_folder(run_dir, engine, precision, checkpoint)
    if not _is_current(folder, engine, precision, step):
        export_model(model, tokenizers, engine, folder, quantization=precision, step=step)
    if engine == "ctranslate2":
        from seqlab.export.ctranslate2 import CTranslate2Engine

        ct2 = CTranslate2Engine(folder, tokenizers, precision=precision)
        return Engine(engine, precision, search=ct2.translate_ids)
    from seqlab.export.onnx import OnnxSeq2Seq

    return Engine(engine, precision, model=OnnxSeq2Seq(folder))
