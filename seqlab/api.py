"""The Python API over a trained run folder.

    >>> import seqlab
    >>> model = seqlab.load("runs/en-pt-transformer")            # doctest: +SKIP
    >>> model.translate(["The book is on the table."], beam=5)    # doctest: +SKIP
    ['O livro está na mesa.']
    >>> seqlab.load("runs/sentiment-demo").classify("the plot was dull but i loved the cast .")  # doctest: +SKIP
    ('positive', 0.998)

:func:`seqlab.tasks.run.load_run` opens any run folder through its task: config, tokenizers, model
and weights. :class:`Translator` holds any :class:`~seqlab.models.base.Seq2SeqModel`
(Transformer or recurrent) and its tokenizers; :class:`Classifier` any sequence classifier and its
class names; neither asks which architecture it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from torch import nn

from seqlab.config import ExperimentConfig, load_config
from seqlab.data.labelled import LabelledData
from seqlab.errors import CheckpointError, SeqlabError
from seqlab.evaluation.classification import ClassificationResult, predict_batches
from seqlab.evaluation.evaluate import EvalResult, evaluate_pairs
from seqlab.evaluation.metrics import translate_batch
from seqlab.models.base import Seq2SeqModel
from seqlab.tasks.classification import ClassificationText, encode_texts, evaluate_classifier
from seqlab.tasks.run import LoadedRun, load_run
from seqlab.text.pair import TokenizerPair
from seqlab.nn.linear import pack_for_decoding
from seqlab.precision import resolve_precision
from seqlab.training.checkpoint import read_meta

__all__ = ["AttentionMap", "Classifier", "SentenceTooLong", "Translator", "run_task"]


def run_task(run_dir: str | Path) -> str:
    """The task (``config.task``) of a run folder.

    Raises:
        CheckpointError: ``run_dir`` is not a run folder.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: no such run folder")
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise CheckpointError(f"{run_dir}: not a seqlab run folder (no config.yaml)")
    return load_config(config_path).task


def _load(run_dir: str | Path, checkpoint: str, task: str) -> LoadedRun:
    run_task(run_dir)  # a missing folder is named as such
    return load_run(run_dir, checkpoint=checkpoint, task=task)


class SentenceTooLong(SeqlabError):
    """A sentence has more tokens than the model accepts; ``index`` is its 0-based position."""

    def __init__(self, index: int, n_tokens: int, limit: int):
        self.index, self.n_tokens, self.limit = index, n_tokens, limit
        super().__init__(f"sentence {index + 1} has {n_tokens} tokens, more than the model's limit of {limit}; "
                         "split it or pass truncate=True (--truncate)")


@dataclass
class AttentionMap:
    """Source attention of one translation: ``weights[i, j]`` = a_ij, target token i over source token j."""

    weights: torch.Tensor  # (T, S)
    src_tokens: list[str]
    tgt_tokens: list[str]
    translation: str


class Translator:
    """A trained sequence-to-sequence model with its tokenizers and decoding defaults.

    ``precision`` (``auto``, ``fp32`` or ``bf16``; default: the run's ``decode.precision``) is the
    precision :meth:`translate` and :meth:`evaluate` decode in unless told otherwise; it is resolved
    for the model's device here (:func:`seqlab.precision.resolve_precision`). When it resolves to
    bf16 the model's weights are packed for bf16 decoding here, once
    (:func:`seqlab.nn.linear.pack_for_decoding`); after changing the weights of ``self.model``,
    make a new Translator. Decoding only reads the model, so threads may share one Translator.

    ``engine`` (``native``, ``ctranslate2`` or ``onnx``) is what decodes (:mod:`seqlab.export.engines`):
    PyTorch, or a model exported from ``self.model`` into ``RUN/export/`` on first use (``step``,
    the checkpoint's, tells a stale export). ``precision`` may also be ``int8`` (native: int8
    linear layers; ctranslate2); ctranslate2 and onnx take ``auto`` as fp32.
    """

    def __init__(self, model: Seq2SeqModel, tokenizers: TokenizerPair, config: ExperimentConfig,
                 run_dir: Path | None = None, *, precision: str | None = None, engine: str = "native",
                 checkpoint: str = "best", step: int | None = None):
        self.model = model.eval()
        self.tokenizers = tokenizers
        self.config = config
        self.run_dir = run_dir
        self.device = next(self.model.parameters()).device
        self.engine, self.checkpoint, self.step = engine, checkpoint, step
        self._engines: dict = {}  # resolved precision -> seqlab.export.engines.Engine
        if precision is None and engine != "native" and config.decode.precision in ("bf16", "fp16"):
            precision = "fp32"  # the run's bf16/fp16 default is for the native engine
        self.precision = self._resolve(precision or config.decode.precision)
        pack_for_decoding(self.model, enabled=engine == "native" and self.precision == "bf16")

    @classmethod
    def load(cls, run_dir: str | Path, *, checkpoint: str = "best", device: str = "auto",
             precision: str | None = None, engine: str = "native") -> Translator:
        """Load ``run_dir`` (written by ``seqlab train``) at checkpoint ``best`` or ``last``.

        ``device``: ``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``;
        a run trained on either loads on either. ``precision``: the decoding precision (default:
        the run's ``decode.precision``), and ``engine``, see above; an exported engine is exported
        or opened here, so errors come now.
        """
        from seqlab.devices import resolve_device

        device = resolve_device(device, key="device")
        run = _load(run_dir, checkpoint, "translation")
        step = read_meta(Path(run.run_dir) / "checkpoints", checkpoint).get("step")
        translator = cls(run.model.to(device), run.data.text, run.config, run.run_dir, precision=precision,
                         engine=engine, checkpoint=checkpoint, step=step)
        if engine != "native":
            translator._engine(None)
        return translator

    def export(self, fmt: str, *, out: str | Path | None = None, quantization: str = "fp32") -> Path:
        """Export this model as ``fmt`` (``ctranslate2`` or ``onnx``) into ``out``, by default
        ``RUN/export/<fmt>-<quantization>/`` where ``engine=fmt`` finds it (``seqlab export``)."""
        from seqlab.export.engines import export_folder, export_model

        if out is None:
            if self.run_dir is None:
                raise SeqlabError("this translator has no run folder: pass out=")
            out = export_folder(self.run_dir, fmt, quantization, self.checkpoint)
        return export_model(self.model, self.tokenizers, fmt, out, quantization=quantization, step=self.step)

    # ------------------------------------------------------------------ helpers

    def _encode(self, sentences: list[str], *, truncate: bool) -> list[list[int]]:
        limit = self.model.max_positions - 1
        ids = self.tokenizers.src.encode_batch([s if s.strip() else "" for s in sentences])  # blank: nothing
        for i, row in enumerate(ids):
            if len(row) > limit:
                if not truncate:
                    raise SentenceTooLong(i, len(row), limit)
                ids[i] = row[:limit]
        return ids

    def _resolve(self, precision: str) -> str:
        """``auto``/``fp32``/``bf16``/``int8`` -> what this engine runs: the native engine resolves
        auto and bf16 for the device (:func:`seqlab.precision.resolve_precision`)."""
        from seqlab.export.engines import check_precision

        if self.engine == "native" and precision != "int8":
            return resolve_precision(precision, self.device)
        precision = "fp32" if precision == "auto" else precision
        check_precision(self.engine, precision)
        return precision

    def _engine(self, precision: str | None):
        """The :class:`~seqlab.export.engines.Engine` decoding at ``precision`` (default :attr:`precision`).

        A precision other than the default runs unpacked (correct, slower in bf16).
        """
        from seqlab.export.engines import open_engine

        resolved = self.precision if precision is None else self._resolve(precision)
        if resolved not in self._engines:
            self._engines[resolved] = open_engine(self.engine, resolved, model=self.model, tokenizers=self.tokenizers,
                                                  run_dir=self.run_dir, checkpoint=self.checkpoint, step=self.step)
        return self._engines[resolved]

    def _precision(self, precision: str | None):
        """A context for running ``self.model`` at ``precision`` (default: :attr:`precision`)."""
        return self._engine(precision).context()

    def _decode_settings(self, beam, length_penalty, max_len_ratio) -> dict:
        d = self.config.decode
        return {"beam": d.beam if beam is None else beam,
                "length_penalty": d.length_penalty if length_penalty is None else length_penalty,
                "max_len_ratio": d.max_len_ratio if max_len_ratio is None else max_len_ratio,
                "max_len_offset": d.max_len_offset}

    # ------------------------------------------------------------------ public

    @torch.inference_mode()
    def translate(self, sentences: str | list[str], *, beam: int | None = None, length_penalty: float | None = None,
                  max_len_ratio: float | None = None, n_best: int = 1, truncate: bool = False,
                  precision: str | None = None):
        """Translate one sentence or a list.

        Returns:
            A string per sentence; with ``n_best > 1`` a list of ``(translation, score)`` per sentence.
        """
        single = isinstance(sentences, str)
        batch = [sentences] if single else list(sentences)
        if not batch:
            return []
        settings = self._decode_settings(beam, length_penalty, max_len_ratio)
        if n_best > settings["beam"]:
            raise SeqlabError(f"n_best={n_best} needs a beam of at least {n_best} (beam={settings['beam']})")
        out = self._engine(precision).decode(self._encode(batch, truncate=truncate), n_best=n_best, **settings)
        decode = self.tokenizers.tgt.decode
        if n_best > 1:
            result = [[(decode(toks), score) for toks, score in hyps] for hyps in out.nbest]
        else:
            result = [decode(toks) for toks in out.tokens]
        return result[0] if single else result

    @torch.inference_mode()
    def attention(self, sentence: str, *, beam: int = 1) -> AttentionMap:
        """Translate ``sentence`` and return the source attention of each decoder step.

        Returns:
            An :class:`AttentionMap` whose ``tgt_tokens`` end with ``<eos>`` when the translation
            ended with it (not when it stopped at the length limit); ``weights`` is
            (len(tgt_tokens), len(src_tokens)).
        """
        src_ids = self._encode([sentence], truncate=False)
        if not src_ids[0]:
            raise SeqlabError(f"nothing to translate: {sentence!r} has no tokens")
        settings = self._decode_settings(beam, None, None)
        out = translate_batch(self.model, src_ids, return_attention=True, **settings)
        if out.attention is None:
            raise SeqlabError(f"this model ({type(self.model).__name__}, model.type={self.config.model.type}"
                              f"{', attention=none' if getattr(self.config.model, 'attention', '') == 'none' else ''})"
                              " has no attention over the source to plot")
        tgt, weights = out.tokens[0], out.attention[0]  # weights: (T, S)
        tok = self.tokenizers
        # One row per decoder step: T = len(tgt) + 1 when the translation ended with <eos>, else
        # len(tgt) (it stopped at the length limit).
        ended = weights.size(0) == len(tgt) + 1
        return AttentionMap(
            weights=weights,
            src_tokens=[tok.src.id_to_token(i) for i in src_ids[0]],
            tgt_tokens=[tok.tgt.id_to_token(i) for i in tgt] + (["<eos>"] if ended else []),
            translation=tok.tgt.decode(tgt),
        )

    def evaluate(self, pairs: list[tuple[str, str]], *, beam: int | None = None,
                 length_penalty: float | None = None, precision: str | None = None) -> EvalResult:
        """BLEU, chrF and perplexity of this model on ``pairs``.

        Perplexity comes from the PyTorch model that decodes (native engine: at the same precision;
        NaN for ctranslate2 and onnx, which only decode).
        """
        settings = self._decode_settings(beam, length_penalty, None)
        engine = self._engine(precision)
        with engine.context():
            return evaluate_pairs(engine.model or self.model, self.tokenizers, pairs, decode=engine.decode,
                                  with_nll=engine.model is not None, **settings)


class Classifier:
    """A trained sequence classifier with its tokenizer and class names."""

    def __init__(self, model: nn.Module, text: ClassificationText, config: ExperimentConfig,
                 run_dir: Path | None = None):
        self.model = model.eval()
        self.text = text
        self.config = config
        self.run_dir = run_dir

    @classmethod
    def load(cls, run_dir: str | Path, *, checkpoint: str = "best", device: str = "auto") -> Classifier:
        """Load a classification run folder at checkpoint ``best`` or ``last`` (``device`` as for
        :meth:`Translator.load`)."""
        from seqlab.devices import resolve_device

        device = resolve_device(device, key="device")
        run = _load(run_dir, checkpoint, "classification")
        return cls(run.model.to(device), run.data.text, run.config, run.run_dir)

    @property
    def labels(self) -> list[str]:
        """The class names, in id order."""
        return list(self.text.labels.names)

    def probabilities(self, texts: list[str]) -> torch.Tensor:
        """(N, C) p(class | text) of every text (texts longer than ``data.max_len`` tokens are cut)."""
        return predict_batches(self.model, encode_texts(self.text.tokenizer, texts, self.config.data.max_len))

    def classify(self, texts: str | list[str]) -> tuple[str, float] | list[tuple[str, float]]:
        """The most probable class of one text or of each text of a list, with its probability."""
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        if not batch:
            return []
        p, ids = self.probabilities(batch).max(dim=-1)
        result = [(self.text.labels.names[i], float(q)) for i, q in zip(ids.tolist(), p)]
        return result[0] if single else result

    def evaluate(self, data: LabelledData | str | Path) -> ClassificationResult:
        """Accuracy, macro-F1 and the confusion matrix on labelled data (a file is read with the
        run's ``data`` settings: columns, delimiter, threshold)."""
        if not isinstance(data, LabelledData):
            data = self.config.data.read(str(data))
        return evaluate_classifier(self.model, self.text, data, max_len=self.config.data.max_len)[0]
