"""The served models: a run folder behind one small interface the server talks to.

:class:`ServedModel` wraps a loaded :class:`~seqlab.api.Translator` (or chatbot) and gives the
server what it needs, whatever the run holds: ``translate`` a batch, ``stream`` one text piece by
piece, ``reply`` in a conversation, the token count of a text (for the limits) and the attention
steps of one translation (:func:`seqlab.evaluation.explain.explain`). Generation options are the
keyword options of the Python API (``beam``, ``strategy``, ``temperature``, ...) and pass through
unchanged; an option the loaded API does not accept is a :class:`~seqlab.errors.SeqlabError`
naming it, raised before the request is queued.

The adapter speaks the API of this seqlab and the chat generation API (a chat run loaded as a
chatbot with ``reply``/``stream_reply``, ``stream_translate``, ``settings``): it uses each part
where the loaded object has it, and streams a translation as one piece where it does not.

The methods are not thread-safe by themselves: the server calls a model only from that model's
worker thread (:class:`seqlab.serve.batcher.Batcher`).
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from seqlab.errors import SeqlabError
from seqlab.evaluation.explain import Explanation, explain

__all__ = ["SERVED_TASKS", "ServedModel", "load_models"]

SERVED_TASKS = {"translation": "translator", "chat": "chatbot"}
"""The run tasks served, and the kind of model each becomes."""


@dataclass
class ServedModel:
    """One run folder, loaded.

    Attributes:
        name: the run folder's name, by which requests choose the model.
        kind: ``translator`` or ``chatbot``.
        translator: the loaded :class:`~seqlab.api.Translator`.
        path: the run folder.
    """

    name: str
    kind: str
    translator: object
    path: Path

    # ------------------------------------------------------------------ facts

    @property
    def max_tokens(self) -> int:
        """Longest input, in tokens, the model accepts (its positions less one for ``<eos>``)."""
        return self.translator.model.max_positions - 1

    def count_tokens(self, text: str) -> int:
        return len(self.translator.tokenizers.src.encode(text))

    def describe(self) -> dict:
        """What ``GET /v1/models`` says about this model, beside its name."""
        cfg = self.translator.config.model
        info = {"kind": self.kind, "architecture": cfg.type, "max_input_tokens": self.max_tokens}
        if cfg.type == "transformer":
            info.update(layers=cfg.layers, decoder_layers=cfg.decoder_layers or cfg.layers, heads=cfg.heads,
                        d_model=cfg.d_model)
        return info

    # ------------------------------------------------------------------ generation

    def check_options(self, options: dict, *, chat: bool = False) -> None:
        """Raise :class:`SeqlabError` naming any option the model's API does not take or accept."""
        method = self.translator.reply if chat and self.kind == "chatbot" else self.translator.translate
        accepted = _keywords(method.__func__)
        if accepted is not None:
            unknown = sorted(set(options) - accepted)
            if unknown:
                raise SeqlabError(f"model {self.name!r} does not support the option(s) {', '.join(unknown)}")
        settings = getattr(self.translator, "settings", None)  # the generation API validates values
        if settings is not None:
            settings(**options)

    def translate(self, texts: list[str], options: dict) -> list[str]:
        """Translate (or answer, single turn) every text with the same options (checked already)."""
        return self.translator.translate(list(texts), **options)

    def stream(self, text: str, options: dict) -> Iterator[str]:
        """The translation of ``text`` in pieces, as the model produces them."""
        streaming = getattr(self.translator, "stream_translate", None)
        if streaming is None:  # this API has no streaming: one piece, the whole translation
            yield self.translate([text], options)[0]
            return
        yield from streaming(text, **options)

    def reply(self, history: list[str], message: str, options: dict) -> str:
        """The answer to ``message`` after ``history`` (alternating turns, oldest first)."""
        return "".join(self.stream_reply(history, message, options))

    def stream_reply(self, history: list[str], message: str, options: dict) -> Iterator[str]:
        """The answer to ``message`` in pieces; a translator answers the message alone."""
        streaming = getattr(self.translator, "stream_reply", None)
        if self.kind != "chatbot" or streaming is None:
            yield from self.stream(message, options)
            return
        yield from streaming(history, message, **options)

    def explain(self, source: str, translation: str | None) -> Explanation:
        """Attention steps of the model's greedy translation of ``source`` (or of ``translation``)."""
        if translation is None:
            translation = self.translate([source], {"beam": 1})[0]
        return explain(self.translator.model, self.translator.tokenizers, source, translation)


@functools.cache
def _keywords(function) -> frozenset[str] | None:
    """The keyword arguments ``function`` accepts; None when it takes any (``**options``)."""
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return frozenset(parameters)


def load_models(runs: list[str | Path], *, checkpoint: str = "best", engine: str = "native",
                precision: str | None = None) -> dict[str, ServedModel]:
    """Load each run folder; the models are named by their folder names, which must differ.

    ``engine`` and ``precision`` are :func:`seqlab.load`'s (an exported engine: translation runs only).
    """
    import seqlab
    from seqlab.api import run_task

    models: dict[str, ServedModel] = {}
    for run in runs:
        path = Path(run)
        name = Path(os.path.abspath(path)).name  # '.' and 'x/..' named too; symlinks keep their name
        if name in models:
            raise SeqlabError(f"two runs are named {name!r} ({models[name].path} and {path}); "
                              "serve runs from folders with different names")
        task = run_task(path)
        if task not in SERVED_TASKS:
            raise SeqlabError(f"{path}: a {task!r} run; seqlab serve serves {' and '.join(SERVED_TASKS)} runs")
        translator = seqlab.load(path, checkpoint=checkpoint, engine=engine, precision=precision)
        kind = SERVED_TASKS[task]
        models[name] = ServedModel(name=name, kind=kind, translator=translator, path=path)
    if not models:
        raise SeqlabError("seqlab serve needs at least one run folder")
    return models
