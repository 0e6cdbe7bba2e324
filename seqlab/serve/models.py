"""The served models: a run folder behind one small interface the server talks to.

:class:`ServedModel` wraps a loaded :class:`~seqlab.api.Translator` (or chatbot) and gives the
server what it needs, whatever the run holds: ``translate`` a batch, ``stream`` one text piece by
piece, ``reply`` in a conversation, the token count of a text (for the limits) and the attention
steps of one translation (:func:`seqlab.evaluation.explain.explain`). Generation options are the
keyword options of the Python API (``beam``, ``strategy``, ``temperature``, ...) and pass through
unchanged; a bad one is the API's :class:`~seqlab.errors.ConfigError` naming it, raised before
the request is queued.

A chat run is a :class:`~seqlab.api.Chatbot` (``reply``/``stream_reply`` over the conversation);
a translation run answers a chat message with its translation.

The methods are not thread-safe by themselves: the server calls a model only from that model's
worker thread (:class:`seqlab.serve.batcher.Batcher`).
"""

from __future__ import annotations

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

    def check_options(self, options: dict) -> None:
        """Raise :class:`SeqlabError` (a ``ConfigError`` naming ``decode.<key>``) for a bad option value."""
        self.translator.settings(**options)

    def samples(self, options: dict) -> bool:
        """Whether these options sample (then a reply depends on what it is batched with)."""
        return self.translator.settings(**options).strategy == "sample"

    def translate(self, texts: list[str], options: dict) -> list[str]:
        """Translate (or answer, single turn) every text with the same options (checked already)."""
        return self.translator.translate(list(texts), **options)

    def stream(self, text: str, options: dict) -> Iterator[str]:
        """The translation of ``text`` in pieces, as the model produces them."""
        return self.translator.stream_translate(text, **options)

    def reply(self, history: list[str], message: str, options: dict) -> str:
        """The answer to ``message`` after ``history`` (alternating turns, oldest first).

        A translator run answers with the translation of the message alone.
        """
        if self.kind == "chatbot":
            return self.translator.reply(history, message, **options)
        return self.translate([message], options)[0]

    def stream_reply(self, history: list[str], message: str, options: dict) -> Iterator[str]:
        """:meth:`reply` in pieces, as the model produces them."""
        if self.kind == "chatbot":
            return self.translator.stream_reply(history, message, **options)
        return self.stream(message, options)

    def explain(self, source: str, translation: str | None) -> Explanation:
        """Attention steps of the model's greedy translation of ``source`` (or of ``translation``)."""
        if translation is None:
            translation = self.translate([source], {"strategy": "greedy"})[0]
        return explain(self.translator.model, self.translator.tokenizers, source, translation)


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
