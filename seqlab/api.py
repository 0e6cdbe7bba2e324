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

    >>> bot = seqlab.load("runs/chat-demo")                       # doctest: +SKIP
    >>> bot.reply([], "hello", strategy="sample", top_p=0.9, seed=1)  # doctest: +SKIP
    'hello! how are you?'

:func:`load` returns a :class:`Translator` for a translation run, a :class:`Chatbot` for a chat
run and a :class:`Classifier` for a classification run (:func:`run_task` says which).
Generation options are keyword arguments with the names of the ``decode`` config section
(:class:`~seqlab.config.DecodeConfig`): ``strategy`` (greedy/beam/sample), ``beam``,
``length_penalty``, ``temperature``, ``top_k``, ``top_p``, ``repetition_penalty``,
``no_repeat_ngram``, ``min_length``, ``max_new_tokens``, ``seed``, ``n_best``, ``precision``;
options left out (or None) take the run's values. A bad option raises
:class:`~seqlab.errors.ConfigError` naming ``decode.<key>``.

A translation run may decode through another engine (:mod:`seqlab.export.engines`):

    >>> fast = seqlab.load("runs/en-pt-transformer", engine="ctranslate2", precision="int8")  # doctest: +SKIP

Thread safety: a request keeps all its decoding state (decoder states, generators) in local
variables; the model is only read, so several threads may decode with one object at once.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from torch import nn

from seqlab.config import DecodeConfig, ExperimentConfig, generation_config, load_config
from seqlab.data.dialogs import context_text, fit_context
from seqlab.data.labelled import LabelledData
from seqlab.decoding.generate import (
    generate_steps,
    pad_rows,
    source_steps,
    start_seq2seq,
    translate_batch,
)
from seqlab.errors import CheckpointError, SeqlabError
from seqlab.evaluation.classification import ClassificationResult, predict_batches
from seqlab.evaluation.evaluate import EvalResult, evaluate_pairs
from seqlab.models.base import Seq2SeqModel
from seqlab.tasks.classification import ClassificationText, encode_texts, evaluate_classifier
from seqlab.tasks.run import LoadedRun, load_run
from seqlab.nn.linear import pack_for_decoding
from seqlab.precision import resolve_precision
from seqlab.text.pair import TokenizerPair
from seqlab.text.specials import EOS, PAD, SEP
from seqlab.training.checkpoint import read_meta

__all__ = ["AttentionMap", "Chatbot", "Classifier", "SentenceTooLong", "Translator", "load", "run_task"]


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


def _open(run_dir: str | Path, checkpoint: str, device: str, tasks: tuple[str, ...]) -> LoadedRun:
    """The run folder's config, text, and model on ``device``; an error unless its task is one of ``tasks``."""
    from seqlab.devices import resolve_device

    device = resolve_device(device, key="device")
    task = run_task(run_dir)  # a missing folder is named as such
    if task not in tasks:
        raise SeqlabError(f"{run_dir}: a {task!r} run, not a {' or '.join(tasks)} model")
    run = load_run(run_dir, checkpoint=checkpoint)
    run.model.to(device)
    return run


def _check_engine(run_dir: str | Path, task: str, engine: str) -> None:
    """Exported engines (:mod:`seqlab.export.engines`) decode translation runs only."""
    if engine != "native" and task != "translation":
        raise SeqlabError(f"{run_dir}: a {task!r} run; engine {engine!r} decodes translation runs only "
                          "(use engine native)")


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
    for the model's device here (:func:`seqlab.precision.resolve_precision`). For fp32 and bf16
    the model's weights are packed for decoding in that precision here, once
    (:func:`seqlab.nn.linear.pack_for_decoding`); after changing the weights of ``self.model``,
    make a new Translator. Decoding only reads the model, so threads may share one Translator.

    ``engine`` (``native``, ``ctranslate2`` or ``onnx``) is what decodes (:mod:`seqlab.export.engines`):
    PyTorch, or a model exported from ``self.model`` into ``RUN/export/`` on first use (``step``,
    the checkpoint's, tells a stale export). ``precision`` may also be ``int8`` (native: int8
    linear layers; ctranslate2); ctranslate2 and onnx take ``auto`` as fp32. The native engine
    takes every generation option; ctranslate2 refuses sampling, the repetition penalty and
    no-repeat n-grams (:func:`seqlab.export.engines.check_settings`).
    """

    run_task = "translation"

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
        self._engines_lock = threading.Lock()  # threads share a Translator: open each engine once
        if precision is None and engine != "native" and config.decode.precision in ("bf16", "fp16"):
            precision = "fp32"  # the run's bf16/fp16 default is for the native engine
        self.precision = self._resolve(precision or config.decode.precision)
        pack_for_decoding(self.model, precision=self.precision if engine == "native" else None)

    @classmethod
    def load(cls, run_dir: str | Path, *, checkpoint: str = "best", device: str = "auto",
             precision: str | None = None, engine: str = "native") -> Translator:
        """Load ``run_dir`` (written by ``seqlab train``) at checkpoint ``best`` or ``last``.

        ``device``: ``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``;
        a run trained on either loads on either. ``precision``: the decoding precision (default:
        the run's ``decode.precision``), and ``engine``, see above (translation runs only); an
        exported engine is exported or opened here, so errors come now.
        """
        _check_engine(run_dir, run_task(run_dir), engine)
        run = _open(run_dir, checkpoint, device, ("translation", "chat"))
        step = read_meta(Path(run.run_dir) / "checkpoints", checkpoint).get("step") if engine != "native" else None
        translator = cls(run.model, run.data.text, run.config, run.run_dir, precision=precision, engine=engine,
                         checkpoint=checkpoint, step=step)
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

    def settings(self, **options) -> DecodeConfig:
        """The run's ``decode`` section with the given generation options (see the module docstring);
        ``precision`` defaults to this object's :attr:`precision`. Options this object's engine
        cannot decode with raise :class:`~seqlab.errors.SeqlabError` naming them."""
        from seqlab.export.engines import check_settings

        if options.get("precision") is not None:
            self._resolve(options["precision"])  # names the valid precisions
        settings = generation_config(dataclasses.replace(self.config.decode, precision=self.precision), **options)
        check_settings(self.engine, settings)
        return settings

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
        """``auto``/``fp32``/``bf16``/``fp16``/``int8`` -> what this engine runs: the native engine
        resolves auto and bf16 for the device (:func:`seqlab.precision.resolve_precision`)."""
        from seqlab.export.engines import check_precision

        if self.engine == "native" and precision != "int8":
            return resolve_precision(precision, self.device)
        precision = "fp32" if precision == "auto" else precision
        check_precision(self.engine, precision)
        return precision

    def _engine(self, precision: str | None):
        """The :class:`~seqlab.export.engines.Engine` decoding at ``precision`` (default :attr:`precision`,
        resolved at construction), opened on first use. A precision other than the default runs
        unpacked (correct, slower in bf16)."""
        from seqlab.export.engines import open_engine

        resolved = self.precision if precision is None or precision == self.precision else self._resolve(precision)
        with self._engines_lock:
            if resolved not in self._engines:
                self._engines[resolved] = open_engine(
                    self.engine, resolved, model=self.model, tokenizers=self.tokenizers, run_dir=self.run_dir,
                    checkpoint=self.checkpoint, step=self.step)
            return self._engines[resolved]

    def _precision(self, precision: str | None):
        """The context ``self.model``'s engine runs in at ``precision`` (default: :attr:`precision`)."""
        return self._engine(precision).context()

    def _decode_ids(self, src_ids: list[list[int]], settings: DecodeConfig) -> list:
        out = self._engine(settings.precision).decode(src_ids, settings)
        decode = self.tokenizers.tgt.decode
        if out.nbest is not None:
            return [[(decode(toks), score) for toks, score in hyps] for hyps in out.nbest]
        return [decode(toks) for toks in out.tokens]

    def _stream_ids(self, src_ids: list[int], settings: DecodeConfig) -> Iterator[str]:
        """Yield the text of one output piece by piece as its tokens come (beam: once at the end).

        The pieces join to the decoded output: a piece is yielded when the text decoded so far
        extends what was yielded (a tokenizer may re-space earlier text; then it waits). An engine
        with its own search (ctranslate2) yields once, at the end.
        """
        if not src_ids:
            return
        engine = self._engine(settings.precision)
        if engine.model is None:
            yield from self._decode_ids([src_ids], settings)
            return
        model, decode = engine.model, self.tokenizers.tgt.decode
        src = pad_rows([src_ids], self.device)
        with torch.inference_mode(), engine.context():
            state, sos = start_seq2seq(model, src)
        steps = generate_steps(model.decode_step, state, sos, settings=settings,
                               max_len=source_steps(model, src, settings))
        tokens: list[int] = []
        said = ""
        while True:
            try:
                with engine.context():
                    y = int(next(steps)[0])
            except StopIteration as stop:
                final = decode(stop.value.tokens[0])
                break
            if y in (EOS, PAD):
                continue
            tokens.append(y)
            text = decode(tokens)
            if len(text) > len(said) and text.startswith(said):
                yield text[len(said):]
                said = text
        if len(final) > len(said) and final.startswith(said):
            yield final[len(said):]

    # ------------------------------------------------------------------ public

    def translate(self, sentences: str | list[str], *, truncate: bool = False, **options):
        """Translate one sentence or a list, with the generation ``options`` of the module docstring.

        Returns:
            A string per sentence; with ``n_best > 1`` a list of ``(translation, score)`` per sentence.
        """
        single = isinstance(sentences, str)
        batch = [sentences] if single else list(sentences)
        settings = self.settings(**options)
        if not batch:
            return []
        result = self._decode_ids(self._encode(batch, truncate=truncate), settings)
        return result[0] if single else result

    def stream_translate(self, sentence: str, *, truncate: bool = False, **options) -> Iterator[str]:
        """Translate one sentence, yielding text pieces as tokens are produced.

        ``"".join(stream_translate(s, **o)) == translate(s, **o)`` for greedy search, seeded sampling
        and beam search (which yields once, at the end).
        """
        settings = self.settings(**options)
        if settings.n_best > 1:
            raise SeqlabError("stream_translate gives one translation; n_best must be 1")
        return self._stream_ids(self._encode([sentence], truncate=truncate)[0], settings)

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
        settings = self.settings(strategy="beam", beam=beam, n_best=1)
        out = translate_batch(self.model, src_ids, settings, return_attention=True)
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

    def evaluate(self, pairs: list[tuple[str, str]], **options) -> EvalResult:
        """BLEU, chrF and perplexity of this model on ``pairs`` (generation ``options`` as in :meth:`translate`).

        Perplexity comes from the PyTorch model that decodes (native engine: at the same precision;
        NaN for ctranslate2 and onnx, which only decode).
        """
        settings = self.settings(**options)
        engine = self._engine(settings.precision)
        with engine.context():
            return evaluate_pairs(engine.model if engine.scores else self.model, self.tokenizers, pairs, settings,
                                  decode=engine.decode, with_nll=engine.scores)


class Chatbot(Translator):
    """A chat run: a sequence-to-sequence model from a conversation's context to the next reply.

    The context is the last ``data.context_turns`` turns of the history and the message, joined
    with ``<sep>`` (:func:`~seqlab.data.dialogs.context_text`); one longer than the model accepts
    loses its oldest turns first, then its oldest tokens (:func:`~seqlab.data.dialogs.fit_context`).
    The reply length is ``decode.max_new_tokens`` (set it in the config or per call).
    """

    run_task = "chat"

    def context_ids(self, history: list[str], message: str) -> list[int]:
        """Encoder input ids for a reply to ``message`` after ``history`` (oldest turn first)."""
        if isinstance(history, str) or not all(isinstance(t, str) for t in history):
            raise SeqlabError("history must be a list of strings (the earlier turns, oldest first)")
        if not message.strip():
            raise SeqlabError("the message is empty")
        text = context_text([*history, message], self.config.data.context_turns)
        ids = self.tokenizers.src.encode(text)
        limit = min(self.model.max_positions - 1, self.config.data.max_len)
        sep = self.tokenizers.src.special_id(SEP) if SEP in self.tokenizers.src.specials else -1
        return fit_context(ids, limit, sep)

    def reply(self, history: list[str], message: str, **options) -> str:
        """The bot's reply to ``message`` after the turns ``history`` (generation ``options`` as in
        :meth:`Translator.translate`; ``n_best > 1`` returns ``(reply, score)`` pairs)."""
        return self._decode_ids([self.context_ids(history, message)], self.settings(**options))[0]

    def stream_reply(self, history: list[str], message: str, **options) -> Iterator[str]:
        """:meth:`reply`, yielding text pieces as tokens are produced (beam: once at the end)."""
        settings = self.settings(**options)
        if settings.n_best > 1:
            raise SeqlabError("stream_reply gives one reply; n_best must be 1")
        return self._stream_ids(self.context_ids(history, message), settings)


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
        run = _open(run_dir, checkpoint, device, ("classification",))
        return cls(run.model, run.data.text, run.config, run.run_dir)

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


def load(run_dir: str | Path, *, checkpoint: str = "best", device: str = "auto",
         precision: str | None = None, engine: str = "native") -> Translator | Classifier:
    """Load a run folder: a :class:`Chatbot` for a chat run, a :class:`Classifier` for a
    classification run, else a :class:`Translator` (``engine`` other than ``native``: translation
    runs only, see :class:`Translator`)."""
    task = run_task(run_dir)
    if task == "classification":
        _check_engine(run_dir, task, engine)
        return Classifier.load(run_dir, checkpoint=checkpoint, device=device)
    opener = Chatbot if task == "chat" else Translator
    return opener.load(run_dir, checkpoint=checkpoint, device=device, precision=precision, engine=engine)
